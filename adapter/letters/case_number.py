"""The Final Determination layouts with ``IMR ISSUES, DECISIONS AND RATIONALES``.

- case-number layout (2016 onwards): a ``Case Number:`` header block and the credentials as labelled lines
  (``State(s) of Licensure:``, ``Certification(s)/Specialty:``);
- the 2014 variant: the same sections, the credentials in prose ("Board Certified in ... licensed to
  practice in California"), and in some copies no header block, so the dates come from the summary.
"""

from __future__ import annotations

import re

from adapter.errors import MissingSectionError
from adapter.letters import _common, _text
from adapter.letters._items import decision_items
from adapter.model import IMRCase, Layout

HOW = "HOW THE IMR FINAL DETERMINATION WAS MADE"
SUMMARY = "CLINICAL CASE SUMMARY"
ISSUES = "IMR ISSUES, DECISIONS AND RATIONALES"

_START = re.compile(r"\A\s*(?:IMR\s+)?Case\s+Number\s*:", re.IGNORECASE)
_LICENSURE = re.compile(r"State\(s\)\s+of\s+Licensure\s*:[ \t]*(.*)", re.IGNORECASE)
_SPECIALTY = re.compile(r"Certification\(s\)\s*/\s*Specialty\s*:[ \t]*(.*)", re.IGNORECASE)


def detect(text: str) -> bool:
    """A case-number letter: the header first and the credentials as labelled lines."""
    return bool(_START.match(text)) and (_LICENSURE.search(text) or _SPECIALTY.search(text)) is not None


def detect_2014(text: str) -> bool:
    """A 2014-variant letter: the Final Determination sections, the credentials in prose."""
    starts = bool(_START.match(text) or _text.heading_pattern(HOW).match(text))
    return starts and bool(_text.heading_pattern(ISSUES).search(text))


def summary(text: str) -> str:
    """The clinical case summary section."""
    return _text.section(text, SUMMARY, ISSUES) or ""


def parse(text: str) -> IMRCase:
    """Parse a case-number layout letter."""
    return _parse(text, Layout.CASE_NUMBER)


def parse_2014(text: str) -> IMRCase:
    """Parse a 2014-variant letter."""
    return _parse(text, Layout.VARIANT_2014)


def _parse(text: str, layout: Layout) -> IMRCase:
    warnings = _common.Warnings()
    issues = _text.section(text, ISSUES)
    if issues is None:
        raise MissingSectionError(f"no '{ISSUES}' section", location="IMR ISSUES")
    how = _text.heading_pattern(HOW).search(text)
    header = text[: how.start() if how else min(len(text), 2000)]
    case_summary = summary(text)
    credentials = _text.section(text, HOW, SUMMARY, ISSUES) or ""
    licensure, specialty = _LICENSURE.search(credentials), _SPECIALTY.search(credentials)
    if licensure or specialty:
        states = _text.split_list(licensure[1]) if licensure else []
        specialties = _text.split_list(specialty[1]) if specialty else []
    else:
        states, specialties = _text.prose_credentials(credentials)
    return IMRCase(
        case_number=_common.case_number(header, text, warnings),
        layout=layout,
        dates=_common.dates(header, case_summary, warnings),
        priority=_common.priority(header, warnings),
        patient=_common.patient(case_summary, warnings),
        reviewer=_common.reviewer(states, specialties, warnings),
        diagnoses=_text.diagnoses(case_summary),
        treatment_history=_text.treatment_history(case_summary),
        items=decision_items(issues, location="IMR ISSUES"),
        warnings=warnings,
    )


LAYOUTS = [
    _common.LetterLayout(Layout.CASE_NUMBER, detect, parse, summary),
    _common.LetterLayout(Layout.VARIANT_2014, detect_2014, parse_2014, summary),
]
