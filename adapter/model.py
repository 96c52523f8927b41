"""The IMR domain model: one Final Determination Letter as a typed case.

snake_case, ``extra="forbid"``; FHIR vocabulary stays out of here. A field the letter does not state (or
that cannot be read) is ``None`` or empty, and a readable field that failed to parse leaves a
``ParseWarning`` on the case: nothing is guessed.
"""

from __future__ import annotations

import hashlib
from datetime import date
from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field

__all__ = [
    "CaseDates",
    "Decision",
    "DisputedItem",
    "Gender",
    "GuidelineBasis",
    "GuidelineCitation",
    "IMRCase",
    "LetterSource",
    "Layout",
    "ParseWarning",
    "Patient",
    "Priority",
    "Reviewer",
    "TreatmentFact",
]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=False, ser_json_bytes="base64", val_json_bytes="base64")


class Layout(StrEnum):
    """The published letter layouts (see DOMAIN.md)."""

    CASE_NUMBER = "case-number"
    VARIANT_2014 = "2014-variant"
    MAXIMUS_NOTICE = "maximus-notice"
    PROFESSIONAL_REVIEW = "professional-review"


class Decision(StrEnum):
    """The IMR decision on one item: upheld = the UR denial stands (not medically necessary)."""

    UPHELD = "upheld"
    OVERTURNED = "overturned"


class Priority(StrEnum):
    STANDARD = "standard"
    EXPEDITED = "expedited"


class Gender(StrEnum):
    MALE = "male"
    FEMALE = "female"


class GuidelineBasis(StrEnum):
    """Whether a decision rests on the MTUS or only on guidelines outside it."""

    MTUS = "MTUS"
    NON_MTUS = "non-MTUS"


class ParseWarning(_Model):
    """A field the parser could not read; the field itself is left empty."""

    field: str
    message: str


class GuidelineCitation(_Model):
    """One guideline named in a citation line, e.g. MTUS Low Back Complaints 2004, Section(s): Special Studies."""

    mtus: bool
    title: str | None = None
    edition_year: int | None = None
    sections: list[str] = Field(default_factory=list)
    pages: list[int] = Field(default_factory=list)


class TreatmentFact(_Model):
    """A count of prior treatment stated in the case summary ("has had 12 sessions of physical therapy")."""

    therapy: str
    count: int
    text: str


class DisputedItem(_Model):
    """One disputed treatment and the reviewer's decision on it."""

    request: str
    decision: Decision
    guideline_basis: GuidelineBasis
    #: The reviewer's (MAXIMUS) guideline line, verbatim with whitespace collapsed; None if absent.
    maximus_guideline: str | None = None
    citations: list[GuidelineCitation] = Field(default_factory=list)
    claims_administrator_guideline: str | None = None
    claims_administrator_citations: list[GuidelineCitation] = Field(default_factory=list)
    rationale: str | None = None
    #: For a modified request: what was asked for, and what the claims administrator authorised.
    original_request: str | None = None
    authorized: str | None = None
    quantity: int | None = None
    frequency_per_week: int | None = None
    duration_weeks: int | None = None
    body_site: str | None = None


class CaseDates(_Model):
    assigned: date | None = None
    injury: date | None = None
    decision: date | None = None
    ur_denial: date | None = None
    application_received: date | None = None


class Patient(_Model):
    age: int | None = None
    gender: Gender | None = None


class Reviewer(_Model):
    licensure: list[str] = Field(default_factory=list)
    specialty: list[str] = Field(default_factory=list)


class LetterSource(_Model):
    """The letter as received: its text and, for a PDF, the original bytes."""

    media_type: str
    text: str
    pdf: bytes | None = None

    @property
    def data(self) -> bytes:
        """The original bytes: the PDF, or the text as UTF-8."""
        return self.pdf if self.pdf is not None else self.text.encode("utf-8")

    @property
    def sha1(self) -> str:
        return hashlib.sha1(self.data).hexdigest()


class IMRCase(_Model):
    """One IMR Final Determination Letter as a case."""

    case_number: str | None = None
    layout: Layout
    dates: CaseDates = Field(default_factory=CaseDates)
    priority: Priority | None = None
    patient: Patient = Field(default_factory=Patient)
    reviewer: Reviewer = Field(default_factory=Reviewer)
    diagnoses: list[str] = Field(default_factory=list)
    treatment_history: list[TreatmentFact] = Field(default_factory=list)
    items: list[DisputedItem]
    warnings: list[ParseWarning] = Field(default_factory=list)
    source: LetterSource | None = None
