"""Determination: guideline rules (data) applied to a requested service's facts. Pure: no I/O."""

from __future__ import annotations

from adapter.determination.engine import Citation, Determination, determine
from adapter.determination.facts import RequestFacts, build_facts, facts_from_letter
from adapter.determination.rules import Rule, RuleSet, load_rules

__all__ = [
    "Citation",
    "Determination",
    "RequestFacts",
    "Rule",
    "RuleSet",
    "build_facts",
    "determine",
    "facts_from_letter",
    "load_rules",
]
