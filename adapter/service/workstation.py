"""What the review pages show, made from the store's records: a case (a request with its items, the patient,
the history, the clinical texts with every evidence quote marked) and the queue of open cases.

Only shaping for the page: the records come from the store (``adapter.service.state``), the words from the
review Tasks and the case read when the request was decided (``adapter.review.cases``).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from adapter.actions import ReviewAction
from adapter.categories import categorise
from adapter.determination.engine import PENDED_NO_RULE
from adapter.fhir.attachments import asked_on, attachment_lines, pended_lines
from adapter.fhir.extensions import evidence_of
from adapter.fhir.pas import review_action_code
from adapter.review.cases import DUPLICATE_DAYS, CaseContext, CaseItem, NoteTitle
from adapter.review.policy import Policy
from adapter.review.tasks import (
    decision_of,
    due_of,
    first_input,
    inputs,
    recommendation_of,
    response_of,
    sequence_of,
)
from adapter.tables import mappings
from adapter.types import JSON

#: A line that starts a list entry or a numbered point: its line break is kept.
_LIST_LINE = re.compile(r"[-*\u2022]|\d{1,2}[.)]\s|[A-Z][A-Za-z /]{1,30}:")
#: Lines shorter than this are deliberate (a heading, a list line, a signature): their breaks are kept.
_SHORT_LINE = 50


# --- clinical text -------------------------------------------------------------------------------------


def readable(text: str) -> str:
    """A clinical text with the line breaks a PDF or a form wrapped it at made spaces (paragraphs, headings and
    list lines kept). One character for one, so that the evidence offsets into the text still hold."""
    out = list(text)
    start = 0
    for n, char in enumerate(text):
        if char != "\n":
            continue
        line, after = text[start:n], text[n + 1 : n + 40]
        start = n + 1
        if len(line.strip()) >= _SHORT_LINE and after[:1] not in ("\n", "") and not _LIST_LINE.match(after.lstrip()):
            out[n] = " "
    return "".join(out)


@dataclass(frozen=True)
class Fact:
    """One fact an item rests on, as the page shows it: its words, status, quote and where the quote is."""

    fact: str
    status: str
    quote: str | None
    source: str | None
    #: Whether the rules that made the recommendation read it.
    decisive: bool

    @property
    def words(self) -> str:
        return self.fact.replace("_", " ")


@dataclass
class Document:
    """A clinical text, as segments (plain, or a marked quote with its fact)."""

    source: str
    title: str
    when: str | None
    segments: list[JSON] = field(default_factory=list)
    marked: int = 0


def _locate(text: str, quote: str, near: int | None) -> int:
    """Where a quote is in its text: at or before the phrase's offset when it is known, else anywhere."""
    if near is not None:
        found = text.find(quote, max(0, near - len(quote)))
        if 0 <= found <= near:
            return found
    return text.find(quote)


def documents(texts: Iterable[tuple[str, str]], facts: Sequence[tuple[Fact, int | None]],
              case: CaseContext | None) -> tuple[list[Document], dict[int, str]]:  # fmt: skip
    """The clinical texts with every fact's quote marked (decisive quotes first where two overlap), and the
    anchor of each fact's mark by its place in ``facts``. ``facts``: (fact, offset of its phrase)."""
    anchors: dict[int, str] = {}
    out = []
    order = sorted(range(len(facts)), key=lambda n: not facts[n][0].decisive)
    for d, (source, text) in enumerate(dict(texts).items()):
        marks: list[tuple[int, int, int]] = []
        for n in order:
            fact, near = facts[n]
            if not fact.quote or fact.source not in (None, source):
                continue
            start = _locate(text, fact.quote, near)
            end = start + len(fact.quote)
            if start < 0:
                continue
            same = next((m for m in marks if (m[0], m[1]) == (start, end)), None)
            if same is not None:
                anchors[n] = anchors[same[2]]
            elif not any(s < end and start < e for s, e, _ in marks):
                marks.append((start, end, n))
                anchors[n] = f"q{d}-{len(marks)}"
        title = case.title_of(source) if case else NoteTitle(source=source, title="Clinical note")
        document = Document(source, title.title, title.when, marked=len(marks))
        at, shown = 0, readable(text)
        for start, end, n in sorted(marks):
            fact = facts[n][0]
            document.segments.append({"text": shown[at:start]})
            document.segments.append({"text": shown[start:end], "fact": fact.words, "status": fact.status,
                                      "anchor": anchors[n], "decisive": fact.decisive})  # fmt: skip
            at = end
        document.segments.append({"text": shown[at:]})
        out.append(document)
    return sorted(out, key=lambda doc: -doc.marked), anchors


# --- an item and a case --------------------------------------------------------------------------------


def _decisive(response: JSON, sequence: int) -> list[JSON]:
    """The evidence the recommendation's rules read for an item (the ClaimResponse's evidence extensions)."""
    item: JSON = next((i for i in response.get("item", []) if i.get("itemSequence") == sequence), {})
    return evidence_of(item, mappings().tables.fhir.extensions.evidence)


def suggested_rationale(task: JSON, policy: Policy) -> str:
    """The rationale a physician starts from: the recommendation's own (why the guideline says so, with its
    citation), without the words ``policy``'s jurisdiction pended it for a physician with."""
    given = " ".join(str(r) for r in inputs(task, "rationale") if r)
    if not given or given.startswith(PENDED_NO_RULE):
        return ""
    words = policy.adverse.reasons(given).strip()
    citations = [str(c) for c in inputs(task, "citation") if c and str(c) not in words]
    return " ".join([words, *(f"({c})" for c in citations)]).strip()


def item_facts(task: JSON, response: JSON, item: CaseItem | None) -> list[tuple[Fact, int | None]]:
    """An item's facts, those the recommendation rests on first (its evidence, then what its rules read that no
    sentence states, such as the drugs of a class in use), each with the offset of its phrase."""
    decisive = _decisive(response, sequence_of(task))
    named = {e.get("fact") for e in decisive}
    found = {f.fact: f for f in (item.findings if item else [])}
    facts = [(Fact(str(e.get("fact")), str(e.get("status")), e.get("quote"), e.get("source"), True),
              found[e["fact"]].start if e.get("fact") in found else None) for e in decisive]  # fmt: skip
    facts += [
        (Fact(r.fact, r.value, None, None, True), None) for r in (item.read if item else []) if r.fact not in named
    ]
    facts += [
        (Fact(f.fact, f.status, f.quote, f.source, False), f.start) for f in found.values() if f.fact not in named
    ]
    return facts


def item_view(task: JSON, response: JSON, now: datetime, policy: Policy) -> JSON:
    """What the page shows of one review Task, facts and documents aside (due in ``policy``'s time)."""
    due = due_of(task, policy)
    left, overdue = time_left(due, now)
    return {
        "id": task["id"],
        "sequence": sequence_of(task),
        "service": first_input(task, "requested-service") or "requested service",
        "status": task["status"],
        "decision": decision_of(task),
        "recommendation": recommendation_of(task),
        "rules": inputs(task, "rule"),
        "citations": inputs(task, "citation"),
        "rationale": inputs(task, "rationale"),
        "suggested": suggested_rationale(task, policy),
        "missing": inputs(task, "documentation-missing"),
        "requested_quantity": first_input(task, "requested-quantity"),
        "clock": first_input(task, "clock") or "standard",
        "due": due.strftime("%a %d %b %Y, %H:%M %Z"),
        "left": left,
        "overdue": overdue,
        "answer": answer_of(response, sequence_of(task)),
        "owner": (task.get("owner") or {}).get("display"),
        "notes": [n.get("text") for n in task.get("note", [])],
    }


def documentation_asked(response: JSON, ehr_asks: Iterable[tuple[int, str]], kept: Iterable[JSON]) -> dict[int, str]:
    """For each pended item asked for documentation, when it was asked and whether it came: "asked on 3 Dec 2026,
    not received" or "..., received 5 Dec 2026". Asked in the PAS answer (its PASCommunicationRequests) or of
    the EHR (``ehr_asks``: line and when, the worker's CDex Tasks); received as attachments kept with the answer
    (``kept``, tagged with their lines)."""
    pended = pended_lines(response)
    asked = asked_on(response)
    for line, when in ehr_asks:
        asked.setdefault(line, when)
    received: dict[int, str] = {}
    for resource in kept:
        for line in attachment_lines(resource):
            received[line] = max(received.get(line, ""), str((resource.get("meta") or {}).get("lastUpdated", "")))
    came = {line: f"received {_day(when)}" for line, when in received.items()}
    return {line: f"asked on {_day(when)}, {came.get(line, 'not received')}" for line, when in asked.items()
            if line in pended}  # fmt: skip


def _day(instant: str) -> str:
    return datetime.fromisoformat(instant).strftime("%d %b %Y")


def answer_of(response: JSON, sequence: int) -> ReviewAction | None:
    """The review action a ClaimResponse gives an item now."""
    item = next((i for i in response.get("item", []) if i.get("itemSequence") == sequence), None)
    code = review_action_code(item.get("adjudication", [])) if item else None
    return ReviewAction(code) if code else None


def time_left(due: datetime, now: datetime) -> tuple[str, bool]:
    """("2 days 4 h left" or "overdue by 3 h", overdue?)."""
    seconds = int((due - now).total_seconds())
    hours, days = abs(seconds) // 3600, abs(seconds) // 86400
    span = f"{days} day{'s' * (days != 1)} {hours % 24} h" if days else f"{hours} h {abs(seconds) // 60 % 60} min"
    return (f"overdue by {span}", True) if seconds < 0 else (f"{span} left", False)


@dataclass(frozen=True)
class Earlier:
    """Another request of the same patient, with its answers, and whether it asks for the same service."""

    id: str
    received: datetime
    answers: list[tuple[str, ReviewAction | None]]
    duplicate: bool


def earlier(case: CaseContext, others: Sequence[tuple[CaseContext, JSON | None]]) -> list[Earlier]:
    """The patient's other requests, newest first: each with its answers now, and flagged when it asks for a
    service of this case within ``DUPLICATE_DAYS`` of it (open or decided; whichever channel sent it)."""
    twins = set(duplicates(case, [other for other, _ in others]))
    return [Earlier(other.id, other.received, [(i.service, answer_of(response or {}, i.sequence)) for i in other.items],
                    other.id in twins)
            for other, response in others if other.id != case.id]  # fmt: skip


# --- the queue ----------------------------------------------------------------------------------------


@dataclass
class QueueCase:
    """One case in the queue: its open items, soonest due first."""

    id: str
    patient: str
    items: list[JSON]
    due: datetime
    duplicates: list[str] = field(default_factory=list)

    @property
    def expedited(self) -> bool:
        return any(i["clock"] == "expedited" for i in self.items)


def queue_cases(
    open_tasks: Sequence[JSON], cases: dict[str, CaseContext], now: datetime, policy: Policy
) -> list[QueueCase]:
    """Open review Tasks grouped by case (the ClaimResponse they decide), the soonest due case first."""
    grouped: dict[str, QueueCase] = {}
    for task in open_tasks:
        rid = response_of(task)
        due = due_of(task, policy)
        left, overdue = time_left(due, now)
        service = first_input(task, "requested-service") or "requested service"
        item = {"id": task["id"], "service": service, "category": categorise(service).replace("-", " "),
                "recommendation": recommendation_of(task), "clock": first_input(task, "clock") or "standard",
                "due": due.strftime("%a %d %b, %H:%M"), "left": left, "overdue": overdue,
                "owner": _owner(task)}  # fmt: skip
        case = cases.get(rid)
        if rid not in grouped:
            grouped[rid] = QueueCase(rid, case.patient if case else _patient_label(task), [], due)
        grouped[rid].items.append(item)
        grouped[rid].due = min(grouped[rid].due, due)
    return sorted(grouped.values(), key=lambda c: (c.due, c.id))


def _owner(task: JSON) -> str | None:
    """Who an open Task was handed to (``system|value`` of its owner), if anyone."""
    identifier = (task.get("owner") or {}).get("identifier") or {}
    return f"{identifier.get('system')}|{identifier.get('value')}" if identifier.get("value") else None


def _patient_label(task: JSON) -> str:
    patient = task.get("for") or {}
    identifier = patient.get("identifier") or {}
    return f"member {identifier['value']}" if identifier.get("value") else str(patient.get("reference") or "unknown")


def due_today(case: QueueCase, now: datetime, policy: Policy) -> bool:
    """Whether a case has an item due by the end of today (the jurisdiction's day) or overdue."""
    zone = policy.deadlines.zone
    end = datetime.combine(now.astimezone(zone).date() + timedelta(days=1), datetime.min.time(), zone)
    return case.due < end


def duplicates(case: CaseContext, others: Iterable[CaseContext]) -> list[str]:
    """The ids of the patient's other cases within ``DUPLICATE_DAYS`` that ask for one of this case's services."""
    keys = {i.key for i in case.items}
    window = timedelta(days=DUPLICATE_DAYS)
    return [o.id for o in others if o.id != case.id and abs(o.received - case.received) <= window
            and any(i.key in keys for i in o.items)]  # fmt: skip
