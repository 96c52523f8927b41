"""Guideline rules as data (``mappings/rules.yaml``), validated when loaded, and the pure decision on them.

A rule names the guideline it comes from, the facts it needs, a condition over those facts, an action
(A1 certified, A3 not certified, A6 modified with what is certified, A4 pended) and a rationale
template. A rule whose facts are missing cannot fire. ``determine`` never denies without a cited rule:
no rule, or rules that disagree, pend the request for a human.
"""

from __future__ import annotations

import re
import string
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, ValidationInfo, field_validator, model_validator

from adapter.actions import ReviewAction
from adapter.determination.facts import STATUS_FACTS, RequestFacts
from adapter.lexicon import LEXICON, Lexicon
from adapter.tables import TableFile

_FACTS = set(RequestFacts.model_fields) - {"evidence"}

_OPS = {"is", "eq", "ne", "gt", "gte", "lt", "lte", "in", "contains", "not_contains", "matches"}
_NUMERIC = {"gt", "gte", "lt", "lte"}


class Guideline(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    title: str
    section: str | None = None
    pages: str | None = None
    #: Q: quoted as MTUS in real letters; W: secondary source; S: statute or regulation.
    status: Literal["Q", "W", "S"] = "Q"

    def cite(self) -> str:
        parts = [self.title]
        if self.section:
            parts.append(f'"{self.section}"')
        if self.pages:
            parts.append(f"p. {self.pages}")
        return ", ".join(parts)


def _condition_facts(condition: Any) -> set[str]:
    if isinstance(condition, dict):
        if "fact" in condition:
            compared = [v for k, v in condition.items() if k in _NUMERIC and isinstance(v, dict)]
            return {condition["fact"], *(f for v in compared for f in _facts_in_expression(v))}
        return set().union(
            *(_condition_facts(c) for v in condition.values() for c in (v if isinstance(v, list) else [v]))
        )
    return set()


def _check_condition(condition: Any, where: str) -> None:
    if not isinstance(condition, dict) or len(condition) == 0:
        raise ValueError(f"{where}: a condition is a mapping")
    if "fact" in condition:
        ops = set(condition) - {"fact"}
        if condition["fact"] not in _FACTS:
            raise ValueError(f"{where}: unknown fact {condition['fact']!r}")
        if len(ops) != 1 or not ops <= _OPS:
            raise ValueError(f"{where}: needs exactly one of {sorted(_OPS)}")
        for op in ops & _NUMERIC:
            unknown = _facts_in_expression(condition[op]) - _FACTS
            if unknown:
                raise ValueError(f"{where}: unknown facts {sorted(unknown)} in the compared expression")
        if "matches" in ops:
            try:
                re.compile(condition["matches"])
            except re.error as exc:
                raise ValueError(f"{where}: the pattern does not compile: {exc}") from None
        return
    (key, value), *rest = condition.items()
    if rest or key not in ("all", "any", "not"):
        raise ValueError(f"{where}: use all, any, not or fact")
    for n, part in enumerate(value if key != "not" else [value]):
        _check_condition(part, f"{where}.{key}[{n}]")


def _adverse_safe(condition: dict[str, Any], where: str, negated: bool = False) -> None:
    """An adverse rule (A3, A6) may rest only on what the documentation states: a documentation fact is a
    criterion (``eq: present`` or ``eq: absent``) or an exception (``ne: present``: the rule stands aside when
    the fact is documented), never anything that holds for an unknown fact, and never under ``not``. So
    silence can never lead to a denial or a modification."""
    if "fact" in condition:
        if condition["fact"] not in STATUS_FACTS:
            return
        op = next(k for k in condition if k != "fact")
        allowed = (op == "eq" and condition[op] in ("present", "absent")) or (op == "ne" and condition[op] == "present")
        if negated or not allowed:
            raise ValueError(
                f"{where}: an adverse rule compares {condition['fact']} only with eq: present, eq: absent or "
                "ne: present (an unknown fact must never deny or modify)"
            )
        return
    (key, value), *_ = condition.items()
    for n, part in enumerate(value if key != "not" else [value]):
        _adverse_safe(part, f"{where}.{key}[{n}]", negated or key == "not")


class Rule(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str = Field(pattern=r"^[a-z0-9][a-z0-9-]*$")
    guideline: Guideline
    applies_to: list[str] = Field(default_factory=list)
    needs: list[str]
    when: dict[str, Any] = Field(default_factory=lambda: {"all": []})
    action: ReviewAction
    #: For A6: how many units are certified (a number, {fact: name}, {min: [...]}, {sub: [a, b]}, {mul: [a, b]}).
    certify: Any = None
    #: A stepwise taper (A6): an abrupt stop (an A3 firing beside it) gives way to it (MTUS Opioids 2016, CDC).
    taper: bool = False
    rationale: str
    note: str | None = None

    @field_validator("needs")
    @classmethod
    def _known_facts(cls, needs: list[str]) -> list[str]:
        unknown = [n for n in needs if n not in _FACTS]
        if unknown:
            raise ValueError(f"unknown facts {unknown}")
        return needs

    @model_validator(mode="after")
    def _consistent(self) -> Rule:
        _check_condition(self.when, "when")
        missing = _condition_facts(self.when) - set(self.needs)
        if missing:
            raise ValueError(f"the condition uses facts not listed in needs: {sorted(missing)}")
        if self.action.adverse:
            _adverse_safe(self.when, "when")
        if (self.action is ReviewAction.MODIFIED) != (self.certify is not None):
            raise ValueError("certify goes with action A6, and A6 needs certify")
        extra = _facts_in_expression(self.certify) - set(self.needs)
        if extra:
            raise ValueError(f"certify uses facts not in needs: {sorted(extra)}")
        fields = {f for _, f, _, _ in string.Formatter().parse(self.rationale) if f}
        if fields - _FACTS - {"guideline", "certified"}:
            raise ValueError(
                f"the rationale names unknown fields {sorted(fields - _FACTS - {'guideline', 'certified'})}"
            )
        return self


class RuleSet(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    rules: list[Rule]
    #: The rules that may apply to a category, in the table's order (made at the first item of each category).
    _applying: dict[str | None, list[Rule]] = PrivateAttr(default_factory=dict)

    def applying(self, category: str | None) -> list[Rule]:
        """The rules for every category and those for ``category``, in the table's order."""
        if (found := self._applying.get(category)) is None:
            found = self._applying[category] = [r for r in self.rules if not r.applies_to or category in r.applies_to]
        return found

    @model_validator(mode="after")
    def _unique(self, info: ValidationInfo) -> RuleSet:
        ids = [r.id for r in self.rules]
        if len(ids) != len(set(ids)):
            raise ValueError("rule ids must be unique")
        lexicon: Lexicon = (info.context or {})["lexicon"]
        unread = set(lexicon.findings) - STATUS_FACTS  # a finding no request fact holds is read and dropped
        if unread:
            raise ValueError(f"lexicon findings that are no request fact: {sorted(unread)}")
        return self


def _compare(value: Any, op: str, expected: Any, facts: RequestFacts) -> bool:
    if op == "is":
        return value is expected
    if op == "eq":
        return bool(value == expected)
    if op == "ne":
        return bool(value != expected)
    if op == "in":
        return value in expected
    if op == "contains":
        return expected in value
    if op == "not_contains":
        return expected not in value
    if op == "matches":
        return re.search(expected, value, re.IGNORECASE) is not None
    if isinstance(expected, dict):  # compared with an expression of other facts ({fact: ...}, {sub: [...]})
        expected = evaluate(expected, facts)
    return bool(
        {"gt": value > expected, "gte": value >= expected, "lt": value < expected, "lte": value <= expected}[op]
    )


def holds(condition: dict[str, Any], facts: RequestFacts) -> bool:
    """Whether a (validated) condition holds for the facts; facts it names are present."""
    if "fact" in condition:
        op = next(k for k in condition if k != "fact")
        return _compare(getattr(facts, condition["fact"]), op, condition[op], facts)
    if "all" in condition:
        return all(holds(c, facts) for c in condition["all"])
    if "any" in condition:
        return any(holds(c, facts) for c in condition["any"])
    return not holds(condition["not"], facts)


def evaluate(expression: Any, facts: RequestFacts) -> float:
    """A certify expression: a number, {fact: name}, {min|max|sub|mul: [expressions]}."""
    if isinstance(expression, int | float):
        return float(expression)
    ((key, value),) = expression.items()
    if key == "fact":
        return float(getattr(facts, value))
    values = [evaluate(v, facts) for v in value]
    return {"min": min, "max": max}[key](values) if key in ("min", "max") else (
        values[0] - values[1] if key == "sub" else values[0] * values[1]
    )  # fmt: skip


def _facts_in_expression(expression: Any) -> set[str]:
    if isinstance(expression, dict):
        return set().union(*(
            {v} if k == "fact" else _facts_in_expression(v) for k, v in expression.items()
        ))  # fmt: skip
    if isinstance(expression, list):
        return set().union(*(_facts_in_expression(v) for v in expression))
    return set()


def fires(rule: Rule, facts: RequestFacts) -> bool:
    """A rule fires when it applies to the category, every fact it needs is present and its condition holds."""
    if rule.applies_to and facts.category not in rule.applies_to:
        return False
    if any(getattr(facts, name) is None for name in rule.needs):
        return False
    return holds(rule.when, facts)


RULES = TableFile("rules.yaml", RuleSet, reads={"lexicon": LEXICON})


class _Values(dict[str, Any]):
    """A rationale's values: the facts it names, each read when the template asks for it (lists joined, whole
    floats as integers)."""

    def __init__(self, facts: RequestFacts, **extra: Any):
        super().__init__(extra)
        self.facts = facts

    def __missing__(self, key: str) -> Any:
        if key not in RequestFacts.model_fields or key == "evidence":
            raise KeyError(key)
        value = getattr(self.facts, key)
        if isinstance(value, list):
            return ", ".join(str(v) for v in value)
        if isinstance(value, float) and value.is_integer():
            return int(value)
        return value


def render(rule: Rule, facts: RequestFacts, certified: float | None) -> str:
    shown = int(certified) if certified is not None and float(certified).is_integer() else certified
    values = _Values(facts, guideline=rule.guideline.cite(), certified=shown)
    return re.sub(r"\s+", " ", rule.rationale.format_map(values)).strip()
