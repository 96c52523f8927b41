"""The facts a reviewer uses, derived from what a request carries and nothing else.

From a letter: the header, the patient, the clinical case summary and the item texts (never the
decisions, guideline lines or rationales). From FHIR: the ServiceRequest and its context (Patient,
Conditions, Procedures, prior ServiceRequests, MedicationRequests, notes and text documents).

A fact the input does not allow is None ("missing"); facts about the documentation ("documented
functional improvement") are None only when there is no clinical text at all.
"""

from __future__ import annotations

import re
from datetime import date
from functools import lru_cache
from pathlib import Path

import yaml
from pydantic import BaseModel, ConfigDict, Field

from adapter.errors import MappingTableError
from adapter.letters import _text
from adapter.model import DisputedItem, IMRCase
from adapter.tables import DEFAULT_MAPPINGS, label_window


class RequestFacts(BaseModel):
    """Everything a rule may ask about one requested service."""

    model_config = ConfigDict(extra="forbid")

    request: str
    category: str
    codes: list[str] = Field(default_factory=list)
    body_region: str | None = None
    requested_count: int | None = None
    frequency_per_week: int | None = None
    duration_weeks: int | None = None
    #: Prior sessions of the same kind of therapy, when a count is stated.
    prior_sessions: int | None = None
    #: Whether earlier treatment of the same kind is mentioned at all (with or without a count).
    prior_same_therapy: bool | None = None
    weeks_since_injury: float | None = None
    age: int | None = None
    diagnoses: list[str] = Field(default_factory=list)
    radicular_diagnosis: bool | None = None
    osteoarthritis_diagnosis: bool | None = None
    crps_diagnosis: bool | None = None
    surgery_related: bool | None = None
    surgery_documented: bool | None = None
    hospitalization_documented: bool | None = None
    functional_improvement: bool | None = None
    red_flags: bool | None = None
    neurologic_deficit: bool | None = None
    objective_joint_findings: bool | None = None
    return_to_work_attempts: bool | None = None
    tens_trial_documented: bool | None = None
    medications: list[str] = Field(default_factory=list)
    opioid_in_use: bool | None = None
    drug_class: str | None = None
    same_drug_class_in_use: bool | None = None
    doses_per_day: float | None = None
    supply_days: float | None = None
    topical_form: str | None = None
    topical_ingredients: list[str] = Field(default_factory=list)
    compound_has_not_recommended: bool | None = None
    lower_extremity_nerve_study: bool | None = None
    retrospective: bool | None = None


# --- categories (mappings/categories.yaml) ---------------------------------------------------------


class _Category(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    id: str
    match: list[str]
    codes: list[str] = Field(default_factory=list)


class _Categories(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    default: str
    entries: list[_Category]


@lru_cache(maxsize=4)
def categories(folder: Path = DEFAULT_MAPPINGS) -> tuple[str, list[tuple[str, re.Pattern[str], frozenset[str]]]]:
    """The category table, compiled; ``MappingTableError`` (file and entry) when it is broken."""
    path = folder / "categories.yaml"
    try:
        table = _Categories.model_validate(yaml.safe_load(path.read_text()))
        compiled = [
            (e.id, re.compile("|".join(f"(?:{p})" for p in e.match), re.IGNORECASE), frozenset(e.codes))
            for e in table.entries
        ]
    except (OSError, yaml.YAMLError, ValueError, re.error) as exc:
        raise MappingTableError(f"the category table does not load: {exc}", location=str(path)) from exc
    return table.default, compiled


def categorise(text: str, codes: list[str] | None = None) -> str:
    default, entries = categories()
    code_set = set(codes or [])
    window = label_window(text)
    for category, pattern, known in entries:
        if code_set & known or pattern.search(window):
            return category
    return default


# --- reading clinical text ---------------------------------------------------------------------------

_NEGATION = re.compile(
    r"\b(?:no|not|without|denie[sd]|denying|negative|absence of|absent|normal|intact|free of|ruled out|non)\b"
    r"[^.;]{0,50}$",
    re.I,
)


_NEGATED_AFTER = re.compile(
    r"^[^.;]{0,12}?\b(?:(?:were|was|are|is|have been|has been)\s+)?(?:not|none|absent|negative|denied|ruled out)\b",
    re.I,
)


def _mentioned(text: str, pattern: re.Pattern[str]) -> bool:
    """Whether the pattern occurs in the text outside a negated phrase ("no red flags", "denied numbness",
    "red flags were not noted")."""
    for found in pattern.finditer(text):
        before = re.split(r"[.;]", text[max(0, found.start() - 60) : found.start()])[-1]
        after = text[found.end() : found.end() + 40]
        if not _NEGATION.search(before) and not _NEGATED_AFTER.search(after):
            return True
    return False


def _words(*patterns: str) -> re.Pattern[str]:
    return re.compile("|".join(f"(?:{p})" for p in patterns), re.IGNORECASE)


_IMPROVED = _words(
    r"(?<!no )(?<!without )(?<!not )(?<!lack of )(?:objective )?functional (?:improvement|gains?)",
    r"improve(?:d|ment)s?(?: in| of)? (?:[a-z]+ ){0,2}(?:function|motion|rotation|flexion|extension|strength|"
    r"activit|mobility|sitting|standing|walking|tolerance|ADLs?|sleep)",
    r"(?:was|were|is|are|has been) (?:significantly |very |quite )?help(?:ful|ed)",
    r"\d+\s?(?:-\s?\d+\s?)?% (?:better|improvement)",
    r"return(?:ed)? to (?:full|regular|modified) (?:duty|work)",
    r"decrease(?:d)? (?:in )?(?:medication|pain medication) use",
)
_NOT_IMPROVED = _words(
    r"(?:no|without|lack of|absence of|not (?:show|demonstrate)[a-z]*) "
    r"(?:documented |significant |objective |evidence of )*(?:functional )?improvement",
    r"no (?:changes? in|change of) (?:complaints|(?:the )?level of function|function)",
    r"not improv",
    r"failed to improve",
    r"no (?:significant )?(?:relief|benefit)",
    r"without (?:relief|benefit)",
    r"(?:pain|symptoms) (?:persist|unchanged|worse)",
)
_RED_FLAGS = _words(
    r"red flags?",
    r"cauda equina",
    r"saddle an(?:a)?esthesia",
    r"bowel (?:or|and) bladder",
    r"incontinence",
    r"progressive (?:neurologic|weakness|deficit)",
    r"\btumou?r",
    r"malignan",
    r"cancer",
    r"infection",
    r"fever",
    r"unexplained weight loss",
    r"\bfracture",
)
_NEURO = _words(
    r"(?:decreased|diminished|reduced|altered|abnormal) (?:sensation|sensory|light touch|pinprick)",
    r"hypoesthesia",
    r"(?:motor )?weakness",
    r"(?:decreased|diminished|reduced|absent|asymmetric) (?:deep tendon )?reflex",
    r"straight leg rais\w*(?: test)? (?:was |is |were )?positive",
    r"positive (?:straight leg rais|SLR|Spurling|seated root)",
    r"\bSLR (?:was |is )?positive",
    r"dermatomal",
    r"atrophy",
    r"radiculopathy",
    r"foot drop",
    r"(?:strength|motor) (?:was |is )?(?:4|3)/5",
)
_JOINT = _words(
    r"positive (?:Speed|Yergason|O'?Brien|Hawkins|Neer|McMurray|Lachman|anterior drawer|posterior drawer|apprehension|"
    r"Apley|Tinel|Phalen|Finkelstein|impingement|empty can|Thessaly|Jobe|drop arm)",
    r"\beffusion",
    r"instability",
    r"\blocking\b",
    r"(?:meniscus|meniscal|labral|labrum|ligament) tear",
    r"mechanical symptoms",
    r"giving way|buckling",
)
_SURGERY = _words(
    r"status post (?:[a-z]+ ){0,4}(?:surgery|repair|arthroscop|fusion|laparotomy|release|replacement|reconstruction|"
    r"amputation|resection|ORIF|fixation)",
    r"\bs/p\b",
    r"underwent (?:[a-z]+ ){0,4}(?:surgery|repair|arthroscop|fusion|laparotomy|release|replacement|resection)",
    r"post-?operative(?:ly)?",
    r"surgery (?:was |is )?(?:scheduled|planned|authorized|certified|performed)",
    r"laparotomy",
    r"(?:colon|bowel) resection",
)
_HOSPITAL = _words(r"hospitali[sz]", r"\binpatient\b", r"admitted to", r"intensive care", r"\bICU\b", r"trauma center")
_RTW = _words(
    r"return(?:ed)? to work attempts?",
    r"(?:attempted|tried) to return to work",
    r"unsuccessful return to work",
    r"failed (?:a )?return to work",
)
_TENS_TRIAL = _words(r"TENS (?:unit )?trial", r"trial of (?:a )?TENS", r"(?:used|using|uses) (?:a )?TENS")
_RADICULAR = _words(r"radicul", r"sciatica", r"neuritis", r"neuralgia")
_OA = _words(r"osteoarthritis", r"degenerative joint disease", r"\bDJD\b", r"arthrosis")
_CRPS = _words(r"complex regional pain", r"\bCRPS\b", r"reflex sympathetic")

_THERAPY_WORDS = {
    "physical-therapy": (r"physical therapy|\bPT\b|physiotherapy", "physical therapy"),
    "chiropractic": (r"chiropract|manipulation", "chiropractic"),
    "acupuncture": (r"acupuncture", "acupuncture"),
    "occupational-therapy": (r"occupational therapy|hand therapy|\bOT\b", "occupational therapy"),
}

#: Drugs by class, for medication lists in clinical text and for requests.
DRUG_CLASSES: dict[str, tuple[str, ...]] = {
    "opioid": (
        "tramadol",
        "ultram",
        "norco",
        "hydrocodone",
        "percocet",
        "oxycodone",
        "morphine",
        "trezix",
        "codeine",
        "tapentadol",
        "nucynta",
        "fentanyl",
        "methadone",
        "hydromorphone",
        "tylenol #3",
    ),
    "muscle-relaxant": (
        "cyclobenzaprine",
        "flexeril",
        "orphenadrine",
        "norflex",
        "chlorzoxazone",
        "lorzone",
        "carisoprodol",
        "soma",
        "methocarbamol",
        "robaxin",
        "tizanidine",
        "zanaflex",
        "metaxalone",
        "skelaxin",
        "baclofen",
    ),
    "nsaid": (
        "naproxen",
        "anaprox",
        "ibuprofen",
        "motrin",
        "meloxicam",
        "mobic",
        "diclofenac",
        "voltaren",
        "celecoxib",
        "celebrex",
        "etodolac",
        "nabumetone",
        "ketorolac",
        "toradol",
        "flurbiprofen",
        "ketoprofen",
    ),
    "anticonvulsant": ("gabapentin", "neurontin", "pregabalin", "lyrica", "topiramate"),
    "antidepressant": ("amitriptyline", "nortriptyline", "duloxetine", "cymbalta", "venlafaxine"),
    "benzodiazepine": ("diazepam", "valium", "alprazolam", "xanax", "lorazepam", "clonazepam"),
    "local-anesthetic": ("lidocaine", "lidoderm", "bupivacaine", "prilocaine"),
}
_DRUG_NAMES = _words(*(rf"\b{re.escape(name)}\b" for names in DRUG_CLASSES.values() for name in names))
#: Topical ingredients the MTUS does not recommend (Chronic Pain MTG, topical analgesics): any compound with
#: one of them is not recommended. Lidocaine counts outside the Lidoderm patch.
TOPICAL_NOT_RECOMMENDED = (
    "gabapentin",
    "baclofen",
    "cyclobenzaprine",
    "orphenadrine",
    "tizanidine",
    "ketoprofen",
    "dexamethasone",
    "dextromethorphan",
    "amitriptyline",
    "bupivacaine",
    "prilocaine",
)
_DOSES = [
    (r"\b(?:once (?:a |per )?day|daily|q\.?d\.?|every day|at bedtime|qhs)\b", 1.0),
    (r"\b(?:twice (?:a |per )?day|twice daily|two times (?:a|per) day|b\.?i\.?d\.?)\b", 2.0),
    (r"\b(?:three times (?:a|per) day|t\.?i\.?d\.?)\b", 3.0),
    (r"\b(?:four times (?:a|per) day|q\.?i\.?d\.?|every 6 hours)\b", 4.0),
    (r"\bevery 4-6 hours\b", 4.0),
    (r"\bevery 8 hours\b", 3.0),
    (r"\bevery 12 hours\b", 2.0),
]


def drug_class(name: str) -> str | None:
    lowered = name.lower()
    for cls, names in DRUG_CLASSES.items():
        if any(re.search(rf"\b{re.escape(n)}\b", lowered) for n in names):
            return cls
    return None


def medications(text: str) -> list[str]:
    """Drug names mentioned in clinical text (lower case, in order, once each)."""
    return list(dict.fromkeys(m.group(0).lower() for m in _DRUG_NAMES.finditer(text)))


def _documentation(text: str | None) -> dict[str, bool | None]:
    if not text or not text.strip():
        return dict.fromkeys(
            (
                "functional_improvement",
                "red_flags",
                "neurologic_deficit",
                "objective_joint_findings",
                "surgery_documented",
                "hospitalization_documented",
                "return_to_work_attempts",
                "tens_trial_documented",
            ),
        )
    improved, not_improved = _IMPROVED.search(text) is not None, _NOT_IMPROVED.search(text) is not None
    return {
        # documented improvement; its absence (stated, or simply not documented) is False
        "functional_improvement": improved and not not_improved,
        "red_flags": _mentioned(text, _RED_FLAGS),
        "neurologic_deficit": _mentioned(text, _NEURO),
        "objective_joint_findings": _mentioned(text, _JOINT),
        "surgery_documented": _mentioned(text, _SURGERY),
        "hospitalization_documented": _mentioned(text, _HOSPITAL),
        "return_to_work_attempts": _mentioned(text, _RTW),
        "tens_trial_documented": _mentioned(text, _TENS_TRIAL),
    }


def _drug_facts(request: str, category: str, in_use: list[str] | None, quantity: int | None) -> dict[str, object]:
    """Drug facts of a request; ``in_use`` are the drugs the clinical text names (None: no clinical text)."""
    lowered = request.lower()
    facts: dict[str, object] = {}
    found = medications(request)
    cls = drug_class(found[0]) if found else None
    if category in ("opioid", "muscle-relaxant", "nsaid", "other-drug", "topical", "topical-compound"):
        facts["drug_class"] = cls
        if in_use is not None and cls is not None:
            facts["same_drug_class_in_use"] = any(drug_class(m) == cls for m in in_use)
        per_day = next((n for pattern, n in _DOSES if re.search(pattern, lowered)), None)
        facts["doses_per_day"] = per_day
        days = re.search(r"\b(\d{1,3})\s+days?\b|\b(one|two|three) (?:month|week)s? supply", lowered)
        if days and days[1]:
            facts["supply_days"] = float(days[1])
        elif days:
            facts["supply_days"] = (
                {"one": 30.0, "two": 60.0, "three": 90.0}[days[2]]
                if "month" in days[0]
                else {"one": 7.0, "two": 14.0, "three": 21.0}[days[2]]
            )
        elif per_day and quantity:
            facts["supply_days"] = quantity / per_day
    if category in ("topical", "topical-compound"):
        form = re.search(r"\b(cream|gel|ointment|lotion|patch|solution|spray)\b", lowered)
        facts["topical_form"] = form[1] if form else ("cream" if "cream base" in lowered else None)
        ingredients = found + [
            w for w in ("menthol", "capsaicin", "camphor", "dexamethasone", "dextromethorphan") if w in lowered
        ]
        facts["topical_ingredients"] = list(dict.fromkeys(ingredients))
        not_recommended = any(i in TOPICAL_NOT_RECOMMENDED or drug_class(i) == "muscle-relaxant" for i in ingredients)
        lidocaine_not_patch = any(i in ("lidocaine",) for i in ingredients) and facts["topical_form"] != "patch"
        facts["compound_has_not_recommended"] = not_recommended or (
            category == "topical-compound" and lidocaine_not_patch
        )
    return facts


def _region(site: str | None) -> str | None:
    """The body region a site names ("right knee" -> knee; "low back" -> lumbar)."""
    if site is None:
        return None
    for region in (
        "lumbar",
        "lumbosacral",
        "low back",
        "cervical",
        "thoracic",
        "shoulder",
        "knee",
        "hip",
        "wrist",
        "hand",
        "elbow",
        "ankle",
        "foot",
        "head",
        "neck",
        "lower extremit",
        "upper extremit",
    ):
        if region in site:
            return {
                "lumbosacral": "lumbar",
                "low back": "lumbar",
                "neck": "cervical",
                "lower extremit": "lower extremity",
                "upper extremit": "upper extremity",
            }.get(region, region)
    return site


def _prior_pattern(therapy: str) -> str:
    """Earlier treatment of a kind: "treatment to date has included ... physical therapy", "6 PT visits"."""
    return (
        rf"(?:treatments?|therapy|care)[^.]{{0,80}}\b(?:{therapy})"
        rf"|(?:{therapy})[^.]{{0,40}}(?:sessions|visits|treatments|helped|was helpful)"
    )


def build_facts(
    request: str,
    *,
    codes: list[str] | None = None,
    quantity: int | None = None,
    frequency: int | None = None,
    weeks: int | None = None,
    clinical: str | None = None,
    diagnoses: list[str] | None = None,
    prior: dict[str, int] | None = None,
    prior_mentioned: set[str] | None = None,
    injury: date | None = None,
    as_of: date | None = None,
    age: int | None = None,
) -> RequestFacts:
    """Facts from the pieces any input gives: the request, its numbers, clinical text, diagnoses, history."""
    text = _text.collapse(request)
    category = categorise(text, codes)
    stated_quantity, stated_frequency, stated_weeks, site = _text.quantities(label_window(text))
    if quantity is None and frequency is None and weeks is None:
        quantity, frequency, weeks = stated_quantity, stated_frequency, stated_weeks
    diagnosis_text = " ".join(diagnoses or []) + " " + (clinical or "")
    prior_count = prior_same = None
    if category in _THERAPY_WORDS:
        pattern, name = _THERAPY_WORDS[category]
        if prior is not None and name in prior:
            prior_count = prior[name]
        elif clinical:  # counts the clinical text states ("has had 6 sessions of chiropractic care")
            stated = [f.count for f in _text.treatment_history(clinical) if f.therapy == name]
            prior_count = max(stated) if stated else None
        if clinical is not None or prior_mentioned is not None:
            prior_same = (
                prior_count is not None
                or name in (prior_mentioned or set())
                or bool(clinical and re.search(_prior_pattern(pattern), clinical, re.IGNORECASE))
            )
    documentation = _documentation(clinical)
    in_use = medications(clinical) if clinical else None
    return RequestFacts(
        request=text,
        category=category,
        codes=list(codes or []),
        body_region=_region(site),
        requested_count=quantity,
        frequency_per_week=frequency,
        duration_weeks=weeks,
        prior_sessions=prior_count,
        prior_same_therapy=prior_same,
        weeks_since_injury=round((as_of - injury).days / 7, 1) if injury and as_of and as_of >= injury else None,
        age=age,
        diagnoses=list(diagnoses or []),
        radicular_diagnosis=bool(_RADICULAR.search(diagnosis_text)) if diagnosis_text.strip() else None,
        osteoarthritis_diagnosis=bool(_OA.search(diagnosis_text)) if diagnosis_text.strip() else None,
        crps_diagnosis=bool(_CRPS.search(diagnosis_text)) if diagnosis_text.strip() else None,
        surgery_related=bool(re.search(r"associated surgical|post-?op|pre-?op|surgical", text, re.IGNORECASE)),
        medications=in_use or [],
        opioid_in_use=any(drug_class(m) == "opioid" for m in in_use) if in_use is not None else None,
        lower_extremity_nerve_study=(
            bool(re.search(r"\b(?:NCV|NCS|nerve conduction)\b", text, re.I))
            and bool(re.search(r"lower|leg|lumbar|hip", text, re.I))
        )
        if category == "electrodiagnostic"
        else None,
        retrospective=bool(re.search(r"\bretro(?:spective)?\b|\bDOS\b", text, re.IGNORECASE)),
        **documentation,
        **_drug_facts(text, category, in_use, quantity),
    )


# --- letters -----------------------------------------------------------------------------------------


def letter_summary(case: IMRCase) -> str | None:
    """The clinical case summary of a parsed letter (the request side only), from its source text."""
    if case.source is None:
        return None
    from adapter.letters import summary_text

    return summary_text(case.source.text, case.layout)


def facts_from_letter(case: IMRCase, item: DisputedItem, summary: str | None = None) -> RequestFacts:
    """Facts for one disputed item of a letter: header, patient, summary and the item's own text only."""
    summary = summary if summary is not None else letter_summary(case)
    clinical = _text.collapse(summary) if summary else None
    remaining = re.search(r"original request,\s+(.+?),?\s+is$", item.request, re.IGNORECASE)
    as_of = case.dates.ur_denial or case.dates.application_received or case.dates.assigned
    return build_facts(
        remaining[1] if remaining else item.request,
        clinical=clinical,
        diagnoses=case.diagnoses,
        prior={f.therapy: max(f.count, 0) for f in case.treatment_history},
        injury=case.dates.injury,
        as_of=as_of,
        age=case.patient.age,
    )
