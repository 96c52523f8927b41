"""What a request not yet decided lacks: the documentation criteria (``mappings/documentation.yaml``) that would
decide it, ranked, at most three.

A pended item (no rule decides, or rules disagree): two sources name a criterion. The guideline: the criteria it
names for that kind of service (``services``; for a drug already taken or a treatment already given, what its
continuation rests on, ``continued``), in its order, which is the order of what is most decisive for that kind of
service. The rules: a criterion whose fact, stated present or absent (a count, stated as little or as much as can
be), would let a guideline rule that applies to the request decide it (decisive; the more rules it would let decide,
the more decisive). The ranking puts first the criteria the guideline names that the records lack, in its order,
then the decisive ones it does not name, most decisive first. The first two are named; a third only when it is
decisive (a third the guideline merely lists is more often not what decides, and asking for it costs the provider an
answer).

The records lack a criterion when its first fact is unknown, or stated absent where that leaves it unmet
(``absent_unmet``: a normal neurologic examination leaves a spine MRI without its indication; no earlier imaging is
an answer to the request for its reports), or stated present with nothing of what came of it (``outcome``: imaging
done, its result not stated); a criterion of diagnoses (an indication) when no diagnosis it names is documented; a
criterion of counts (the request specified) when no quantity is stated.

An adverse recommendation (A3, A6) is not a decision: it goes to a physician (Labor Code 4610), and before a
physician denies, the reviewer may ask for the information reasonably necessary to decide (8 CCR 9792.9.1).
What it names (``unmet``) is first what the adverse rules rest on: the criteria whose facts, documented as met (an
exception the records are silent on stated, a criterion they state unmet shown met), would stop those rules. A
rule that rests on the request's own wording rather than on a fact (a course requested with no quantity), or on
a guideline that admits the service only as an exception (passive modalities as an adjunct to active therapy),
names the criteria the table declares answer it (``answers``). Stopping the rules is not yet certifying, so after
them come the other criteria the guideline names for the service that the records lack, a third again only when
decisive. A rule that rests on no documentation (a compound holding a drug not recommended, a count over its
limit) names nothing: nothing the provider could send would change it.

Each criterion comes with the LOINC attachment codes to ask for it with, a plain question for the provider and
the guideline it rests on.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, model_validator

from adapter.categories import CATEGORIES, CategoryTable
from adapter.determination.facts import STATUS_FACTS, RequestFacts
from adapter.determination.rules import RULES, Rule, RuleSet, fires
from adapter.lexicon import LEXICON, Lexicon
from adapter.tables import TableFile, mappings

#: The most criteria one item names.
MOST = 3
#: The most it names without the last being decisive.
PLAIN = 2


class Criterion(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    facts: list[str]
    loinc: list[str] = Field(min_length=1)
    question: str = Field(min_length=1)
    guideline: str = Field(min_length=1)
    #: Rules that rest on the request's own wording rather than on a fact (a request that states no quantity), or
    #: on a guideline that admits the service only as an exception: this criterion, documented, is what answers
    #: them, so an item they pend names it.
    answers: list[str] = Field(default_factory=list)
    #: Whether the records stating the first fact absent leave the criterion unmet (the examination found no deficit,
    #: conservative care has not failed): still what the request lacks, so still asked for. Otherwise a fact stated
    #: absent answers it (no earlier imaging to send, no risk factor).
    absent_unmet: bool = False
    #: Whether the first fact says there is something to report on (a treatment given, imaging done): stated present,
    #: the criterion is still lacking while none of its other facts (what it did, what it showed) is stated.
    outcome: bool = False


class DocumentationTable(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    criteria: dict[str, Criterion]
    #: By request category, or for a drug by its class (mappings/lexicon.yaml) where the class's guideline differs.
    services: dict[str, list[str]]
    #: For a drug or treatment the patient already has (a refill, more of a course): what its continuation rests on.
    continued: dict[str, list[str]] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _consistent(self, info: ValidationInfo) -> DocumentationTable:
        unknown = {f for c in self.criteria.values() for f in c.facts} - set(RequestFacts.model_fields)
        if unknown:
            raise ValueError(f"criteria name facts that are no request fact: {sorted(unknown)}")
        rules: RuleSet = (info.context or {})["rules"]
        strange = {r for c in self.criteria.values() for r in c.answers} - {rule.id for rule in rules.rules}
        if strange:
            raise ValueError(f"criteria answer rules that rules.yaml does not have: {sorted(strange)}")
        named = {c for cs in [*self.services.values(), *self.continued.values()] for c in cs} - set(self.criteria)
        if named:
            raise ValueError(f"services name unknown criteria: {sorted(named)}")
        categories: CategoryTable = (info.context or {})["categories"]
        lexicon: Lexicon = (info.context or {})["lexicon"]
        kinds = {e.id for e in categories.entries} | {d.drug_class for d in lexicon.drug_names}
        unknown = {*self.services, *self.continued} - kinds
        if unknown:
            raise ValueError(f"services are neither request categories nor drug classes: {sorted(unknown)}")
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
    #: Whether documenting it would let a guideline rule decide the item (or stop an adverse rule): what the
    #: provider is asked for (``to_ask``); the others are shown to the physician.
    decisive: bool = False


def to_ask(needs: Sequence[Need]) -> list[Need]:
    """What an item asks of the provider: the criteria that would decide it, else (no rule would, as for most
    imaging) all it lacks. Asking only for what is reasonably necessary to decide (8 CCR 9792.9.1) spares the
    provider answers that change nothing."""
    return [need for need in needs if need.decisive] or list(needs)


DOCUMENTATION = TableFile(
    "documentation.yaml", DocumentationTable, reads={"rules": RULES, "categories": CATEGORIES, "lexicon": LEXICON}
)


def _unknown(facts: RequestFacts, name: str) -> bool:
    value = getattr(facts, name)
    return value is None or (name in STATUS_FACTS and value == "unknown")


#: Facts that are true, false or unknown (diagnoses named or not).
_BOOLEAN_FACTS = frozenset(n for n, f in RequestFacts.model_fields.items() if f.annotation == bool | None)


def _settings(name: str) -> list[Any]:
    """The values a missing fact could take once documented."""
    return ["present", "absent"] if name in STATUS_FACTS else [True, False] if name in _BOOLEAN_FACTS else []


#: What a missing count could be stated as: the least and one past any guideline's limit.
_QUANTITIES = (1, 1000)


def lacking(facts: RequestFacts, criterion: Criterion) -> bool:
    """Whether the records lack what a criterion stands for: its first fact unknown, or stated absent where that
    leaves it unmet (``absent_unmet``), or stated present with nothing of what came of it (``outcome``: imaging
    done, its result not stated); for a criterion of diagnoses (an indication), none of its diagnoses documented;
    for a count (a quantity), none stated."""
    if not criterion.facts:
        return True
    first = criterion.facts[0]
    if first in STATUS_FACTS:
        value = getattr(facts, first)
        if criterion.outcome and value == "present":
            return all(_unknown(facts, name) for name in criterion.facts[1:])
        return _unknown(facts, first) or (criterion.absent_unmet and value == "absent")
    if first in _BOOLEAN_FACTS:
        return not any(getattr(facts, name) is True for name in criterion.facts)
    return all(getattr(facts, name) is None for name in criterion.facts)


def _need(table: DocumentationTable, name: str, decisive: Counter[str]) -> Need:
    criterion = table.criteria[name]
    return Need(criterion=name, facts=criterion.facts, loinc=criterion.loinc, question=criterion.question,
                citation=criterion.guideline, decisive=name in decisive)  # fmt: skip


def guideline_criteria(facts: RequestFacts, table: DocumentationTable) -> list[str]:
    """The criteria the guideline names for the service, in its order: for a drug the patient already takes or a
    treatment already given, what its continuation rests on (``continued``), else what it asks before starting;
    for a drug, what it names for the drug's class where it names something, else for its category."""
    given = facts.same_drug_in_use == "present" or facts.prior_same_therapy == "present"
    kinds = [kind for kind in (facts.drug_class, facts.category) if kind]
    for named in [table.continued, table.services] if given else [table.services]:
        for kind in kinds:
            if kind in named:
                return named[kind]
    return []


def _by_fact(table: DocumentationTable, facts: RequestFacts) -> dict[str, str]:
    """The criterion each fact stands for in this request: of the criteria that name it, the first the guideline
    names for the service, else the first in the table (pain relief is a drug's efficacy, and the response to an
    injection already given)."""
    by_fact: dict[str, str] = {}
    for name in [*guideline_criteria(facts, table), *table.criteria]:
        for fact in table.criteria[name].facts:
            by_fact.setdefault(fact, name)
    return by_fact


def _cap(ranked: list[str], decisive: Counter[str]) -> list[str]:
    """The first two of the ranked criteria, and the third when it is decisive (see the module)."""
    return [c for i, c in enumerate(ranked[:MOST]) if i < PLAIN or c in decisive]


def missing(facts: RequestFacts, rules: RuleSet, table: DocumentationTable | None = None) -> list[Need]:
    """The documentation criteria a pended item lacks, ranked (see the module), at most ``MOST``."""
    table = table or mappings()[DOCUMENTATION]
    by_fact = _by_fact(table, facts)
    decides: Counter[str] = Counter()
    for rule in rules.applying(facts.category):
        for name in rule.needs:
            criterion = by_fact.get(name)
            if criterion is None or not _unknown(facts, name):
                continue
            settings = _settings(name) or _QUANTITIES
            if any(fires(rule, facts.model_copy(update={name: value})) for value in settings):
                decides[criterion] += 1
    decisive = [c for c, _ in sorted(decides.items(), key=lambda kv: -kv[1])]
    named = [c for c in guideline_criteria(facts, table) if lacking(facts, table.criteria[c])]
    ranked = named + decisive
    return [_need(table, c, decides) for c in _cap(list(dict.fromkeys(ranked)), decides)]


def unmet(
    facts: RequestFacts, rules: RuleSet, fired: Sequence[Rule], table: DocumentationTable | None = None
) -> list[Need]:
    """What an adverse recommendation rests on (see the module): the criteria whose fact, documented as met
    (``present``, a diagnosis named), would stop an adverse rule that fired and start no other adverse rule (no
    more of a course already given, say, when that would deny it all), or that the table declares answer a rule;
    those that would stop more of them first, then in the guideline's order for the service; after them the
    guideline's other criteria for the service that the records lack; the third only when it stops a rule."""
    table = table or mappings()[DOCUMENTATION]
    by_fact = _by_fact(table, facts)
    adverse = [r for r in fired if r.action.adverse]
    fired_ids = {r.id for r in adverse}
    others = [r for r in rules.rules if r.action.adverse and r.id not in fired_ids]
    stops: Counter[str] = Counter()
    for name, criterion in by_fact.items():
        met = _settings(name)[:1]  # present, or a diagnosis named
        if not met or getattr(facts, name) == met[0] or not any(name in r.needs for r in adverse):
            continue
        changed = facts.model_copy(update={name: met[0]})
        stopped = sum(not fires(r, changed) for r in adverse)
        if stopped and not any(fires(r, changed) for r in others):
            stops[criterion] = max(stops[criterion], stopped)
    for criterion, declared in table.criteria.items():  # rules on the request's wording: the criterion that answers
        stopped = sum(r.id in declared.answers for r in adverse)
        if stopped:
            stops[criterion] = max(stops[criterion], stopped)
    order = guideline_criteria(facts, table)
    ranked = sorted(stops, key=lambda c: (-stops[c], order.index(c) if c in order else len(order)))
    if ranked:  # stopping the rules is not yet certifying: then what else the guideline asks that the records lack
        ranked += [c for c in order if c not in stops and lacking(facts, table.criteria[c])]
    return [_need(table, c, stops) for c in _cap(ranked, stops)]
