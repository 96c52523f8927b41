"""Postsurgical physical medicine courses by surgery (``mappings/postsurgical.yaml``, 8 CCR 9792.24.3)."""

from __future__ import annotations

import re
from collections.abc import Sequence
from functools import cached_property, lru_cache
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, field_validator

from adapter.tables import DEFAULT_MAPPINGS, compiles, load_table

__all__ = ["Surgery", "SurgeryTable", "course_for", "load_postsurgical"]


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


@lru_cache(maxsize=4)
def load_postsurgical(folder: Path = DEFAULT_MAPPINGS) -> SurgeryTable:
    table: SurgeryTable = load_table(folder / "postsurgical.yaml", SurgeryTable)
    return table


def course_for(region: str | None, texts: Sequence[str], table: SurgeryTable | None = None) -> Surgery | None:
    """The surgery whose course applies to a request for ``region``: the first in the table that the texts
    name and whose regions hold the request's."""
    table = table or load_postsurgical()
    if region is None:
        return None
    for surgery in table.surgeries:
        if region in surgery.regions and any(surgery.pattern.search(text) for text in texts):
            return surgery
    return None
