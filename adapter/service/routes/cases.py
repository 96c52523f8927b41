"""The review workstation: the queue of open cases and a case's page, where a physician reads the request with
its patient and records and decides its items.

A case is one request with its items (the review Tasks of one ClaimResponse). Its page shows the items side by
side (recommendation, rules, citations, the facts that decided and the documentation still missing), the
patient (age, sex, date of injury, diagnoses, treatment and medication history, earlier requests and their
answers, duplicates flagged) and the clinical texts, readable, with every evidence quote marked and linked
from its fact. One form decides several items at once (the rationale prefilled from the recommendation),
saves a draft, asks the provider for documentation, notes a peer-to-peer call or hands the case to another
reviewer; a decided item never reopens. A validation error keeps every choice and word on the form.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from functools import partial
from typing import Annotated
from urllib.parse import urlencode

from fastapi import APIRouter, Query, Request, Response
from fastapi.responses import RedirectResponse
from starlette.concurrency import run_in_threadpool

from adapter.actions import ReviewAction
from adapter.errors import AdapterError, ReviewDecisionError
from adapter.review.cases import DUPLICATE_DAYS, CaseContext
from adapter.review.person import Person
from adapter.review.revisions import Draft, ask_documentation, draft_of, hand_off, note_call, save_draft
from adapter.review.tasks import (
    DECISIONS,
    Decision,
    decision_for,
    decision_of,
    first_input,
    response_of,
    sequence_of,
)
from adapter.service.http import FHIR_ID, ServiceError
from adapter.service.pipeline import for_payer
from adapter.service.reviewers import Reviewers
from adapter.service.routes import Capability, ServiceContext, context
from adapter.service.routes.pages import SignedIn, check_csrf, render, signed_in, to_login
from adapter.service.routes.tasks import decide_task, stored_task
from adapter.service.workstation import (
    Fact,
    QueueCase,
    documentation_asked,
    documents,
    due_today,
    duplicates,
    earlier,
    item_facts,
    item_view,
    queue_cases,
)
from adapter.types import JSON

router = APIRouter(prefix="/review", include_in_schema=False)
CAPABILITY = Capability()  # pages for people: nothing for the CapabilityStatement
#: Open review Tasks the queue reads at most (grouped into cases, then filtered).
QUEUE_TASKS = 500
#: Cases a page of the queue shows.
QUEUE_PAGE = 50
#: Earlier requests of a patient a case page lists at most.
EARLIER = 20
#: The most a form field may hold (a rationale, a question, a call note).
MAX_FIELD = 4000


def _not_found() -> ServiceError:
    return ServiceError(404, "no such case", code="not-found", issue_type="not-found")


# --- the queue ------------------------------------------------------------------------------------------


@router.get("")
def queue(
    request: Request,
    due: Annotated[str, Query(max_length=10)] = "",
    clock: Annotated[str, Query(max_length=20)] = "",
    category: Annotated[str, Query(max_length=60)] = "",
    mine: Annotated[str, Query(max_length=3)] = "",
    done: Annotated[str, Query(max_length=64)] = "",
    page: Annotated[int, Query(ge=1, le=100_000)] = 1,
) -> Response:
    """The open cases, soonest due first, filtered (due today, expedited, by category, handed to me), each
    flagged when the same patient asked for the same service within 60 days; ``QUEUE_PAGE`` cases a page."""
    who = signed_in(request, "s")
    if who is None:
        return to_login()
    ctx = context(request)
    now = datetime.now(UTC)
    total, open_tasks = ctx.store.search_tasks(status=["requested"], count=QUEUE_TASKS)
    rids = list(dict.fromkeys(response_of(t) for t in open_tasks))
    kept = ctx.store.cases(rids)
    cases = queue_cases(open_tasks, kept, now, ctx.policy)
    _flag_duplicates(ctx, cases, kept)
    categories = sorted({i["category"] for c in cases for i in c.items})
    me = f"{who.reviewer.person.identifier['system']}|{who.reviewer.npi}" if who.reviewer else None
    shown = [c for c in cases
             if (due != "today" or due_today(c, now, ctx.policy)) and (clock != "expedited" or c.expedited)
             and (not category or any(i["category"] == category for i in c.items))
             and (not mine or any(i["owner"] == me for i in c.items))]  # fmt: skip
    finished = _decided(ctx, done) if done and FHIR_ID.fullmatch(done) else []
    filters = {"due": due, "clock": clock, "category": category, "mine": mine}
    pages = max(1, -(-len(shown) // QUEUE_PAGE))
    return render(request, "queue.html", who, cases=shown[(page - 1) * QUEUE_PAGE : page * QUEUE_PAGE],
                  shown=len(shown), total=total, categories=categories, filters=filters, done=finished, page=page,
                  pages=pages, query=urlencode({k: v for k, v in filters.items() if v}),
                  wording=ctx.policy.wording)  # fmt: skip


def _decided(ctx: ServiceContext, rid: str) -> list[tuple[str, ReviewAction]]:
    """(service, decision) of each decided item of a case: what the queue says was just recorded."""
    decided = [(t, decision_of(t)) for t, _ in ctx.store.case_tasks(rid)]
    return [(str(first_input(t, "requested-service") or "requested service"), d) for t, d in decided if d]


def _flag_duplicates(ctx: ServiceContext, cases: list[QueueCase], kept: Mapping[str, CaseContext]) -> None:
    """Mark each queued case with the patient's other requests for one of its services within 60 days."""
    patients = sorted({c.patient_key for c in kept.values() if c.patient_key})
    if not patients:
        return
    since = min(c.received for c in kept.values()) - timedelta(days=DUPLICATE_DAYS)
    others = ctx.store.cases_of(patients, int(since.timestamp() * 1_000_000))
    for queued in cases:
        case = kept.get(queued.id)
        if case is not None:
            queued.duplicates = duplicates(case, [o for o in others if o.patient_key == case.patient_key])


# --- a case ---------------------------------------------------------------------------------------------


@dataclass
class Entered:
    """What the form held, given back to it on a validation error (nothing the physician chose is lost)."""

    decisions: dict[str, str] = field(default_factory=dict)
    rationales: dict[str, str] = field(default_factory=dict)
    quantities: dict[str, str] = field(default_factory=dict)
    asked: set[str] = field(default_factory=set)
    question: str = ""
    call_with: str = ""
    call_date: str = ""
    call_said: str = ""
    handoff: str = ""
    #: Errors by Task id ("" for the form as a whole).
    errors: dict[str, str] = field(default_factory=dict)


def _case_page(request: Request, who: SignedIn, rid: str, entered: Entered | None = None,
               saved: str | None = None) -> Response:  # fmt: skip
    ctx = context(request)
    case = ctx.store.cases([rid]).get(rid)
    found = ctx.store.case_tasks(rid)
    response = ctx.store.claim_response(rid)
    if not found or response is None:
        raise _not_found()
    now = datetime.now(UTC)
    by_sequence = {i.sequence: i for i in (case.items if case else [])}
    items: list[JSON] = []
    facts_of: list[tuple[int, int]] = []
    all_facts: list[tuple[Fact, int | None]] = []
    texts: list[tuple[str, str]] = []
    for task, task_texts in found:
        view = item_view(task, response, now, ctx.policy)
        facts = item_facts(task, response, by_sequence.get(view["sequence"]))
        first = len(all_facts)
        all_facts += facts
        facts_of.append((first, len(facts)))
        texts += task_texts
        items.append(view | {"draft": draft_of(task)})
    docs, anchors = documents(texts, all_facts, case)
    for view, (first, count) in zip(items, facts_of, strict=True):
        view["facts"] = [(all_facts[n][0], anchors.get(n)) for n in range(first, first + count)]
    ehr_asks = [(a.line, str(a.task.get("authoredOn"))) for a in ctx.store.attachment_requests(answer=rid)]
    asked = documentation_asked(response, ehr_asks, ctx.store.resources_of(rid))
    for view in items:
        view["asked"] = asked.get(view["sequence"]) if view["status"] == "requested" else None
    others = ctx.store.cases_of([case.patient_key], 0, EARLIER + 1) if case and case.patient_key else []
    history = earlier(case, [(o, ctx.store.claim_response(o.id)) for o in others]) if case else []
    reviewers = [
        r for r in Reviewers(ctx.store).all() if r.active and (who.reviewer is None or r.id != who.reviewer.id)
    ]
    entered = entered or Entered(
        decisions={i["id"]: i["draft"].action.value for i in items if i["draft"].action},
        rationales={i["id"]: i["draft"].rationale or i["suggested"] for i in items},
        quantities={i["id"]: f"{i['draft'].quantity:g}" for i in items if i["draft"].quantity is not None},
    )
    return render(request, "case.html", who, case=case, rid=rid, items=items, documents=docs, earlier=history,
                  decisions=DECISIONS, entered=entered, saved=saved, reviewers=reviewers, today=now.date().isoformat(),
                  open=[i for i in items if i["status"] == "requested"],
                  version=response.get("meta", {}).get("versionId"), outcome=response.get("outcome"))  # fmt: skip


#: What the page says after a post that stays on the case, by the action done.
SAVED = {"decide": "Decisions recorded; the ClaimResponse has them.", "draft": "Draft saved.",
         "ask": "Documentation asked of the provider; the items wait for it.", "note": "Call note saved.",
         "handoff": "Handed off."}  # fmt: skip


@router.get("/cases/{rid}")
def case_page(request: Request, rid: str, saved: Annotated[str, Query(max_length=10)] = "") -> Response:
    who = signed_in(request, "r")
    if who is None:
        return to_login()
    if not FHIR_ID.fullmatch(rid):
        raise _not_found()
    return _case_page(request, who, rid, saved=SAVED.get(saved))


@router.get("/tasks/{task_id}")
def task_page(request: Request, task_id: str) -> Response:
    """A review Task's page is its item on its case's page (links made before cases had pages still lead there)."""
    who = signed_in(request, "r")
    if who is None:
        return to_login()
    task, _ = stored_task(context(request), task_id)
    return RedirectResponse(f"/review/cases/{response_of(task)}#item-{sequence_of(task)}", status_code=303)


async def _entered(request: Request) -> tuple[str, str, Entered]:
    """(csrf, action, what the form held), every field bounded."""
    form = await request.form(max_files=0, max_fields=400)
    values = {k: str(v)[:MAX_FIELD] for k, v in form.items() if isinstance(v, str)}
    ids = {k.split("-", 1)[1] for k in values if k.startswith(("decision-", "rationale-", "quantity-", "ask-"))}
    entered = Entered(
        decisions={i: values[f"decision-{i}"] for i in ids if values.get(f"decision-{i}")},
        rationales={i: values.get(f"rationale-{i}", "") for i in ids},
        quantities={i: values.get(f"quantity-{i}", "") for i in ids if values.get(f"quantity-{i}")},
        asked={i for i in ids if values.get(f"ask-{i}")},
        question=values.get("question", ""),
        call_with=values.get("call-with", ""),
        call_date=values.get("call-date", ""),
        call_said=values.get("call-said", ""),
        handoff=values.get("handoff", ""),
    )
    return values.get("csrf", ""), values.get("action", ""), entered


@router.post("/cases/{rid}")
async def act(request: Request, rid: str) -> Response:
    """A post of the case's form: record decisions, save a draft, ask for documentation, note a call, or hand
    the case on. Blocking work runs in the thread pool (FastAPI runs a ``def`` dependency there, not this)."""
    csrf, action, entered = await _entered(request)
    return await run_in_threadpool(_act, request, rid, csrf, action, entered)


def _act(request: Request, rid: str, csrf: str, action: str, entered: Entered) -> Response:
    who = signed_in(request, "u")
    if who is None:
        return to_login()
    check_csrf(request, who, csrf)
    if who.reviewer is None:
        raise ServiceError(403, "a decision on this page names the reviewer: sign in as one (not with a token)",
                           code="reviewer-required", issue_type="forbidden")  # fmt: skip
    if not FHIR_ID.fullmatch(rid):
        raise _not_found()
    if action != "decide" and action not in _REVISIONS:
        raise ServiceError(400, "the form names no action this page knows", code="bad-form", issue_type="value")
    ctx = context(request)
    request.state.target = f"ClaimResponse/{rid}"
    try:
        done = _apply(_Post(ctx, who, rid, entered, datetime.now(UTC)), action)
    except AdapterError as exc:
        if isinstance(exc, ServiceError) and exc.status in (401, 403, 404, 429):
            raise
        entered.errors.setdefault("", exc.message)
    if entered.errors:
        page = _case_page(request, who, rid, entered)
        page.status_code = 422
        return page
    if done and not any(t["status"] == "requested" for t, _ in ctx.store.case_tasks(rid)):
        return RedirectResponse(f"/review?done={rid}", status_code=303)  # the case is finished: the next one
    return RedirectResponse(f"/review/cases/{rid}?saved={action}", status_code=303)


#: What a revision does to a case's Tasks and its answer (``Store.revise_case``).
Revise = Callable[[list[JSON], JSON], tuple[list[JSON], JSON | None]]


@dataclass(frozen=True)
class _Post:
    """A post of the case's form, as its action sees it."""

    ctx: ServiceContext
    who: SignedIn
    rid: str
    entered: Entered
    now: datetime

    @property
    def author(self) -> str:
        return self.who.reviewer.name if self.who.reviewer else self.who.principal.name

    def revise(self, ids: list[str], revise: Revise, action: str, *, forward: bool = False) -> None:
        """Keep the Tasks' (and, when ``forward``, the answer's) next versions, audited as ``action``."""
        send = for_payer if forward and self.ctx.settings.forwarding else None
        self.ctx.store.revise_case(self.rid, ids, revise, forward=send, who=self.who.principal.name, action=action)


def _apply(post: _Post, action: str) -> bool:
    """Carry out a form's action; True when items were decided. Errors by item land in ``entered.errors``."""
    open_tasks = {t["id"]: t for t, _ in post.ctx.store.case_tasks(post.rid) if t["status"] == "requested"}
    if action == "decide":
        return _decide(post, open_tasks)
    if not open_tasks:
        raise ReviewDecisionError("Every item of this case is decided; a decided item does not reopen.")
    _REVISIONS[action](post, list(open_tasks))
    return False


def _save_drafts(post: _Post, ids: list[str]) -> None:
    drafts = {i: _draft(post.entered, i) for i in ids}
    post.revise(ids, lambda tasks, _: ([save_draft(t, drafts[t["id"]], post.now) for t in tasks], None),
                "review draft")  # fmt: skip


def _note_call(post: _Post, ids: list[str]) -> None:
    held, entered = _date(post.entered.call_date), post.entered
    post.revise(ids, lambda tasks, _: ([note_call(t, held=held, with_whom=entered.call_with, said=entered.call_said,
                                                  author=post.author, now=post.now) for t in tasks], None),
                "review call note")  # fmt: skip


def _hand_off(post: _Post, ids: list[str]) -> None:
    other = Reviewers(post.ctx.store).get(post.entered.handoff) if post.entered.handoff else None
    if other is None or not other.active:
        raise ReviewDecisionError("Choose the reviewer to hand this case to.")
    owner = {"identifier": other.person.identifier, "display": other.name}
    post.revise(ids, lambda tasks, _: ([hand_off(t, owner, author=post.author, now=post.now) for t in tasks], None),
                "review hand-off")  # fmt: skip


def _ask(post: _Post, ids: list[str]) -> None:
    asked = [i for i in ids if i in post.entered.asked]
    if not asked:
        raise ReviewDecisionError("Tick the items the provider is asked to document.")
    case = post.ctx.store.cases([post.rid]).get(post.rid)
    needs = {i.sequence: i.needs for i in (case.items if case else [])}
    post.revise(asked, lambda tasks, response: ask_documentation(tasks, response, needs, post.entered.question,
                                                                 author=post.author, now=post.now,
                                                                 policy=post.ctx.policy),
                "review asked for documentation", forward=True)  # fmt: skip


#: What each of the form's buttons other than "Record decisions" does to the case's open Tasks.
_REVISIONS = {"draft": _save_drafts, "note": _note_call, "handoff": _hand_off, "ask": _ask}


def _draft(entered: Entered, task_id: str) -> Draft:
    code = entered.decisions.get(task_id)
    quantity = entered.quantities.get(task_id, "")
    try:
        amount = float(quantity) if quantity else None
    except ValueError:
        amount = None
    return Draft(ReviewAction(code) if code in {a.value for a in DECISIONS} else None,
                 entered.rationales.get(task_id, ""), amount)  # fmt: skip


def _date(value: str) -> date:
    try:
        return date.fromisoformat(value)
    except ValueError as exc:
        raise ReviewDecisionError("Give the date of the call (year-month-day).", location="Task.note") from exc


def _chosen(code: str, rationale: str, quantity: str, person: Person) -> tuple[Callable[[JSON], Decision] | None, str]:
    """How a chosen decision decides its Task (checked against the Task as it stands), or the reason it cannot
    (in the review's words)."""
    action = ReviewAction(code) if code in {a.value for a in DECISIONS} else None
    if action is None:
        return None, "Choose certify, modify or not certify."
    amount = None
    if action is ReviewAction.MODIFIED:
        try:
            amount = float(quantity)
        except ValueError:
            return None, "Give the quantity to authorize (a number) to modify."
    return partial(decision_for, action=action, rationale=rationale, quantity=amount, reviewer=person.reference(),
                   person=person), ""  # fmt: skip


def _decide(post: _Post, open_tasks: Mapping[str, JSON]) -> bool:
    """Decide every item the form chose a decision for; all are checked before any is recorded, so a form
    with one mistake records nothing and comes back with every choice kept."""
    who, entered = post.who, post.entered
    assert who.reviewer is not None
    chosen = {i: c for i, c in entered.decisions.items() if c}
    if not chosen:
        entered.errors[""] = "Choose a decision for at least one item."
        return False
    made: dict[str, Callable[[JSON], Decision]] = {}
    for task_id, code in chosen.items():
        if task_id not in open_tasks:
            entered.errors[task_id] = "This item is already decided; a decided item does not reopen."
            continue
        rationale, quantity = entered.rationales.get(task_id, ""), entered.quantities.get(task_id, "")
        decision, problem = _chosen(code, rationale, quantity, who.reviewer.person)
        if decision is not None:
            try:
                decision(open_tasks[task_id])
            except ReviewDecisionError as exc:
                problem = exc.message
        if problem:
            entered.errors[task_id] = problem
        elif decision is not None:
            made[task_id] = decision
    if entered.errors:
        return False
    for task_id, decision in made.items():
        decide_task(post.ctx, task_id, decision, who.principal.name)
    return True
