"""The category of a requested service (``mappings/categories.yaml``, with the drug and therapy words of the
lexicon): which guideline rules read it, how PAS carries it, how reports group it.

Every layer asks the same question (the facts the rules read, the PAS Bundle, the demo report, the review
page), so the table lives here on the ground floor rather than inside the determination.
"""

from __future__ import annotations

import re
from functools import lru_cache
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, field_validator

from adapter.errors import MappingTableError
from adapter.lexicon import Lexicon, load_lexicon
from adapter.tables import DEFAULT_MAPPINGS, compiles, label_window, load_table


class _Category(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    id: str
    match: list[str] = Field(default_factory=list)
    codes: list[str] = Field(default_factory=list)
    drugs: str | None = None
    therapies: bool = False

    @field_validator("match")
    @classmethod
    def _compiles(cls, patterns: list[str]) -> list[str]:
        return compiles(patterns)


class _Categories(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    default: str
    entries: list[_Category]


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


@lru_cache(maxsize=4)
def categories(folder: Path = DEFAULT_MAPPINGS) -> tuple[str, list[tuple[str, re.Pattern[str], frozenset[str]]]]:
    """The category table, compiled; ``MappingTableError`` naming ``file:line`` when it is broken (through the
    tables' own loader), or the file and the entry when it disagrees with the lexicon."""
    path = folder / "categories.yaml"
    lexicon = load_lexicon(folder)
    table: _Categories = load_table(path, _Categories)
    try:
        compiled = [(e.id, *_category_pattern(e, lexicon)) for e in table.entries]
        known = {e.id for e in table.entries} | {table.default}
        missing = {t.category for t in lexicon.therapies} - known
        if missing:
            raise ValueError(f"lexicon therapies name unknown categories {sorted(missing)}")
    except ValueError as exc:
        raise MappingTableError(f"the category table does not load: {exc}", location=str(path)) from exc
    return table.default, compiled


def categorise(text: str, codes: list[str] | None = None) -> str:
    """The category of a requested service: the first entry whose codes or words match the head of its label,
    else the table's default."""
    default, entries = categories()
    code_set = set(codes or [])
    window = label_window(text)
    for category, pattern, known in entries:
        if code_set & known or pattern.search(window):
            return category
    return default
