"""The professional-review layout: ``MEDICAL PROFESSIONAL REVIEW`` with ``ISSUE AT DISPUTE:``,
``CASE SUMMARY:``, the guidelines relied upon, a rationale and ``MEDICAL REVIEWER QUALIFICATIONS:``.

The letter states no decision word: it is read from the rationale's conclusion ("... is not medically
necessary" = upheld; "... is medically necessary" = overturned). Several issues are numbered, in the
issue list and in the rationale alike.
"""

from __future__ import annotations

import re

from adapter.errors import MissingSectionError
from adapter.letters import _common, _text
from adapter.model import Decision, DisputedItem, IMRCase, Layout

_START = re.compile(r"\A\s*MEDICAL\s+PROFESSIONAL\s+REVIEW\b", re.IGNORECASE)
ISSUE = "ISSUE AT DISPUTE:"
SUMMARY = "CASE SUMMARY:"
DOCUMENTS = "DOCUMENTS REVIEWED FOR DETERMINATION:"
GUIDELINES = "MEDICAL TREATMENT GUIDELINE(S) RELIED UPON BY PROFESSIONAL REVIEWER AND WHY:"
RATIONALE = "RATIONALE FOR WHY THE REQUESTED TREATMENT/SERVICE IS/WAS NOT MEDICALLY NECESSARY:"
QUALIFICATIONS = "MEDICAL REVIEWER QUALIFICATIONS:"
_HEADINGS = (ISSUE, SUMMARY, DOCUMENTS, GUIDELINES, RATIONALE, QUALIFICATIONS)

_NUMBERED = re.compile(r"(?:^|\n)\s*(\d{1,2})\s*[.)]\s+")
_CONCLUSION = re.compile(r"\b(?:is|are|was|were|be)\s+(not\s+)?(?:considered\s+)?medically\s+necessary", re.IGNORECASE)


def detect(text: str) -> bool:
    return bool(_START.match(text))


def _part(text: str, heading: str) -> str:
    return _text.section(text, heading, *(h for h in _HEADINGS if h != heading)) or ""


def _numbered(block: str) -> list[str]:
    """``1. a  2. b`` as [a, b]; a block without numbers as one part."""
    marks = list(_NUMBERED.finditer(block))
    if not marks:
        return [block] if block.strip() else []
    return [block[m.end() : marks[i + 1].start() if i + 1 < len(marks) else len(block)] for i, m in enumerate(marks)]


def _decision(rationale: str, where: str) -> Decision:
    conclusions = list(_CONCLUSION.finditer(_text.collapse(rationale)))
    if not conclusions:
        raise MissingSectionError("the rationale states no conclusion on medical necessity", location=where)
    return Decision.UPHELD if conclusions[-1][1] else Decision.OVERTURNED


def summary(text: str) -> str:
    """The case summary section."""
    return _part(text, SUMMARY)


def parse(text: str) -> IMRCase:
    """Parse a professional-review layout letter."""
    warnings = _common.Warnings()
    requests = [_text.collapse(r) for r in _numbered(_part(text, ISSUE))]
    if not requests:
        raise MissingSectionError(f"no '{ISSUE}' section", location="ISSUE AT DISPUTE")
    rationale_block = _part(text, RATIONALE)
    if not rationale_block.strip():
        raise MissingSectionError("no rationale section", location="RATIONALE")
    rationales = _numbered(rationale_block)
    if len(rationales) != len(requests):
        rationales = [rationale_block] * len(requests)
    guideline_block = _part(text, GUIDELINES)
    guideline_parts = _numbered(guideline_block)
    if len(guideline_parts) != len(requests):
        guideline_parts = [guideline_block] * len(requests)

    items: list[DisputedItem] = []
    for n, (request, rationale, guideline) in enumerate(zip(requests, rationales, guideline_parts, strict=True)):
        items.append(
            _common.disputed_item(
                request,
                _decision(rationale, f"item {n + 1}"),
                cite=_text.prose_citations,
                reviewer_guideline=_text.collapse(guideline),
                rationale=_text.collapse(rationale),
            )
        )

    header_end = _text.heading_pattern(ISSUE).search(text)
    header = text[: header_end.start() if header_end else 0]
    case_summary = summary(text)
    return IMRCase(
        case_number=_common.case_number(header, text, warnings),
        layout=Layout.PROFESSIONAL_REVIEW,
        dates=_common.dates(header, case_summary, warnings),
        priority=_common.priority(header, warnings),
        patient=_common.patient(case_summary, warnings),
        reviewer=_common.reviewer(*_text.prose_credentials(_part(text, QUALIFICATIONS)), warnings),
        diagnoses=_text.diagnoses(case_summary),
        treatment_history=_text.treatment_history(case_summary),
        items=items,
        warnings=warnings,
    )


LAYOUTS = [_common.LetterLayout(Layout.PROFESSIONAL_REVIEW, detect, parse, summary)]
