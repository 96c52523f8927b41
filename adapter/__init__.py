"""FHIR adapter for California workers' compensation Independent Medical Review (IMR)."""

from __future__ import annotations

from adapter.errors import (
    AdapterError,
    EmptyLetterError,
    InputError,
    LetterParseError,
    MappingError,
    MappingTableError,
    MissingSectionError,
    PDFReadError,
    SandboxError,
    UnknownLayoutError,
)
from adapter.fhir import bundle_to_case, case_to_bundle
from adapter.letters import detect_layout, parse_letter
from adapter.model import (
    CaseDates,
    Decision,
    DisputedItem,
    Gender,
    GuidelineBasis,
    GuidelineCitation,
    IMRCase,
    Layout,
    LetterSource,
    ParseWarning,
    Patient,
    Priority,
    Reviewer,
    TreatmentFact,
)
from adapter.version import __version__

__all__ = [
    "AdapterError",
    "CaseDates",
    "Decision",
    "DisputedItem",
    "EmptyLetterError",
    "Gender",
    "GuidelineBasis",
    "GuidelineCitation",
    "IMRCase",
    "InputError",
    "Layout",
    "LetterParseError",
    "LetterSource",
    "MappingError",
    "MappingTableError",
    "MissingSectionError",
    "PDFReadError",
    "ParseWarning",
    "Patient",
    "Priority",
    "Reviewer",
    "SandboxError",
    "TreatmentFact",
    "UnknownLayoutError",
    "__version__",
    "bundle_to_case",
    "case_to_bundle",
    "detect_layout",
    "parse_letter",
]
