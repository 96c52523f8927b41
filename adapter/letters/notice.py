"""The MAXIMUS notice layout (2013): ``MAXIMUS FEDERAL SERVICES, INC.`` / ``Notice of Independent Medical
Review Determination`` / ``Dated: 9/26/2013``, the decisions as numbered sentences ("1) MAXIMUS Federal
Services, Inc. has determined the request for <item> is not medically necessary and appropriate."), each
repeated before its guidelines and rationale."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from adapter.errors import MissingSectionError
from adapter.letters import _common, _text
from adapter.model import Decision, DisputedItem, IMRCase, Layout

_START = re.compile(r"\A\s*MAXIMUS\s+FEDERAL\s+SERVICES,?\s+INC\.?", re.IGNORECASE)
_NOTICE = re.compile(r"Notice\s+of\s+Independent\s+Medical\s+Review\s+Determination", re.IGNORECASE)
_DETERMINED = re.compile(
    r"(?:^|\n)\s*(?P<n>\d{1,2})\s*[).]\s*MAXIMUS\s+Federal\s+Services,?\s+Inc\.?\s+has\s+determined\s+"
    r"(?:that\s+)?the\s+request\s+for\s+(?P<item>.+?)\s+(?:is|are|was|were)\s*(?P<not>not\s*)?"
    r"medically\s*necessary(?:\s*and\s*appropriate)?\s*\.?",
    re.IGNORECASE | re.DOTALL,
)
_SUMMARY = re.compile(r"(?:Expert\s+Reviewer\s+)?(?:CLINICAL\s+)?Case\s+Summary\s*:?\s*\n", re.IGNORECASE)
_QUALIFICATIONS = re.compile(r"Medical\s+Qualifications\s+of\s+the\s+Expert\s+Reviewer\s*:?", re.IGNORECASE)
_DECISIONS = re.compile(
    r"INDEPENDENT\s+MEDICAL\s+REVIEW\s+DECISION\s+AND\s+RATIONALE|IMR\s+DECISION\(S\)\s+AND\s+RATIONALE\(S\)",
    re.IGNORECASE,
)
_WHO = {"claims": r"Claims\s+Administrator", "reviewer": r"Expert\s+Reviewer"}
_LABELS = re.compile(
    "|".join(
        rf"(?P<{key}>(?:Section\s+of\s+the\s+)?(?:Medical\s+Treatment\s+(?:Utilization\s+Schedule\s+\(MTUS\)\s+or\s+"
        rf"other\s+evidence-based\s+guidelines|Guideline\(s\))\s+)?(?:used|relied\s+upon)\s+by\s+the\s+{who}\s*:)"
        for key, who in _WHO.items()
    )
    + r"|(?P<rationale>Rationale\s+for\s+the\s+Decision\s*:)",
    re.IGNORECASE,
)


def detect(text: str) -> bool:
    return bool(_START.match(text)) and bool(_NOTICE.search(text[:3000]))


@dataclass
class _Item:
    request: str
    decision: Decision
    bodies: list[str] = field(default_factory=list)


def _summary(text: str, matches: list[re.Match[str]]) -> tuple[re.Match[str] | None, re.Match[str] | None, str]:
    """(qualifications heading, summary heading, summary text): the summary runs to the first numbered
    determination after it."""
    qualifications = _QUALIFICATIONS.search(text)
    summary_at = _SUMMARY.search(text, qualifications.end() if qualifications else 0)
    if not summary_at:
        return qualifications, None, ""
    first_item = next((m.start() for m in matches if m.start() > summary_at.end()), len(text))
    return qualifications, summary_at, text[summary_at.end() : first_item]


def summary(text: str) -> str:
    """The case summary section."""
    return _summary(text, list(_DETERMINED.finditer(text)))[2]


def parse(text: str) -> IMRCase:
    """Parse a MAXIMUS notice layout letter."""
    warnings = _common.Warnings()
    items: dict[int, _Item] = {}
    matches = list(_DETERMINED.finditer(text))
    if not matches:
        raise MissingSectionError("no numbered determination sentence was found", location="determinations")
    for n, found in enumerate(matches):
        number = int(found["n"])
        decision = Decision.UPHELD if found["not"] is not None else Decision.OVERTURNED
        request = _text.collapse(found["item"])
        item = items.setdefault(number, _Item(request=request, decision=decision))
        if item.decision != decision:
            raise MissingSectionError(f"item {number} is given two different decisions", location=f"item {number}")
        stop = matches[n + 1].start() if n + 1 < len(matches) else len(text)
        item.bodies.append(text[found.end() : stop])

    decisions_at = _DECISIONS.search(text)
    header = text[: decisions_at.start()] if decisions_at else text[: matches[0].start()]
    qualifications, summary_at, case_summary = _summary(text, matches)
    credentials = text[qualifications.end() : summary_at.start() if summary_at else None] if qualifications else ""
    return IMRCase(
        case_number=_common.case_number(header, text, warnings),
        layout=Layout.MAXIMUS_NOTICE,
        dates=_common.dates(
            header, "", warnings, decision_label="Dated", ur_labels=("UR Denial Date", "Date of UR Decision")
        ),
        priority=_common.priority(header, warnings),
        patient=_common.patient(case_summary, warnings),
        reviewer=_common.reviewer(*_text.prose_credentials(credentials), warnings),
        diagnoses=_text.diagnoses(case_summary),
        treatment_history=_text.treatment_history(case_summary),
        items=[_disputed(item) for _, item in sorted(items.items())],
        warnings=warnings,
    )


def _disputed(item: _Item) -> DisputedItem:
    fields = _text.labelled_fields(max(item.bodies, key=len), _LABELS)
    return _common.disputed_item(
        item.request,
        item.decision,
        cite=_text.prose_citations,
        reviewer_guideline=fields.get("reviewer"),
        claims_guideline=fields.get("claims"),
        rationale=fields.get("rationale"),
    )


LAYOUTS = [_common.LetterLayout(Layout.MAXIMUS_NOTICE, detect, parse, summary)]
