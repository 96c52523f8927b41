"""The IMR domain model: one Final Determination Letter as a typed case.

snake_case, ``extra="forbid"``; FHIR vocabulary stays out of here. A field the letter does not state (or
that cannot be read) is ``None`` or empty, and a readable field that failed to parse leaves a
``ParseWarning`` on the case: nothing is guessed.
"""

from __future__ import annotations

import hashlib
from datetime import date
from enum import StrEnum
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

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


#: Text as FHIR allows it in a string: not empty, no whitespace but space, tab, CR and LF, and no other
#: character below U+0020 ("Strings SHALL NOT contain Unicode character points below 32").
Text = Annotated[str, StringConstraints(min_length=1, pattern=r"^(?:[ \r\n\t]|[^\s\x00-\x1f])+$")]
#: A count as FHIR integer allows it (32-bit).
Count = Annotated[int, Field(ge=0, le=2_147_483_647)]
PositiveCount = Annotated[int, Field(ge=1, le=2_147_483_647)]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=False, ser_json_bytes="base64", val_json_bytes="base64")


class Layout(StrEnum):
    """The published letter layouts (see DOMAIN.md), in the order a letter is tried against them; each is read by
    the module of ``adapter.letters`` that declares it in its ``LAYOUTS``."""

    CASE_NUMBER = "case-number"
    MAXIMUS_NOTICE = "maximus-notice"
    PROFESSIONAL_REVIEW = "professional-review"
    VARIANT_2014 = "2014-variant"


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

    field: Text
    message: Text


class GuidelineCitation(_Model):
    """One guideline named in a citation line, e.g. MTUS Low Back Complaints 2004, Section(s): Special Studies."""

    mtus: bool
    title: Text | None = None
    edition_year: Count | None = None
    sections: list[Text] = Field(default_factory=list)
    pages: list[Count] = Field(default_factory=list)


class TreatmentFact(_Model):
    """A count of prior treatment stated in the case summary ("has had 12 sessions of physical therapy")."""

    therapy: Text
    count: PositiveCount
    text: Text


class DisputedItem(_Model):
    """One disputed treatment and the reviewer's decision on it."""

    request: Text
    decision: Decision
    guideline_basis: GuidelineBasis
    #: The reviewer's (MAXIMUS) guideline line, verbatim with whitespace collapsed; None if absent.
    maximus_guideline: Text | None = None
    citations: list[GuidelineCitation] = Field(default_factory=list)
    claims_administrator_guideline: Text | None = None
    claims_administrator_citations: list[GuidelineCitation] = Field(default_factory=list)
    rationale: Text | None = None
    #: For a modified request: what was asked for, and what the claims administrator authorised.
    original_request: Text | None = None
    authorized: Text | None = None
    #: For a modified request: the part IMR decided (the "remaining IMR eligible portion"), when the letter
    #: states it; ``request`` keeps the whole heading.
    disputed: Text | None = None
    quantity: Count | None = None
    frequency_per_week: PositiveCount | None = None
    duration_weeks: Count | None = None
    body_site: Text | None = None

    @property
    def requested(self) -> str:
        """What is under review: the disputed part of a modified request, else the whole request."""
        return self.disputed or self.request


class CaseDates(_Model):
    assigned: date | None = None
    injury: date | None = None
    decision: date | None = None
    ur_denial: date | None = None
    application_received: date | None = None


class Patient(_Model):
    age: Count | None = None
    gender: Gender | None = None


class Reviewer(_Model):
    licensure: list[Text] = Field(default_factory=list)
    specialty: list[Text] = Field(default_factory=list)


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

    case_number: Text | None = None
    layout: Layout
    dates: CaseDates = Field(default_factory=CaseDates)
    priority: Priority | None = None
    patient: Patient = Field(default_factory=Patient)
    reviewer: Reviewer = Field(default_factory=Reviewer)
    diagnoses: list[Text] = Field(default_factory=list)
    treatment_history: list[TreatmentFact] = Field(default_factory=list)
    items: list[DisputedItem]
    warnings: list[ParseWarning] = Field(default_factory=list)
    source: LetterSource | None = None
