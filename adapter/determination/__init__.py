"""Determination: guideline rules (data) applied to a requested service's facts and evidence. Pure: no I/O."""

from __future__ import annotations

from adapter.determination.engine import (
    AdversePolicy,
    Citation,
    Determination,
    apply_policy,
    determine,
    determine_all,
    recommend,
)
from adapter.determination.evidence import Finding, Status, Text
from adapter.determination.facts import Context, RequestFacts, build_facts, facts_from_letter
from adapter.determination.rules import RULES, Rule, RuleSet

__all__ = [
    "AdversePolicy",
    "Citation",
    "Context",
    "Determination",
    "Finding",
    "RequestFacts",
    "Rule",
    "RuleSet",
    "Status",
    "Text",
    "apply_policy",
    "build_facts",
    "determine",
    "determine_all",
    "facts_from_letter",
    "RULES",
    "recommend",
]
