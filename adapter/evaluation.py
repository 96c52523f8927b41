"""Scoring parsed cases against ground truth in the corpus format (``truth.jsonl``, one letter a line).

Used by ``bench/evaluate_parser.py`` and by the corpus tests, so that both count the same way.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from adapter.model import IMRCase

HEADER_FIELDS = (
    "case_number", "priority", "dates.assigned", "dates.injury", "dates.decision", "dates.ur_denial",
    "dates.application_received",
)  # fmt: skip
PATIENT_FIELDS = ("patient.age", "patient.gender")
REVIEWER_FIELDS = ("reviewer.licensure", "reviewer.specialty")
ITEM_FIELDS = ("request", "decision", "guideline_basis")


def case_half(case_number: str) -> str:
    """The corpus half a letter falls in by its case number: "even" (what rules may be written against) or "odd"
    (held out)."""
    return "even" if int(case_number.rsplit("-", 1)[-1]) % 2 == 0 else "odd"


def _get(data: Mapping[str, Any], dotted: str) -> Any:
    value: Any = data
    for key in dotted.split("."):
        value = value.get(key) if isinstance(value, Mapping) else None
    return value


@dataclass
class Score:
    """Right and total counts per field, and the mismatches for a reader to look at."""

    right: Counter[str] = field(default_factory=Counter)
    total: Counter[str] = field(default_factory=Counter)
    mismatches: list[tuple[str, str, Any, Any]] = field(default_factory=list)

    def count(self, letter: str, name: str, got: Any, want: Any) -> None:
        self.total[name] += 1
        if got == want:
            self.right[name] += 1
        else:
            self.mismatches.append((letter, name, got, want))

    def accuracy(self, name: str) -> float:
        return self.right[name] / self.total[name] if self.total[name] else 1.0

    def add(self, case: IMRCase, truth: Mapping[str, Any]) -> None:
        """Compare one parsed case with its truth record."""
        got = case.model_dump(mode="json")
        letter = str(truth.get("case_number"))
        for name in (*HEADER_FIELDS, *PATIENT_FIELDS, *REVIEWER_FIELDS):
            self.count(letter, name, _get(got, name), _get(truth, name))
        want_items = truth.get("items", [])
        self.count(letter, "items.count", len(case.items), len(want_items))
        for n, want in enumerate(want_items):
            have = got["items"][n] if n < len(got["items"]) else {}
            for name in ITEM_FIELDS:
                self.count(f"{letter} item {n + 1}", f"items.{name}", have.get(name), want.get(name))

    def missing(self, truth: Mapping[str, Any], reason: str) -> None:
        """A letter that failed to parse: every field counts as wrong."""
        self.mismatches.append((str(truth.get("case_number")), "letter", reason, "parsed"))
        for name in (*HEADER_FIELDS, *PATIENT_FIELDS, *REVIEWER_FIELDS, "items.count"):
            self.total[name] += 1
        for _ in truth.get("items", []):
            for name in ITEM_FIELDS:
                self.total[f"items.{name}"] += 1

    def fields(self) -> Iterable[str]:
        return self.total.keys()
