"""``determine(facts, rules)``: pure and deterministic."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from adapter.determination.facts import RequestFacts
from adapter.determination.rules import Action, RuleSet, evaluate, fires, render


class Citation(BaseModel):
    """Where a rationale comes from: the rule and its guideline, section and page."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    rule: str
    guideline: str
    section: str | None = None
    pages: str | None = None
    status: str


class Determination(BaseModel):
    """The answer to one requested service."""

    model_config = ConfigDict(extra="forbid")

    action: Action
    #: For A6: the units certified (sessions, tablets, ...).
    certified_quantity: float | None = None
    rules: list[str] = Field(default_factory=list)
    rationale: str
    citations: list[Citation] = Field(default_factory=list)


PENDED_NO_RULE = "No guideline rule decides this request on the facts available; it is pended for a human reviewer."


def determine(facts: RequestFacts, rules: RuleSet) -> Determination:
    """Apply every rule; one agreed action wins, anything else is pended (A4) for human review."""
    fired = [rule for rule in rules.rules if fires(rule, facts)]
    if not fired:
        return Determination(action="A4", rationale=PENDED_NO_RULE)
    citations = [
        Citation(rule=r.id, guideline=r.guideline.title, section=r.guideline.section, pages=r.guideline.pages,
                 status=r.guideline.status)
        for r in fired
    ]  # fmt: skip
    ids = [r.id for r in fired]
    actions = {r.action for r in fired}
    if len(actions) > 1:
        listing = "; ".join(f"{r.id} ({r.action})" for r in fired)
        return Determination(
            action="A4", rules=ids, citations=citations,
            rationale=f"Guideline rules disagree ({listing}); the request is pended for a human reviewer.",
        )  # fmt: skip
    (action,) = actions
    certified = None
    if action == "A6":
        amounts = {evaluate(r.certify, facts) for r in fired}
        if len(amounts) > 1:
            return Determination(
                action="A4", rules=ids, citations=citations,
                rationale=f"Rules would modify the request to different amounts {sorted(amounts)}; pended.",
            )  # fmt: skip
        (certified,) = amounts
        if certified <= 0:
            action = "A3"
            certified = None
    rationale = " ".join(f"{render(r, facts, certified)} ({r.guideline.cite()})" for r in fired)
    return Determination(
        action=action, certified_quantity=certified, rules=ids, rationale=rationale, citations=citations
    )
