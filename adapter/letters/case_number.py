"""The case-number layout (2016 onwards): a ``Case Number:`` header block, credentials as labelled lines,
``CLINICAL CASE SUMMARY`` and ``IMR ISSUES, DECISIONS AND RATIONALES``."""

from __future__ import annotations

import re

from adapter.errors import MissingSectionError
from adapter.letters import _text
from adapter.letters._items import decision_items
from adapter.letters._warnings import Warnings
from adapter.model import CaseDates, IMRCase, Layout, Patient, Priority, Reviewer

HOW = "HOW THE IMR FINAL DETERMINATION WAS MADE"
SUMMARY = "CLINICAL CASE SUMMARY"
ISSUES = "IMR ISSUES, DECISIONS AND RATIONALES"

_START = re.compile(r"\A\s*(?:IMR\s+)?Case\s+Number\s*:", re.IGNORECASE)
_CASE_NUMBER = re.compile(r"Case\s+Number\s*:\s*([A-Z]{2}\d{2}\s?-\s?\d{5,8})", re.IGNORECASE)
_PRIORITY = re.compile(r"Priority\s*:\s*(standard|expedited|regular|urgent)", re.IGNORECASE)
_LICENSURE = re.compile(r"State\(s\)\s+of\s+Licensure\s*:[ \t]*(.*)", re.IGNORECASE)
_SPECIALTY = re.compile(r"Certification\(s\)\s*/\s*Specialty\s*:[ \t]*(.*)", re.IGNORECASE)
_PRIORITIES = {"standard": Priority.STANDARD, "regular": Priority.STANDARD, "expedited": Priority.EXPEDITED,
               "urgent": Priority.EXPEDITED}  # fmt: skip


def detect(text: str) -> bool:
    return bool(_START.match(text))


def parse(text: str) -> IMRCase:
    warnings = Warnings()
    issues = _text.section(text, ISSUES)
    if issues is None:
        raise MissingSectionError(f"no '{ISSUES}' section", location="IMR ISSUES")
    head_end = _text.heading_pattern(HOW).search(text)
    header = text[: head_end.start() if head_end else 2000]

    number = _CASE_NUMBER.search(header)
    if not number:
        warnings.add("case_number", "not stated or unreadable")
    dates = CaseDates(
        assigned=warnings.date("dates.assigned", *_text.labelled_date(header, "Date Assigned")),
        injury=warnings.date("dates.injury", *_text.labelled_date(header, "Date of Injury")),
        decision=warnings.date("dates.decision", *_text.labelled_date(header, "Decision Date")),
        ur_denial=warnings.date("dates.ur_denial", *_text.labelled_date(header, "UR Denial Date")),
        application_received=warnings.date(
            "dates.application_received", *_text.labelled_date(header, "Application Received")
        ),
    )
    priority = _PRIORITY.search(header)
    if not priority:
        warnings.add("priority", "not stated")

    credentials = _text.section(text, HOW, SUMMARY, ISSUES) or ""
    licensure = _LICENSURE.search(credentials)
    specialty = _SPECIALTY.search(credentials)
    reviewer = Reviewer(
        licensure=_text.split_list(licensure[1]) if licensure else [],
        specialty=_text.split_list(specialty[1]) if specialty else [],
    )
    if not reviewer.licensure:
        warnings.add("reviewer.licensure", "not stated")
    if not reviewer.specialty:
        warnings.add("reviewer.specialty", "not stated")

    summary = _text.section(text, SUMMARY, ISSUES) or ""
    if not summary.strip():
        warnings.add("summary", "no clinical case summary")
    age, gender = _text.age_and_gender(summary)
    if age is None:
        warnings.add("patient.age", "no age stated in the case summary")
    if gender is None:
        warnings.add("patient.gender", "no sex stated in the case summary")

    return IMRCase(
        case_number=re.sub(r"\s", "", number[1]).upper() if number else None,
        layout=Layout.CASE_NUMBER,
        dates=dates,
        priority=_PRIORITIES[priority[1].lower()] if priority else None,
        patient=Patient(age=age, gender=gender),
        reviewer=reviewer,
        diagnoses=_text.diagnoses(summary),
        treatment_history=_text.treatment_history(summary),
        items=decision_items(issues, location="IMR ISSUES"),
        warnings=warnings,
    )
