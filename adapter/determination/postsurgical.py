"""Postsurgical physical medicine courses by surgery (``mappings/postsurgical.yaml``, 8 CCR 9792.24.3)."""

from __future__ import annotations

import re
from collections.abc import Sequence
from functools import cached_property

from pydantic import BaseModel, ConfigDict, Field, field_validator

from adapter.tables import TableFile, compiles, mappings

__all__ = ["POSTSURGICAL", "Surgery", "SurgeryTable", "course_for"]


class _Table(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Surgery(_Table):
    name: str
    regions: list[str] = Field(min_length=1)
    words: list[str] = Field(min_length=1)
    visits: int = Field(gt=0)
    weeks: int | None = Field(default=None, gt=0)
    source: str

    @field_validator("words")
    @classmethod
    def _compiles(cls, patterns: list[str]) -> list[str]:
        return compiles(patterns)

    @cached_property
    def pattern(self) -> re.Pattern[str]:
        return re.compile("|".join(rf"\b(?:{p})" for p in self.words), re.IGNORECASE)


class SurgeryTable(_Table):
    initial_course_fraction: float = Field(gt=0, le=1)
    surgeries: list[Surgery]

    def initial_course(self, surgery: Surgery) -> int:
        return int(surgery.visits * self.initial_course_fraction)


POSTSURGICAL = TableFile("postsurgical.yaml", SurgeryTable)


def course_for(region: str | None, texts: Sequence[str], table: SurgeryTable | None = None) -> Surgery | None:
    """The surgery whose course applies to a request for ``region``: the first in the table that the texts
    name and whose regions hold the request's."""
    table = table or mappings()[POSTSURGICAL]
    if region is None:
        return None
    for surgery in table.surgeries:
        if region in surgery.regions and any(surgery.pattern.search(text) for text in texts):
            return surgery
    return None
