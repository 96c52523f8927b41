"""The category of a requested service (``mappings/categories.yaml``, with the drug and therapy words of the
lexicon): which guideline rules read it, how PAS carries it, how reports group it.

Every layer asks the same question (the facts the rules read, the PAS Bundle, the demo report, the review
page), so the table lives here on the ground floor rather than inside the determination.
"""

from __future__ import annotations

import re
from functools import cached_property

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, ValidationInfo, field_validator, model_validator

from adapter.lexicon import LEXICON, Lexicon
from adapter.tables import TableFile, compiles, label_window, mappings

__all__ = ["CATEGORIES", "CategoryTable", "categorise"]


class _Category(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    id: str
    match: list[str] = Field(default_factory=list)
    codes: list[str] = Field(default_factory=list)
    drugs: str | None = None
    therapies: bool = False
    #: Care given as an injection and repeated on what the last one did.
    injection: bool = False

    _compiled: tuple[re.Pattern[str], frozenset[str]] = PrivateAttr()

    @field_validator("match")
    @classmethod
    def _compiles(cls, patterns: list[str]) -> list[str]:
        return compiles(patterns)

    @model_validator(mode="after")
    def _with_the_lexicon(self, info: ValidationInfo) -> _Category:
        """Its words and codes, with the lexicon's for its drug class or therapies (compiled once, here)."""
        self._compiled = _category_pattern(self, (info.context or {})["lexicon"])
        return self


class CategoryTable(BaseModel):
    """The categories in order, each compiled with the lexicon's words for it (``compiled``), and the default."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    default: str
    entries: list[_Category]
    _compiled: list[tuple[str, re.Pattern[str], frozenset[str]]] = PrivateAttr(default_factory=list)

    @cached_property
    def injections(self) -> frozenset[str]:
        """The categories of care given as an injection (``injection``)."""
        return frozenset(e.id for e in self.entries if e.injection)

    @model_validator(mode="after")
    def _agrees_with_the_lexicon(self, info: ValidationInfo) -> CategoryTable:
        lexicon: Lexicon = (info.context or {})["lexicon"]
        self._compiled = [(e.id, *e._compiled) for e in self.entries]
        named = {t.category for t in lexicon.therapies if t.category} | {
            c for t in lexicon.therapies for c in [*t.denies, *t.credited_for]
        }
        missing = named - {e.id for e in self.entries} - {self.default}
        if missing:
            raise ValueError(f"lexicon therapies name unknown categories {sorted(missing)}")
        return self

    @property
    def compiled(self) -> list[tuple[str, re.Pattern[str], frozenset[str]]]:
        """(category, pattern of its words, its codes) in the table's order."""
        return self._compiled


def _category_pattern(entry: _Category, lexicon: Lexicon) -> tuple[re.Pattern[str], frozenset[str]]:
    patterns = list(entry.match)
    codes = set(entry.codes)
    if entry.drugs is not None:
        if entry.drugs != "*" and entry.drugs not in lexicon.drugs:
            raise ValueError(f"category {entry.id}: no drug class {entry.drugs!r} in the lexicon")
        patterns.append(lexicon.names_pattern(entry.drugs).pattern)
        codes |= {d.rxnorm for d in lexicon.drug_names if entry.drugs in ("*", d.drug_class) and d.rxnorm}
    if entry.therapies:
        words = [w for t in lexicon.therapies if t.category == entry.id for w in t.words]
        if not words:
            raise ValueError(f"category {entry.id}: no lexicon therapy has this category")
        patterns += [rf"\b(?:{w})\b" for w in words]
    if not patterns:
        raise ValueError(f"category {entry.id}: nothing to match")
    return re.compile("|".join(f"(?:{p})" for p in patterns), re.IGNORECASE), frozenset(codes)


CATEGORIES = TableFile("categories.yaml", CategoryTable, reads={"lexicon": LEXICON})


def categorise(text: str, codes: list[str] | None = None) -> str:
    """The category of a requested service: the first entry whose codes or words match the head of its label,
    else the table's default."""
    table = mappings()[CATEGORIES]
    code_set = set(codes or [])
    window = label_window(text)
    for category, pattern, known in table.compiled:
        if code_set & known or pattern.search(window):
            return category
    return table.default
