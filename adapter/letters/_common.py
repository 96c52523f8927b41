"""What every layout reads the same way: header labels, patient, reviewer, and the warnings that record
fields that could not be read."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date

from adapter.letters import _text
from adapter.model import (
    CaseDates,
    Decision,
    DisputedItem,
    GuidelineCitation,
    IMRCase,
    Layout,
    ParseWarning,
    Patient,
    Priority,
    Reviewer,
)

_CASE_NUMBER = re.compile(r"Case\s+(?:Number|No\.?)\s*:\s*([A-Z]{2}\d{2}\s?-\s?\d{5,8})", re.IGNORECASE)
_ANY_CASE_NUMBER = re.compile(r"\b(CM\d{2}-\d{7})\b")
_PRIORITY = re.compile(r"Priority\s*:\s*(standard|expedited|regular|urgent)", re.IGNORECASE)
_PRIORITIES = {"standard": Priority.STANDARD, "regular": Priority.STANDARD, "expedited": Priority.EXPEDITED,
               "urgent": Priority.EXPEDITED}  # fmt: skip


@dataclass(frozen=True)
class LetterLayout:
    """A published letter layout, as its module reads it: whether a (normalised) letter text is in it, the case
    the text holds, and its clinical case summary (the request side, without decisions or rationales)."""

    layout: Layout
    detect: Callable[[str], bool]
    parse: Callable[[str], IMRCase]
    summary: Callable[[str], str]


class Warnings(list[ParseWarning]):
    """The warnings of one letter, in the order they were found."""

    def add(self, field: str, message: str) -> None:
        self.append(ParseWarning(field=field, message=message))

    def date(self, field: str, value: date | None, present: bool) -> date | None:
        """Pass a date through, noting why it is missing when it is."""
        if value is None:
            self.add(field, "label present but the date could not be read" if present else "not stated")
        return value


def case_number(header: str, text: str, warnings: Warnings) -> str | None:
    """The case number from the header's label, else any CMyy-nnnnnnn in the letter."""
    found = _CASE_NUMBER.search(header) or _CASE_NUMBER.search(text) or _ANY_CASE_NUMBER.search(text)
    if not found:
        warnings.add("case_number", "not stated or unreadable")
        return None
    return re.sub(r"\s", "", found[1]).upper()


def priority(header: str, warnings: Warnings) -> Priority | None:
    found = _PRIORITY.search(header)
    if not found:
        warnings.add("priority", "not stated")
        return None
    return _PRIORITIES[found[1].lower()]


def dates(
    header: str, summary: str, warnings: Warnings, *, decision_label: str = "Decision Date",
    ur_labels: tuple[str, ...] = ("UR Denial Date",),
) -> CaseDates:  # fmt: skip
    """The header's labelled dates; the injury and UR denial dates from the summary's prose when the
    header does not state them."""
    injury = _text.labelled_date(header, "Date of Injury")
    ur_denial: tuple[date | None, bool] = (None, False)
    for label in ur_labels:
        ur_denial = _text.labelled_date(header, label)
        if ur_denial[1]:
            break
    if not injury[1] or not ur_denial[1]:
        from_summary = _text.summary_dates(summary)
        injury = injury if injury[1] else (from_summary[0], False)
        ur_denial = ur_denial if ur_denial[1] else (from_summary[1], False)
    return CaseDates(
        assigned=warnings.date("dates.assigned", *_text.labelled_date(header, "Date Assigned")),
        injury=warnings.date("dates.injury", *injury),
        decision=warnings.date("dates.decision", *_text.labelled_date(header, decision_label)),
        ur_denial=warnings.date("dates.ur_denial", *ur_denial),
        application_received=warnings.date(
            "dates.application_received", *_text.labelled_date(header, "Application Received")
        ),
    )


def patient(summary: str, warnings: Warnings) -> Patient:
    if not summary.strip():
        warnings.add("summary", "no case summary")
    age, gender = _text.age_and_gender(summary)
    if age is None:
        warnings.add("patient.age", "no age stated in the case summary")
    if gender is None:
        warnings.add("patient.gender", "no sex stated in the case summary")
    return Patient(age=age, gender=gender)


def reviewer(licensure: list[str], specialty: list[str], warnings: Warnings) -> Reviewer:
    if not licensure:
        warnings.add("reviewer.licensure", "not stated")
    if not specialty:
        warnings.add("reviewer.specialty", "not stated")
    return Reviewer(licensure=licensure, specialty=specialty)


def disputed_item(
    request: str,
    decision: Decision,
    *,
    cite: Callable[[str], list[GuidelineCitation]],
    reviewer_guideline: str | None,
    claims_guideline: str | None = None,
    rationale: str | None = None,
    decided: str | None = None,
    original_request: str | None = None,
    authorized: str | None = None,
) -> DisputedItem:
    """One disputed item: citations read with ``cite``, the basis from the reviewer's citations, and the
    quantities from ``decided`` (the part of the request IMR decided; the whole request by default)."""
    cited = cite(reviewer_guideline or "")
    quantity, frequency, weeks, site = _text.quantities(decided or request)
    return DisputedItem(
        request=request,
        decision=decision,
        guideline_basis=_text.guideline_basis(reviewer_guideline, cited),
        maximus_guideline=reviewer_guideline or None,
        citations=cited,
        claims_administrator_guideline=claims_guideline or None,
        claims_administrator_citations=cite(claims_guideline or ""),
        rationale=rationale or None,
        original_request=original_request,
        authorized=authorized,
        disputed=decided,
        quantity=quantity,
        frequency_per_week=frequency,
        duration_weeks=weeks,
        body_site=site,
    )
