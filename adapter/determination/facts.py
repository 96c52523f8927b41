"""The facts a reviewer uses, derived from what a request carries and nothing else.

From a letter: the header, the patient, the clinical case summary and the item texts (never the
decisions, guideline lines or rationales). From FHIR: the ServiceRequest and its context (Patient,
Conditions, Procedures, prior ServiceRequests, MedicationRequests, notes and text documents). Both readers
hand the same pieces to ``build_facts``: the request's text and numbers, the clinical texts with where
each came from, and what structured data says (prior sessions, drugs on the medication list).

Facts about the documentation are ``Evidence``: present, absent (stated as absent) or unknown (not
stated), each with the sentence it rests on. Request facts a rule may need are None when the input does
not carry them; a rule that needs a missing fact cannot fire.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date

from pydantic import BaseModel, ConfigDict, Field

from adapter.categories import CATEGORIES, categorise
from adapter.determination.evidence import (
    CONDITIONAL,
    CONTINUED,
    CURRENT,
    DISCONTINUED,
    FAMILY,
    HISTORICAL,
    HYPOTHETICAL,
    NEGATED,
    OTHER_INJURY,
    RECORD,
    REQUESTED,
    Finding,
    Mention,
    Status,
    Text,
    course_counted,
    diagnosed,
    drugs_in_use,
    drugs_planned,
    finding,
    others_count,
    stopped_drugs,
    therapy_finding,
)
from adapter.determination.evidence import mentions as find_mentions
from adapter.determination.mme import OPIOIDS, mme_per_day
from adapter.determination.postsurgical import POSTSURGICAL, course_for
from adapter.letters import _text
from adapter.lexicon import LEXICON, Drug, Lexicon
from adapter.model import DisputedItem, IMRCase
from adapter.tables import label_window, mappings


class RequestFacts(BaseModel):
    """Everything a rule may ask about one requested service."""

    model_config = ConfigDict(extra="forbid")

    request: str
    category: str
    codes: list[str] = Field(default_factory=list)
    body_region: str | None = None
    requested_count: int | None = None
    #: For a modified request: the units of the original request the claims administrator already authorized.
    #: ``requested_count`` is then the original request's (a limit applies to all of it), and an answer covers
    #: the rest.
    authorized_count: int | None = None
    frequency_per_week: int | None = None
    duration_weeks: int | None = None
    #: Prior sessions of the same kind of therapy, when a count is stated (text or structured history).
    prior_sessions: int | None = None
    #: Earlier care of the same kind for this injury and region: given, stated as never given, or unknown.
    prior_same_therapy: Status = "unknown"
    weeks_since_injury: float | None = None
    age: int | None = None
    diagnoses: list[str] = Field(default_factory=list)
    radicular_diagnosis: bool | None = None
    osteoarthritis_diagnosis: bool | None = None
    tendinitis_diagnosis: bool | None = None
    crps_diagnosis: bool | None = None
    neuropathy_diagnosis: bool | None = None
    #: A peripheral neuropathy or nerve entrapment named or suspected ("rule out peripheral neuropathy").
    neuropathy_suspected: bool | None = None
    shoulder_impingement_diagnosis: bool | None = None
    rotator_cuff_tear_diagnosis: bool | None = None
    carpal_tunnel_diagnosis: bool | None = None
    calcific_tendinitis_diagnosis: bool | None = None
    plantar_fasciitis_diagnosis: bool | None = None
    #: Spondylolisthesis, instability or a vertebral fracture named (not when only suspected or to be ruled out).
    spinal_instability_diagnosis: bool | None = None
    #: Gastrointestinal risk for NSAIDs (ulcer, bleeding, GERD, anticoagulants): documented, denied, unknown.
    gi_risk: Status = "unknown"
    surgery_related: bool | None = None
    #: For physical medicine after a surgery the records name (mappings/postsurgical.yaml): the surgery, its
    #: general course of visits and the initial course (one half).
    surgery_name: str | None = None
    postsurgical_course: int | None = None
    postsurgical_initial_course: int | None = None
    functional_improvement: Status = "unknown"
    red_flags: Status = "unknown"
    neurologic_deficit: Status = "unknown"
    objective_joint_findings: Status = "unknown"
    surgery_documented: Status = "unknown"
    hospitalization_documented: Status = "unknown"
    return_to_work_attempts: Status = "unknown"
    tens_trial_documented: Status = "unknown"
    acute_flare: Status = "unknown"
    acute_trauma: Status = "unknown"
    imaging_corroboration: Status = "unknown"
    drug_monitoring: Status = "unknown"
    pain_relief: Status = "unknown"
    prior_imaging: Status = "unknown"
    prior_electrodiagnostics: Status = "unknown"
    #: A home exercise program documented as not effective, or a stated need for equipment.
    home_exercise_failed: Status = "unknown"
    #: Electrodiagnostic studies that confirm a nerve entrapment (carpal or cubital tunnel), or were normal.
    entrapment_confirmed: Status = "unknown"
    #: Confined to bed or room (DME for the bathroom serves a medical purpose then).
    confined: Status = "unknown"
    #: Conservative care (therapy, medications, exercise) tried and failed: the criterion for injections.
    conservative_care_failed: Status = "unknown"
    #: Signs of a fracture after trauma (bony point tenderness, inability to bear weight, deformity; the
    #: Ottawa or Canadian rules): what indicates plain films.
    fracture_signs: Status = "unknown"
    #: Adverse effects of the drugs asked about (one of the four A's of opioid monitoring).
    side_effects_assessed: Status = "unknown"
    #: An indication of 8 CCR 9792.24.1(a) for acupuncture: medication reduced or not tolerated, or an
    #: adjunct to physical rehabilitation.
    acupuncture_indication: Status = "unknown"
    #: The same service certified earlier, or a duplicate request.
    earlier_approval: Status = "unknown"
    medications: list[str] = Field(default_factory=list)
    opioid_in_use: Status = "unknown"
    opioid_planned: Status = "unknown"
    nsaid_in_use: Status = "unknown"
    #: An NSAID planned in the notes or requested beside this request.
    nsaid_planned: Status = "unknown"
    #: A first-line drug for neuropathic pain (an antiepilepsy drug or an antidepressant) taken now.
    first_line_neuropathic_in_use: Status = "unknown"
    drug_class: str | None = None
    #: A drug of the requested class already taken: in use, not among the documented drugs, or unknown.
    same_drug_class_in_use: Status = "unknown"
    #: The drugs in use of the requested drug's class (a rationale names these, not every drug in use).
    same_class_medications: list[str] = Field(default_factory=list)
    #: The requested drug itself already taken (a refill), as opposed to another of its class.
    same_drug_in_use: Status = "unknown"
    #: Another drug of the requested drug's class taken now (a second NSAID), whether or not the requested drug
    #: itself is.
    other_same_class_in_use: Status = "unknown"
    doses_per_day: float | None = None
    supply_days: float | None = None
    #: An opioid request's daily dose in morphine milligram equivalents (None: strength or frequency unknown).
    mme_per_day: float | None = None
    #: The units of the request that keep the daily dose at the MTUS weaning threshold (80 MME).
    units_at_mme_threshold: int | None = None
    #: The units of one taper step (the daily dose about 10% lower, not below the threshold).
    units_after_taper_step: int | None = None
    topical_form: str | None = None
    topical_ingredients: list[str] = Field(default_factory=list)
    compound_has_not_recommended: bool | None = None
    lower_extremity_nerve_study: bool | None = None
    retrospective: bool | None = None
    #: Whether the request comes with any clinical record (notes, diagnoses, medications, treatment history):
    #: without one, only the request's own counts, doses and limits may decide it.
    documented: bool = True
    #: The words each documentation fact rests on, by fact.
    evidence: dict[str, Finding] = Field(default_factory=dict)


#: Facts about the documentation: present, absent (stated as absent) or unknown (not stated). Each finding of
#: mappings/lexicon.yaml is one of them.
STATUS_FACTS = frozenset(name for name, f in RequestFacts.model_fields.items() if "present" in str(f.annotation))
#: Facts a request states itself (what, how much, how often, for which region, when): the only ones a rule may
#: read to decide a request that comes with no clinical record.
REQUEST_FACTS = frozenset({
    "request", "category", "codes", "body_region", "requested_count", "frequency_per_week", "duration_weeks",
    "weeks_since_injury", "age", "drug_class", "doses_per_day", "supply_days", "topical_form",
    "topical_ingredients", "compound_has_not_recommended", "lower_extremity_nerve_study", "retrospective",
    "surgery_related",
})  # fmt: skip


# --- the pieces both readers give ----------------------------------------------------------------------


@dataclass
class Context:
    """What the input says around a request: clinical texts with their sources, and structured data."""

    texts: list[Text] = field(default_factory=list)
    diagnoses: list[str] = field(default_factory=list)
    #: Prior sessions per therapy from structured history (None: the input carries no history).
    prior: dict[str, int] | None = None
    #: Drugs on a structured medication list that are taken now (None: no list).
    medication_list: list[str] | None = None
    injury: date | None = None
    as_of: date | None = None
    age: int | None = None
    #: The other services requested with this one (the letter's other items, the Claim's other requests).
    alongside: list[str] = field(default_factory=list)


_DRUGS = ("opioid", "muscle-relaxant", "nsaid", "other-drug", "topical", "topical-compound")
#: Equipment rented for a stated time: its days are read like a drug's supply.
_RENTALS = ("cold-therapy", "tens", "durable-medical-equipment")


def _classes(ingredients: list[str], lexicon: Lexicon) -> set[str]:
    """The drug classes of some ingredients."""
    return {d.drug_class for d in lexicon.drug_names if d.ingredient in ingredients}


@dataclass(frozen=True)
class _Medications:
    """What the context says is taken: ingredients, classes ("she takes NSAIDs"), classes stated as not taken
    ("not taking opioids"), and whether the drugs taken are documented at all (a list, a drug named as taken,
    "takes no medications")."""

    ingredients: list[str]
    classes: set[str]
    denied: set[str]
    documented: bool
    #: The mentions behind it, for the quotes: drugs and classes taken, and those stated not taken (stopped,
    #: a class denied, "no medications"), each with its class ("*" for drugs at all).
    taken_by: list[tuple[str, Mention]] = field(default_factory=list)
    denied_by: list[tuple[str, Mention]] = field(default_factory=list)
    medication_list: list[str] | None = None
    #: Drugs (ingredients) and their classes the notes plan or request ("will start naproxen"): whether one is
    #: also taken now is not said by the other drugs being named, unless the notes say those are all there is
    #: (``exclusive``: "takes only Tylenol", "no medications").
    planned: set[str] = field(default_factory=set)
    exclusive: bool = False
    #: Drugs (ingredients) stated stopped and not resumed ("Norco was tapered off in March") or never taken.
    stopped: set[str] = field(default_factory=set)
    #: Drugs (ingredients) taken before and not now ("was on tramadol in 2022", "Lidoderm was stopped"), and those
    #: never taken ("she never filled the naproxen"), each with the mention that says so.
    before: dict[str, Mention] = field(default_factory=dict)
    never: dict[str, Mention] = field(default_factory=dict)

    def status(self, classes: set[str]) -> Status:
        """Whether a drug of these classes is taken: taken, of a class stated not taken (gabapentin stopped,
        nothing else for nerve pain named: no first-line neuropathic drug) or not among the documented drugs
        unless one of them is planned, or unknown."""
        if self.classes & classes:
            return "present"
        if self.denied & classes:
            return "absent"
        return "absent" if self.documented and (self.exclusive or not self.planned & classes) else "unknown"

    def finding(self, fact: str, classes: set[str]) -> Finding:
        """The status of ``fact`` (a drug of these classes taken) with the words it rests on: the first mention
        of such a drug taken; else the statement that none is, else the drugs the notes or the medication list
        say are taken (none of them of these classes)."""
        status = self.status(classes)
        if status == "unknown":
            return Finding(fact=fact, status="unknown")
        mentions = self.taken_by if status == "present" else self.denied_by
        said = next((m for cls, m in mentions if cls in classes or (status == "absent" and cls == "*")), None)
        if said is None and self.medication_list is None and self.taken_by:
            said = self.taken_by[0][1]  # none of these among the drugs the notes say are taken
        if said is not None:
            return said.finding(fact, status)
        return _listed(fact, status, self.medication_list or [])

    def other_than(self, ingredient: str, drug_class: str, lexicon: Lexicon) -> Finding:
        """Whether a drug of this class other than ``ingredient`` is taken, with the words it rests on: another
        drug of the class named taken or listed; unknown when the class is named taken only as a class ("on
        NSAIDs"); else as the class itself is, the requested drug counting for none."""
        fact = "other_same_class_in_use"
        for cls, mention in self.taken_by:
            if cls == drug_class and mention.kind == "drug" and mention.name != ingredient:
                return mention.finding(fact, "present")
        listed = [i for i in self.medication_list or [] if i != ingredient and lexicon.drug_class(i) == drug_class]
        if listed:
            return _listed(fact, "present", listed)
        if any(cls == drug_class for cls, _ in self.taken_by):  # the class named taken, or the drug itself
            named = any(cls == drug_class and m.kind == "drugclass" for cls, m in self.taken_by)
            return Finding(fact=fact, status="unknown" if named else "absent")
        return self.finding(fact, {drug_class})

    def had(self, ingredients: frozenset[str]) -> Finding:
        """Whether the requested drugs were ever taken (``prior_same_therapy`` of a drug request): taken now or
        before, else stated never taken, else unknown."""
        fact = "prior_same_therapy"
        if ingredients & set(self.ingredients):
            said = next((m for _, m in self.taken_by if m.name in ingredients), None)
            if said is not None:
                return said.finding(fact, "present")
            return _listed(fact, "present", self.medication_list or [])
        ever: tuple[tuple[Status, dict[str, Mention]], ...] = (("present", self.before), ("absent", self.never))
        for status, mentions in ever:
            said = next((m for name, m in mentions.items() if name in ingredients), None)
            if said is not None:
                return said.finding(fact, status)
        return Finding(fact=fact, status="unknown")

    def taking(self, ingredient: str, drug_class: str) -> Status:
        """Whether this drug is taken: named as taken; stated stopped or never taken, of a class stated not taken
        ("she is not on any opioid" before a tramadol request), or not among the documented drugs unless it is
        planned; or unknown."""
        if ingredient in self.ingredients:
            return "present"
        if drug_class in self.denied or ingredient in self.stopped:
            return "absent"
        return "absent" if self.documented and (self.exclusive or ingredient not in self.planned) else "unknown"


def _listed(fact: str, status: Status, drugs: list[str]) -> Finding:
    """A fact read from the structured medication list, quoting it."""
    return Finding(fact=fact, status=status, quote=f"medication list: {', '.join(drugs) or 'none'}",
                   source="medication list")  # fmt: skip


def _medications(
    found: list[Mention], medication_list: list[str] | None, lexicon: Lexicon, requested: frozenset[str] = frozenset()
) -> _Medications:
    """What the context says is taken; the ``requested`` drugs (ingredients) named alone document no list of what
    is taken ("the Lidoderm patch is not supported" says nothing of the drugs she takes)."""
    named = [m for m in found if m.kind == "drugclass" and m.counts]
    stops = [m for m in stopped_drugs(found, []) if not m.modifiers & _NOT_HAD and not _STILL_TAKEN.search(m.sentence)]
    taken = _since_ended(drugs_in_use(found), [*named, *stops], lexicon)
    ingredients = list(dict.fromkeys([*(m.name for m in taken if m.kind == "drug"), *(medication_list or [])]))
    classes = _classes(ingredients, lexicon) | {m.name for m in taken if m.kind == "drugclass"} - {"*"}
    # a class said not taken ("not taking opioids", "off all NSAIDs"), or whose drugs named are all stopped or
    # never taken ("stopped the Norco", "never took tramadol") with none of it taken
    denied = {m.name for m in named if m.modifiers & {NEGATED, DISCONTINUED}}
    ended, never = stopped_drugs(found, taken), _not_taken(found, ingredients)
    stopped = [*ended, *never]
    never += [m for m in ended if _NEVER_HAD.search(m.sentence)]  # "never started it", "not yet filled"
    ended = [m for m in ended if not _NEVER_HAD.search(m.sentence)]
    earlier = [m for m in found if m.kind == "drug" and m.counts and HISTORICAL in m.modifiers
               and not m.modifiers & _NOT_HAD]  # fmt: skip
    denied |= _classes([m.name for m in stopped], lexicon) - classes
    taken_by = [(_class_of(m, lexicon), m) for m in taken]
    denied_by = [(m.name, m) for m in named if m.modifiers & {NEGATED, DISCONTINUED}]
    denied_by += [(_class_of(m, lexicon), m) for m in stopped]
    planned = {m.name for m in drugs_planned(found)}
    planned |= _classes(list(planned), lexicon)
    # a structured medication list is the whole of it
    exclusive = medication_list is not None or "*" in denied or any(_ONLY.search(m.sentence) for m in taken)
    # the requested drug counts only said to be all she takes ("on naproxen alone")
    documented = (
        bool(set(ingredients) - requested or (ingredients and exclusive))
        or medication_list is not None
        or "*" in denied
    )
    return _Medications(
        ingredients, classes, denied - {"*"}, documented, taken_by, denied_by, medication_list,
        planned, exclusive, {m.name for m in stopped}, {m.name: m for m in reversed([*earlier, *ended])},
        {m.name: m for m in reversed(never)},
    )  # fmt: skip


def _since_ended(taken: list[Mention], stops: list[Mention], lexicon: Lexicon) -> list[Mention]:
    """The drugs ``taken`` less those a later mention among ``stops`` says are no longer taken, the drug itself
    or its class, where nothing says they are taken now ("less ibuprofen use with the TENS ... She no longer takes
    ibuprofen"; "Percocet after the 2020 ORIF; off all opioids since 3/2021", not "Norco 10/325 TID; no other
    opioids")."""
    ended = [e for e in stops if e.modifiers & {NEGATED, DISCONTINUED} and not _BESIDES.search(e.sentence)]

    def ends(m: Mention) -> bool:
        names = (m.name, _class_of(m, lexicon))
        return any(e.source == m.source and e.start > m.end and e.name in names for e in ended)

    return [m for m in taken if m.kind != "drug" or m.modifiers & {CURRENT, CONTINUED} or not ends(m)]


#: A drug's sentence saying it is still taken, whatever stop it tells, or that the stop is to come: "It is not the
#: case that she has stopped the Norco; she still takes 1 tab at night", "Norco to be stopped once the tramadol is
#: filled".
_STILL_TAKEN = re.compile(
    r"\bstill\s+(?:takes?|taking|on|uses?|using)\b|\b(?:to|will)\s+(?:be\s+)?(?:stop(?:ped)?|discontinued?)\b", re.I
)
#: Words that make a class said not taken no word on the drugs named: other drugs of it ("no other opioids", "no
#: need for a second muscle relaxant"), a kind of it ("no oral NSAIDs" beside a gel), its monitoring or prescribing
#: ("no opioid agreement in the chart", "no opioid is prescribed by this office").
_BESIDES = re.compile(
    r"\b(?:other|else|additional|second|another|besides|apart from|aside from|beyond|in addition|oral|topical"
    r"|long[- ]acting|short[- ]acting|agreements?|agmt|contracts?|prescri\w*|urine|UDS|CURES|screens?|testing)\b",
    re.I,
)

#: A drug's sentence saying it was never begun: "she never started it", "the naproxen was not yet filled".
_NEVER_HAD = re.compile(
    r"\bnever (?:started|filled|took|taken|tried|used|began|begun|picked up|received)\b"
    r"|\bnot (?:yet |been )?(?:started|filled|tried)\b",
    re.I,
)
#: What makes a drug named in the past no drug the patient took: denied, planned, someone else's, another injury's.
_NOT_HAD = frozenset({NEGATED, HYPOTHETICAL, REQUESTED, CONDITIONAL, FAMILY, OTHER_INJURY, RECORD})


def _not_taken(found: list[Mention], taken: list[str]) -> list[Mention]:
    """Drug mentions that say the drug was never taken ("she has never used a lidocaine patch") or not kept on."""
    return [
        m for m in found
        if m.kind == "drug" and m.counts and NEGATED in m.modifiers and m.name not in taken
        and _NOT_TAKEN.search(m.sentence)
    ]  # fmt: skip


#: A negated drug's sentence saying it was never taken, or not kept on ("neither the Flexeril nor the tramadol
#: was continued"): other negations ("denies not taking the gabapentin") are too often double.
_NOT_TAKEN = re.compile(r"\bnever\b|\b(?:was|were) continued\b", re.I)
#: Words that say the drugs named taken are all that is taken ("takes only Tylenol", "on naproxen alone"), not how
#: often ("which she takes only about twice a week").
_ONLY = re.compile(
    r"\b(?:only(?!\s+(?:about|around|at|when|as|if|occasionally|rarely|once|twice|\d+|prn|every|in\s+the)\b)|alone|"
    r"solely|no other|nothing else)\b",
    re.I,
)


def _class_of(mention: Mention, lexicon: Lexicon) -> str:
    """The drug class a drug or drug-class mention names."""
    if mention.kind == "drugclass":
        return mention.name
    drug = lexicon.drug_by_name.get(mention.name)  # a drug mention's name is its ingredient, itself a drug name
    return drug.drug_class if drug else "*"


#: Whether a drug of these classes is taken, as facts of every request.
_DRUG_FACTS = {"opioid_in_use": {"opioid"}, "nsaid_in_use": {"nsaid"},
               "first_line_neuropathic_in_use": {"anticonvulsant", "antidepressant"}}  # fmt: skip


def _drug_facts(request: str, found: list[Drug], category: str, taken: _Medications, quantity: int | None,
                lexicon: Lexicon, evidence: dict[str, Finding]) -> dict[str, object]:  # fmt: skip
    """Drug facts of a request naming the drugs ``found`` against what the context shows taken (``evidence`` gains
    the quote of the request's own class)."""
    lowered = request.lower()
    facts: dict[str, object] = {}
    cls = found[0].drug_class if found else None
    if category not in _DRUGS + _RENTALS:
        return facts
    days = re.search(r"\b(\d{1,3})[- ]days?\b|\b(one|two|three) (?:month|week)s?\b", lowered)
    if days and days[1]:
        facts["supply_days"] = float(days[1])
    elif days:
        unit = 30.0 if "month" in days[0] else 7.0
        facts["supply_days"] = {"one": 1, "two": 2, "three": 3}[days[2]] * unit
    if category in _RENTALS:
        return facts
    facts["drug_class"] = cls
    if cls is not None:
        evidence["same_drug_class_in_use"] = taken.finding("same_drug_class_in_use", {cls})
        facts["same_drug_class_in_use"] = evidence["same_drug_class_in_use"].status
        same = [i for i in taken.ingredients if lexicon.drug_class(i) == cls]
        facts["same_class_medications"] = same or ([f"{cls} (named as a class)"] if cls in taken.classes else [])
        facts["same_drug_in_use"] = taken.taking(found[0].ingredient, cls)
        evidence["other_same_class_in_use"] = taken.other_than(found[0].ingredient, cls, lexicon)
        facts["other_same_class_in_use"] = evidence["other_same_class_in_use"].status
    per_day = lexicon.doses_per_day(lowered)
    facts["doses_per_day"] = per_day
    if "supply_days" not in facts and per_day and quantity:
        facts["supply_days"] = quantity / per_day
    if cls == "opioid" and found:
        supply = facts.get("supply_days")
        mme = mme_per_day(request, found[0].ingredient, doses_per_day=per_day, quantity=quantity,
                          supply_days=supply if isinstance(supply, float) else None)  # fmt: skip
        facts["mme_per_day"] = mme
        if mme and quantity:
            opioids = mappings()[OPIOIDS]
            at_threshold = int(quantity * min(1.0, opioids.wean_above / mme))
            facts["units_at_mme_threshold"] = at_threshold
            facts["units_after_taper_step"] = max(at_threshold, int(quantity * (1 - opioids.taper_step)))
    if category in ("topical", "topical-compound"):
        form = lexicon.topical_form(lowered)
        facts["topical_form"] = form
        ingredients = [d.ingredient for d in found]
        facts["topical_ingredients"] = ingredients
        not_recommended = any(
            i in lexicon.topical_not_recommended or lexicon.drug_class(i) == "muscle-relaxant" for i in ingredients
        )
        lidocaine_not_patch = "lidocaine" in ingredients and form != "patch"
        facts["compound_has_not_recommended"] = not_recommended or (
            category == "topical-compound" and lidocaine_not_patch
        )
    return facts


#: Facts credited to a treatment: improvement and relief count for the treatment they follow, an approval for the
#: treatment it names ("six PT visits were certified" is no earlier approval of chiropractic).
_CREDITED = frozenset({"functional_improvement", "pain_relief", "earlier_approval"})


#: The order of an injection named in the singular ("the second ESI"): it tells how many were given.
_ORDINAL = re.compile(
    r"\b(?:(?P<first>first|1st|prior|previous|last|initial|the|an?)|(?P<second>second|2nd)|(?P<third>third|3rd))"
    r"\s+(?:[\w/-]+\s+){0,3}$",
    re.I,
)
#: A phrase naming injections in the plural ("ESIs", "epidurals", "a series of blocks"): how many is not said.
_PLURAL = re.compile(r"s\b|\bseries\b", re.I)


def _order(found: re.Match[str]) -> int:
    return 3 if found["third"] else 2 if found["second"] else 1


def _injections_named(prior: Finding, context: Context) -> int | None:
    """How many injections the phrase that documents the prior one names, when it names one in the singular with
    its order or article ("the 3/2023 L5-S1 ESI", "the second epidural"), or a later one as given ("no relief from
    the first ESI, although the second one gave 50%"; not "a third is requested"); None when it is plural or bare."""
    text = next((t.text for t in context.texts if t.source == prior.source), None)
    if text is None or prior.start is None or prior.end is None:
        return None
    phrase = text[prior.start : prior.end]
    order = _ORDINAL.search(text, max(0, prior.start - 40), prior.start)
    if _PLURAL.search(phrase) or order is None:
        return None
    given = (rf"\bthe\s+(?:(?P<second>second|2nd)|(?P<third>third|3rd))\s+(?:[\w/-]+\s+){{0,3}}?"
             rf"(?:one\b|{re.escape(phrase)})")  # fmt: skip
    return max(_order(found) for found in [order, *re.finditer(given, text, re.I)])


#: The drug class of the anaesthetics a block or injection is given with.
_ANAESTHETIC = "local-anesthetic"


def _credit(category: str, drugs: list[Drug], lexicon: Lexicon, *, injection: bool) -> frozenset[str] | None:
    """The attribution keys of the requested treatment: a therapy of its category or one its case rests on (the
    lexicon's ``credited_for``), with the anaesthetics for care given as an ``injection``; or the ``drugs`` it names
    (None: the request is no treatment, nothing to credit)."""
    kinds = lexicon.therapies_credited_for(category)
    if kinds:
        keys = {*(t.name for t in kinds), "injection" if "injection" in category else "therapy"}
        if injection:  # a block's relief is its anaesthetic's too: "100% relief x 6 hrs (lidocaine)"
            keys.add(f"drug:{_ANAESTHETIC}")
        return frozenset(keys)
    if category in _DRUGS and drugs:
        return frozenset({*(f"drug:{d.drug_class}" for d in drugs), "medication"})
    return None


def build_facts(
    request: str,
    context: Context,
    *,
    codes: list[str] | None = None,
    quantity: int | None = None,
    frequency: int | None = None,
    weeks: int | None = None,
    lexicon: Lexicon | None = None,
) -> RequestFacts:
    """Facts from the pieces any input gives: the request, its numbers, and its context."""
    lexicon = lexicon or mappings()[LEXICON]
    text = _text.collapse(request)
    category = categorise(text, codes)
    label = label_window(text)
    stated_quantity, stated_frequency, stated_weeks, site = _text.quantities(label)
    if quantity is None and frequency is None and weeks is None:
        quantity, frequency, weeks = stated_quantity, stated_frequency, stated_weeks
    region = lexicon.region(site) or lexicon.region(label)
    side = lexicon.side(label)
    diagnoses = [Text("diagnoses", "; ".join(context.diagnoses))] if context.diagnoses else []
    found: list[Mention] = find_mentions([*diagnoses, *context.texts], lexicon)
    requested = lexicon.drugs_in(text)  # the drugs the request names, read once
    past = category in mappings()[CATEGORIES].injections  # a repeat injection rests on what the last one did
    credit = _credit(category, requested, lexicon, injection=past)
    evidence = {
        fact: finding(
            fact, found, lexicon, region=region, side=side, credit=credit if fact in _CREDITED else None, past=past
        )
        for fact in lexicon.findings
    }

    def failed(fact: str, mentions: list[Mention], care: frozenset[str]) -> Finding | None:
        """The fact stated by ``care`` that brought no gain or relief in ``mentions``, read with the effect facts'
        own reading (care that helped says nothing the other way: "working modified duty; does a HEP daily")."""
        for effect in ("functional_improvement", "pain_relief"):
            none = finding(effect, mentions, lexicon, region=region, side=side, credit=care)
            if none.status == "absent":
                return none.model_copy(update={"fact": fact, "status": "present"})
        return None

    # care named with no gain or relief from it failed ("Theraband HEP for two months without change")
    for fact, rule in lexicon.findings.items():
        care = frozenset(rule.failed_care)
        if care and evidence[fact].status == "unknown":
            evidence[fact] = failed(fact, [m for m in found if m.treatments & care], care) or evidence[fact]
    for fact, rule in lexicon.findings.items():  # "HEP x 8 wks w/o improvement": conservative care failed too
        implying = next((evidence[o] for o in rule.implied_by if evidence[o].status == "present"), None)
        if evidence[fact].status == "unknown" and implying is not None:
            evidence[fact] = implying.model_copy(update={"fact": fact})

    if evidence["conservative_care_failed"].status == "unknown":  # "orthotics and stretching without improvement"
        fact = "conservative_care_failed"  # read of every mention, the care named or not
        evidence[fact] = failed(fact, found, lexicon.conservative_keys) or evidence[fact]

    prior_count = None
    # care of the request's kind: the category's therapies (aquatic therapy and massage are physical therapy)
    therapies = lexicon.therapies_of(category)
    kinds = {t.name for t in therapies}
    if kinds:
        denying = {t.name for t in lexicon.therapies_denying(category)}
        prior = therapy_finding(kinds, found, region=region, side=side, fact="prior_same_therapy", lexicon=lexicon,
                                denying=denying)  # fmt: skip
        structured = [n for name, n in (context.prior or {}).items() if name in kinds]
        if structured:  # structured history (completed Procedures)
            prior_count = max(structured)
            if prior.status != "present":
                quote = f"{prior_count} completed sessions"
                prior = Finding(fact="prior_same_therapy", status="present", quote=quote, source="treatment history")
        elif prior.status == "absent":  # "has had no acupuncture": none
            prior_count = 0
        else:  # the counts the text states of care given ("has had 6 sessions of ...")
            # a count in a note that names no care is of the care requested (the category's own therapy)
            own = next((t.name for t in therapies if t.category == category), min(kinds))
            counts = [(t.source, t.text, f) for t in context.texts
                      for f in _text.treatment_history(t.text, unnamed=own)]  # fmt: skip
            # a course and the more that followed it ("then six more") add up; someone else's or another injury's are
            # none of it
            if prior.status == "present":
                stated = [f.count + _text.further_count(text, f) for source, text, f in counts
                          if f.therapy in kinds and not others_count(found, source, f)]  # fmt: skip
                prior_count = max(stated) if stated else None
            else:  # no mention says it was given, a count may ("16 sessions of PT were authorized; she attended 11")
                counted = course_counted(kinds, found, counts, region=region, side=side, lexicon=lexicon)
                if counted is not None:
                    prior, prior_count = counted
        if prior_count is None and past and prior.status == "present":  # "the prior ESI", "the second injection"
            prior_count = _injections_named(prior, context)
        evidence["prior_same_therapy"] = prior

    taken = _medications(found, context.medication_list, lexicon, frozenset(d.ingredient for d in requested))
    if not kinds and category in _DRUGS and requested:  # a drug taken before is its prior course
        evidence["prior_same_therapy"] = taken.had(frozenset(d.ingredient for d in requested))
    for fact, classes in _DRUG_FACTS.items():
        evidence[fact] = taken.finding(fact, classes)
    alongside = [d.ingredient for other in context.alongside for d in lexicon.drugs_in(other)]
    planned = _classes([*(m.name for m in drugs_planned(found) if m.kind == "drug"), *alongside], lexicon)
    opioid_planned: Status = "present" if "opioid" in planned else "unknown"

    has_diagnoses = bool(context.diagnoses) or any(t.text.strip() for t in context.texts)

    def diagnosis(group: str) -> bool | None:
        return diagnosed(group, found) if has_diagnoses else None

    as_of, injury = context.as_of, context.injury
    surgery = course_for(region, [text, *(t.text for t in context.texts)]) if kinds else None
    return RequestFacts(
        request=text,
        category=category,
        codes=list(codes or []),
        body_region=region,
        requested_count=quantity,
        frequency_per_week=frequency,
        duration_weeks=weeks,
        prior_sessions=prior_count,
        prior_same_therapy=evidence.get(
            "prior_same_therapy", Finding(fact="prior_same_therapy", status="unknown")
        ).status,
        weeks_since_injury=round((as_of - injury).days / 7, 1) if injury and as_of and as_of >= injury else None,
        age=context.age,
        diagnoses=list(context.diagnoses),
        radicular_diagnosis=diagnosis("radicular"),
        osteoarthritis_diagnosis=diagnosis("osteoarthritis"),
        tendinitis_diagnosis=diagnosis("tendinitis"),
        crps_diagnosis=diagnosis("crps"),
        neuropathy_diagnosis=diagnosis("neuropathy"),
        neuropathy_suspected=(
            any(diagnosed(group, found, suspected=True) for group in ("neuropathy", "entrapment"))
            if has_diagnoses
            else None
        ),
        shoulder_impingement_diagnosis=diagnosis("shoulder_impingement"),
        rotator_cuff_tear_diagnosis=diagnosis("rotator_cuff_tear"),
        carpal_tunnel_diagnosis=diagnosis("carpal_tunnel"),
        calcific_tendinitis_diagnosis=diagnosis("calcific_tendinitis"),
        plantar_fasciitis_diagnosis=diagnosis("plantar_fasciitis"),
        spinal_instability_diagnosis=diagnosis("spinal_instability"),
        surgery_related=bool(re.search(r"associated surgical|post-?op|pre-?op|surgical", text, re.IGNORECASE)),
        postsurgical_course=surgery.visits if surgery else None,
        postsurgical_initial_course=mappings()[POSTSURGICAL].initial_course(surgery) if surgery else None,
        surgery_name=surgery.name if surgery else None,
        medications=taken.ingredients,
        opioid_in_use=evidence["opioid_in_use"].status,
        opioid_planned=opioid_planned,
        nsaid_in_use=evidence["nsaid_in_use"].status,
        nsaid_planned="present" if "nsaid" in planned else "unknown",
        first_line_neuropathic_in_use=evidence["first_line_neuropathic_in_use"].status,
        lower_extremity_nerve_study=(
            bool(re.search(r"\b(?:NCV|NCS|nerve conduction)\b", text, re.I))
            and bool(re.search(r"lower|leg|lumbar|hip", text, re.I))
        )
        if category == "electrodiagnostic"
        else None,
        retrospective=bool(re.search(r"\bretro(?:spective)?\b|\bDOS\b", text, re.IGNORECASE)),
        documented=any(t.text.strip() for t in context.texts)
        or bool(context.diagnoses)
        or context.medication_list is not None
        or context.prior is not None,
        evidence=evidence,
        **{fact: evidence[fact].status for fact in lexicon.findings},
        **_drug_facts(text, requested, category, taken, quantity, lexicon, evidence),
    )


# --- letters -----------------------------------------------------------------------------------------

LETTER_SOURCE = "letter: clinical case summary"


def letter_summary(case: IMRCase) -> str | None:
    """The clinical case summary of a parsed letter (the request side only), from its source text."""
    if case.source is None:
        return None
    from adapter.letters import summary_text

    return summary_text(case.source.text, case.layout)


def facts_from_letter(case: IMRCase, item: DisputedItem, summary: str | None = None) -> RequestFacts:
    """Facts for one disputed item of a letter: header, patient, summary and the item's own text only."""
    from adapter.letters import requested_on

    summary = summary if summary is not None else letter_summary(case)
    context = Context(
        texts=[Text(LETTER_SOURCE, _text.collapse(summary))] if summary else [],
        diagnoses=list(case.diagnoses),
        injury=case.dates.injury,
        as_of=requested_on(case, summary or ""),
        age=case.patient.age,
        alongside=[other.requested for other in case.items if other is not item],
    )
    original = _text.quantities(item.original_request)[0] if item.original_request else None
    authorized = _text.quantities(item.authorized)[0] if item.authorized else None
    if original and authorized and original > authorized:  # 12 asked, 6 authorized: the limit reads all 12
        facts = build_facts(item.original_request or item.requested, context)
        return facts.model_copy(update={"request": _text.collapse(item.requested), "authorized_count": authorized})
    return build_facts(item.requested, context)
