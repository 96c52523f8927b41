"""``determine(facts, rules)``: pure and deterministic.

The engine's **recommendation** (A1 certify, A3 not certified, A6 modified, A4 pended) and the **action**
sent on the wire are separate. Where only a licensed physician may deny or modify a request for medical
necessity (California: Labor Code 4610), the adverse policy is "pend": an adverse recommendation (A3 or A6)
goes out as A4 pended, carrying the recommendation, its rules, citations and evidence for a physician reviewer,
its rationale opened by the jurisdiction's words (``AdversePolicy.pended``, from its table under
``mappings/jurisdictions/``), while A1 may go out at once. "decide" sends adverse recommendations as they are,
where that is lawful (a reviewer's own tool, another jurisdiction).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from adapter.actions import ReviewAction
from adapter.determination.documentation import Need, missing, unmet
from adapter.determination.evidence import Finding
from adapter.determination.facts import REQUEST_FACTS, RequestFacts
from adapter.determination.rules import Rule, RuleSet, evaluate, fires, render

AdverseMode = Literal["pend", "decide"]


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

    #: What the guideline rules recommend.
    recommendation: ReviewAction
    #: What is sent: the recommendation, or A4 (pended for a physician) for an adverse one under "pend".
    action: ReviewAction
    #: For A6: the units certified (sessions, tablets, ...).
    certified_quantity: float | None = None
    rules: list[str] = Field(default_factory=list)
    rationale: str
    citations: list[Citation] = Field(default_factory=list)
    #: The documentation the fired rules read: each fact's status and the words it rests on.
    evidence: list[Finding] = Field(default_factory=list)
    #: For a pended item: what the records lack, most decisive first (empty when the item is decided).
    documentation: list[Need] = Field(default_factory=list)


PENDED_NO_RULE = "No guideline rule decides this request on the facts available; it is pended for a human reviewer."


@dataclass(frozen=True)
class AdversePolicy:
    """What an adverse recommendation (A3, A6) becomes on the wire, as the jurisdiction's review policy says
    (``adapter.review.policy``): under "pend" an A4 for a physician reviewer, its rationale opened by
    ``pended`` (``{label}``: the recommendation in words); under "decide" the recommendation as it is."""

    mode: AdverseMode = "pend"
    #: The jurisdiction's words for an adverse recommendation pended for a physician, naming its law.
    pended: str = (
        "Recommended {label}; only a physician reviewer may deny or modify a request, so it is pended for one."
    )

    def note(self, recommendation: ReviewAction) -> str:
        """The words that open a pended adverse recommendation's rationale."""
        return self.pended.format(label=recommendation.label)

    def reasons(self, rationale: str) -> str:
        """A rationale without the words that pended it (the recommendation's own reasons)."""
        for action in (ReviewAction.NOT_CERTIFIED, ReviewAction.MODIFIED):
            if rationale.startswith(note := self.note(action)):
                return rationale.removeprefix(note).lstrip()
        return rationale


#: Adverse recommendations pended for a physician, in no jurisdiction's words (the engine's default).
PEND = AdversePolicy()


def _evidence(fired: list[Rule], facts: RequestFacts) -> list[Finding]:
    names = dict.fromkeys(name for rule in fired for name in rule.needs if name in facts.evidence)
    return [facts.evidence[name] for name in names]


def recommend(facts: RequestFacts, rules: RuleSet) -> Determination:
    """Apply every rule: one agreed recommendation wins, anything else is pended (A4) for human review, with
    the documentation criteria the records lack; an adverse recommendation names the criteria it rests on (it
    goes to a physician, who may ask for them before deciding)."""
    answer = _recommend(facts, rules)
    if answer.recommendation is ReviewAction.PENDED and answer.rules != [FOLLOWS_SURGERY]:
        answer.documentation = missing(facts, rules)
    elif answer.recommendation.adverse:
        answer.documentation = unmet(facts, rules, [r for r in rules.rules if r.id in answer.rules])
    return answer


def _recommend(facts: RequestFacts, rules: RuleSet) -> Determination:
    fired = [rule for rule in rules.applying(facts.category) if fires(rule, facts)]
    if not facts.documented:  # no clinical record: only the request's own counts, doses and limits decide
        fired = [rule for rule in fired if set(rule.needs) <= REQUEST_FACTS]
    if not fired:  # what the records do state, for the human who decides
        stated = [f for f in facts.evidence.values() if f.status != "unknown"]
        return Determination(
            recommendation=ReviewAction.PENDED, action=ReviewAction.PENDED, rationale=PENDED_NO_RULE, evidence=stated
        )
    stopped: list[Rule] = []
    if {r.action for r in fired} == {ReviewAction.NOT_CERTIFIED, ReviewAction.MODIFIED}:
        if any(r.taper for r in fired):  # a drug to taper is tapered, not stopped at once
            stopped = [r for r in fired if r.action == ReviewAction.NOT_CERTIFIED]
            fired = [r for r in fired if r.action == ReviewAction.MODIFIED]
        else:  # one rule supports nothing more: another's partial answer is moot
            fired = [r for r in fired if r.action == ReviewAction.NOT_CERTIFIED]
    citations = [
        Citation(rule=r.id, guideline=r.guideline.title, section=r.guideline.section, pages=r.guideline.pages,
                 status=r.guideline.status)
        for r in fired
    ]  # fmt: skip
    ids, evidence = [r.id for r in fired], _evidence(fired, facts)
    actions = {r.action for r in fired}
    if len(actions) > 1:
        listing = "; ".join(f"{r.id} ({r.action})" for r in fired)
        return Determination(
            recommendation=ReviewAction.PENDED, action=ReviewAction.PENDED, rules=ids, citations=citations,
            evidence=evidence,
            rationale=f"Guideline rules disagree ({listing}); the request is pended for a human reviewer.",
        )  # fmt: skip
    (action,) = actions
    certified = None
    if action == ReviewAction.MODIFIED:
        amounts = {evaluate(r.certify, facts) for r in fired}
        if len(amounts) > 1:
            return Determination(
                recommendation=ReviewAction.PENDED, action=ReviewAction.PENDED, rules=ids, citations=citations,
                evidence=evidence,
                rationale=f"Rules would modify the request to different amounts {sorted(amounts)}; pended.",
            )  # fmt: skip
        (certified,) = amounts
        certified -= facts.authorized_count or 0  # of a modified request, what is left after the authorized part
        if certified <= 0:
            action = ReviewAction.NOT_CERTIFIED
            certified = None
        elif facts.requested_count is not None and certified >= facts.requested_count - (facts.authorized_count or 0):
            action = ReviewAction.CERTIFIED  # what is supported covers the whole request
            certified = None
    rationale = " ".join(f"{render(r, facts, certified)} ({r.guideline.cite()})" for r in fired)
    if stopped:
        rationale += f" Rules that would stop it at once ({', '.join(r.id for r in stopped)}) give way to the taper."
    return Determination(
        recommendation=action, action=action, certified_quantity=certified, rules=ids, rationale=rationale,
        citations=citations, evidence=evidence,
    )  # fmt: skip


def apply_policy(determination: Determination, adverse: AdversePolicy = PEND) -> Determination:
    """The action on the wire: under "pend", an adverse recommendation goes to a physician as A4 with what it
    rests on; under "decide" it is final and asks for nothing."""
    if not determination.recommendation.adverse:
        return determination
    if adverse.mode == "decide":
        return determination.model_copy(update={"documentation": []})
    note = adverse.note(determination.recommendation)
    return determination.model_copy(
        update={"action": ReviewAction.PENDED, "rationale": f"{note} {determination.rationale}"}
    )


def determine(facts: RequestFacts, rules: RuleSet, *, adverse: AdversePolicy = PEND) -> Determination:
    """The recommendation for one request and the action sent under the adverse-decision policy."""
    return apply_policy(recommend(facts, rules), adverse)


#: The rule that pends a service associated with a surgery until the surgery is decided.
FOLLOWS_SURGERY = "associated-with-surgery"


def determine_all(
    items: Sequence[RequestFacts], rules: RuleSet, *, adverse: AdversePolicy = PEND
) -> list[Determination]:
    """The services of one request (a letter's items, a Claim's items) together: each on its own, then the
    services associated with a surgery (assistant, pre-operative clearance, post-operative care) follow
    the surgery they belong to when the request holds one surgery with a certify or non-certify answer."""
    answers = [recommend(facts, rules) for facts in items]
    surgeries = [(f, a) for f, a in zip(items, answers, strict=True) if f.category == "surgery"]
    if len(surgeries) == 1 and surgeries[0][1].recommendation in (ReviewAction.CERTIFIED, ReviewAction.NOT_CERTIFIED):
        ((surgery_facts, surgery),) = surgeries
        answers = [
            a.model_copy(update={
                "recommendation": surgery.recommendation, "action": surgery.recommendation,
                "rules": [*a.rules, *surgery.rules], "citations": [*a.citations, *surgery.citations],
                "evidence": surgery.evidence,
                "rationale": f"{a.rationale} The surgery ({surgery_facts.request}): {surgery.rationale}",
            }) if a.rules == [FOLLOWS_SURGERY] else a
            for a in answers
        ]  # fmt: skip
    return [apply_policy(a, adverse) for a in answers]
