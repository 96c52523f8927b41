"""What a pended request lacks: the documentation criteria (``mappings/documentation.yaml``) whose facts the
records leave unknown, ranked, at most three.

Two sources name a criterion. The rules: a criterion whose fact, stated present or absent, would let a
guideline rule that applies to the request decide it (decisive; the more rules it would let decide, the more
decisive). The guideline: the criteria it names for that kind of service (``services``), in its order. The
ranking puts first the decisive criteria the guideline names for the service, in the guideline's order (what
would decide it and is what the guideline asks of it), then the other criteria it names, then the decisive ones
it does not name, most decisive first. A
criterion stands for its first fact, except a criterion of diagnoses, which is lacking when no diagnosis it
names is documented. Each comes with the LOINC attachment codes to ask for it with, a plain question for the
provider and the guideline it rests on.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

from adapter.determination.facts import STATUS_FACTS, RequestFacts
from adapter.determination.rules import RuleSet, fires
from adapter.tables import TableFile, mappings

#: The most criteria one item names.
MOST = 3


class Criterion(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    facts: list[str]
    loinc: list[str] = Field(min_length=1)
    question: str = Field(min_length=1)
    guideline: str = Field(min_length=1)


class DocumentationTable(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    criteria: dict[str, Criterion]
    services: dict[str, list[str]]

    @model_validator(mode="after")
    def _consistent(self) -> DocumentationTable:
        unknown = {f for c in self.criteria.values() for f in c.facts} - set(RequestFacts.model_fields)
        if unknown:
            raise ValueError(f"criteria name facts that are no request fact: {sorted(unknown)}")
        named = {c for cs in self.services.values() for c in cs} - set(self.criteria)
        if named:
            raise ValueError(f"services name unknown criteria: {sorted(named)}")
        bad = [code for c in self.criteria.values() for code in c.loinc if not _loinc(code)]
        if bad:
            raise ValueError(f"not LOINC codes (digits, a dash and the check digit): {bad}")
        return self


def _loinc(code: str) -> bool:
    """A LOINC code with its mod-10 check digit right."""
    number, _, check = code.partition("-")
    if not (number.isdigit() and check.isdigit() and len(check) == 1):
        return False
    digits = [int(d) for d in number][::-1]
    total = sum(sum(divmod(d * 2, 10)) if i % 2 == 0 else d for i, d in enumerate(digits))
    return (10 - total % 10) % 10 == int(check)


class Need(BaseModel):
    """One documentation criterion a pended item lacks, as asked of the provider."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    criterion: str
    facts: list[str]
    loinc: list[str]
    question: str
    citation: str


DOCUMENTATION = TableFile("documentation.yaml", DocumentationTable)


def _unknown(facts: RequestFacts, name: str) -> bool:
    value = getattr(facts, name)
    return value is None or (name in STATUS_FACTS and value == "unknown")


def _settings(name: str) -> list[Any]:
    """The values a missing fact could take once documented."""
    return ["present", "absent"] if name in STATUS_FACTS else [True, False] if name.endswith("_diagnosis") else []


def lacking(facts: RequestFacts, criterion: Criterion) -> bool:
    """Whether the records lack what a criterion stands for: its first fact unknown; for a criterion of
    diagnoses (an indication), none of its diagnoses documented."""
    if not criterion.facts:
        return True
    if all(name.endswith("_diagnosis") for name in criterion.facts):
        return not any(getattr(facts, name) is True for name in criterion.facts)
    return _unknown(facts, criterion.facts[0])


def _need(table: DocumentationTable, name: str) -> Need:
    criterion = table.criteria[name]
    return Need(criterion=name, facts=criterion.facts, loinc=criterion.loinc, question=criterion.question,
                citation=criterion.guideline)  # fmt: skip


def missing(facts: RequestFacts, rules: RuleSet, table: DocumentationTable | None = None) -> list[Need]:
    """The documentation criteria a pended item lacks, ranked (see the module), at most ``MOST``."""
    table = table or mappings()[DOCUMENTATION]
    by_fact = {f: name for name, c in table.criteria.items() for f in c.facts}
    decides: Counter[str] = Counter()
    for rule in rules.rules:
        if rule.applies_to and facts.category not in rule.applies_to:
            continue
        for name in rule.needs:
            criterion = by_fact.get(name)
            if criterion is None or not _unknown(facts, name):
                continue
            if name == "requested_count" or any(
                fires(rule, facts.model_copy(update={name: value})) for value in _settings(name)
            ):
                decides[criterion] += 1
    decisive = [c for c, _ in sorted(decides.items(), key=lambda kv: -kv[1])]
    named = [c for c in table.services.get(facts.category, []) if lacking(facts, table.criteria[c])]
    ranked = named + decisive
    return [_need(table, c) for c in list(dict.fromkeys(ranked))[:MOST]]
