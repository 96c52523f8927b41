"""A case as a physician reviewer reads it: one request (its answer, a ClaimResponse) with its items, the
patient it is about and what the records hold on that patient.

The case is read once, when the request is decided, from the input the determination read (a PAS request
Bundle, a context Bundle the worker assembled from the EHR, or a request on its own), and kept beside the
answer: the review page shows it without reading the EHR again, and the store finds a patient's earlier
requests by it (``patient_key``, ``CaseItem.key``), across channels ($submit and the worker).

Pure functions; the store keeps what they return.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from datetime import date, datetime
from itertools import zip_longest
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from adapter.determination import RULES, Determination, RuleSet
from adapter.determination.documentation import Need
from adapter.determination.evidence import Finding
from adapter.determination.facts import RequestFacts
from adapter.fhir.extensions import by_id
from adapter.fhir.navigate import concept_text
from adapter.fhir.pas import REQUEST_RESOURCES, ordered
from adapter.fhir.request import RequestBundle, request_bundle
from adapter.fhir.request_facts import injury_date
from adapter.tables import mappings
from adapter.types import JSON

if TYPE_CHECKING:
    from adapter.fhir.request_facts import Requested

#: Requests of the same patient for the same service within this many days are flagged as duplicates.
DUPLICATE_DAYS = 60
_SPACES = re.compile(r"\s+")
#: A text's own part after its resource (``ServiceRequest/3.note[0]``, ``Claim/1.supportingInfo[2]``).
_PART = re.compile(r"\.(note|supportingInfo)\[\d+\]$")
_ENDED = {"stopped", "cancelled", "entered-in-error", "completed", "not-taken", "revoked"}


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Diagnosis(_Model):
    """A diagnosis as the records code and word it."""

    text: str
    code: str | None = None
    system: str | None = None


class HistoryEntry(_Model):
    """One line of treatment or medication history."""

    kind: Literal["treatment", "medication"]
    text: str
    when: str | None = None
    #: Sessions, status, dosage: what the records add to the name.
    detail: str | None = None


class NoteTitle(_Model):
    """What a clinical text is called and when it was written (the review page's heading for it)."""

    source: str
    title: str
    when: str | None = None


class ReadFact(_Model):
    """A fact a rule of the recommendation read, in words ("same class medications: naproxen")."""

    fact: str
    value: str


class CaseItem(_Model):
    """One requested service of the case."""

    sequence: int
    service: str
    #: The service as duplicates are matched: its first code (``system|code``), else its words normalised.
    key: str
    #: Every fact the records state about it (present or absent), with the words it rests on.
    findings: list[Finding] = Field(default_factory=list)
    #: What the records lack for it to be decided (what asking for documentation asks for).
    needs: list[Need] = Field(default_factory=list)
    #: What the recommendation's rules read that no sentence states (a drug list, a count, a dose).
    read: list[ReadFact] = Field(default_factory=list)


class CaseContext(_Model):
    """A request with its items and its patient, as read when it was decided."""

    #: The id of the ClaimResponse that answers it.
    id: str
    received: datetime
    #: The patient as duplicates are matched across channels: the Patient's first identifier (``system|value``),
    #: else the reference.
    patient_key: str | None = None
    #: The patient as a reviewer reads it ("member WC-0000-1234").
    patient: str
    age: int | None = None
    sex: str | None = None
    injury: date | None = None
    diagnoses: list[Diagnosis] = Field(default_factory=list)
    history: list[HistoryEntry] = Field(default_factory=list)
    notes: list[NoteTitle] = Field(default_factory=list)
    items: list[CaseItem] = Field(default_factory=list)

    def title_of(self, source: str) -> NoteTitle:
        """The heading of a clinical text by its source (its resource's, for a note inside one)."""
        titles = {n.source: n for n in self.notes}
        return (
            titles.get(source) or titles.get(_PART.sub("", source)) or NoteTitle(source=source, title="Clinical note")
        )


def service_key(request: JSON) -> str:
    """A requested service as duplicates are matched: its first code, else its words in lower case."""
    concept = ordered(request)
    coding = next((c for c in (concept or {}).get("coding", []) if c.get("code")), None)
    if coding:
        return f"{coding.get('system', '')}|{coding['code']}"
    return "text:" + _SPACES.sub(" ", concept_text(concept).lower()).strip()


def _date_of(*values: Any) -> str | None:
    """The first value that is a date or instant, as its date (YYYY-MM-DD)."""
    for value in values:
        if isinstance(value, str) and len(value) >= 4:
            return value[:10]
    return None


def _patient(request: RequestBundle, reference: JSON | None) -> tuple[str | None, str, JSON | None]:
    """(key, label, Patient) of the patient the request is about."""
    found = request.index.find(reference) if reference else None
    patient = found if found and found.get("resourceType") == "Patient" else None
    identifiers = [i for i in (patient or {}).get("identifier", []) if isinstance(i, dict) and i.get("value")]
    if identifiers:
        first = identifiers[0]
        return f"{first.get('system', '')}|{first['value']}", f"member {first['value']}", patient
    ref = (reference or {}).get("reference")
    return (str(ref), str(ref), patient) if ref else (None, "unknown patient", patient)


def _diagnoses(resources: Sequence[JSON]) -> Iterator[Diagnosis]:
    seen: set[tuple[str, str | None]] = set()
    for condition in (r for r in resources if r.get("resourceType") == "Condition"):
        concept = condition.get("code") or {}
        coding: JSON = next((c for c in concept.get("coding", []) if c.get("code")), {})
        text = concept_text(concept) or str(coding.get("code", ""))
        if text and (text, coding.get("code")) not in seen:
            seen.add((text, coding.get("code")))
            yield Diagnosis(text=text, code=coding.get("code"), system=coding.get("system"))


def _history(resources: Sequence[JSON], requested: set[int]) -> Iterator[HistoryEntry]:
    """Treatments (Procedures; service requests other than the ones asked about) and medications, as listed."""
    session_url = mappings().tables.fhir.extensions.session_count
    for resource in resources:
        rtype = resource.get("resourceType")
        if id(resource) in requested:
            continue
        if rtype == "Procedure" or (rtype == "ServiceRequest" and resource.get("status") == "completed"):
            quantity = (resource.get("quantityQuantity") or {}).get("value")
            sessions = by_id(resource, session_url, "valueInteger") or quantity
            detail = ", ".join(p for p in (f"{sessions:g} sessions" if isinstance(sessions, int | float) else "",
                                           str(resource.get("status") or "")) if p)  # fmt: skip
            period = resource.get("performedPeriod") or resource.get("occurrencePeriod") or {}
            when = _date_of(resource.get("performedDateTime"), period.get("start"),
                            resource.get("occurrenceDateTime"), resource.get("authoredOn"))  # fmt: skip
            yield HistoryEntry(kind="treatment", text=concept_text(resource.get("code")) or "treatment",
                               when=when, detail=detail or None)  # fmt: skip
        elif rtype in ("MedicationRequest", "MedicationStatement"):
            concept = resource.get("medicationCodeableConcept")
            dosage = resource.get("dosageInstruction") or resource.get("dosage") or []
            words = [str(d["text"]) for d in dosage if isinstance(d, dict) and d.get("text")]
            status = str(resource.get("status") or "")
            detail = "; ".join([*words, *(["stopped"] if status in _ENDED else [])])
            when = _date_of(resource.get("authoredOn"), resource.get("dateAsserted"),
                            (resource.get("effectivePeriod") or {}).get("start"))  # fmt: skip
            yield HistoryEntry(kind="medication", text=concept_text(concept) or "medication", when=when,
                               detail=detail or None)  # fmt: skip


def _titles(entries: Sequence[tuple[str, JSON]]) -> Iterator[NoteTitle]:
    """A heading and date for each resource whose text the determination reads."""
    for ref, resource in entries:
        rtype = resource.get("resourceType")
        if rtype == "DocumentReference":
            period = (resource.get("context") or {}).get("period") or {}
            title = resource.get("description") or concept_text(resource.get("type")) or "Clinical document"
            yield NoteTitle(source=ref, title=str(title), when=_date_of(period.get("start"), resource.get("date")))
        elif rtype == "Observation":
            yield NoteTitle(source=ref, title=concept_text(resource.get("code")) or "Observation",
                            when=_date_of(resource.get("effectiveDateTime"), resource.get("issued")))  # fmt: skip
        elif rtype == "Claim":
            yield NoteTitle(source=ref, title="Supporting information sent with the request",
                            when=_date_of(resource.get("created")))  # fmt: skip
        elif rtype in REQUEST_RESOURCES or rtype == "Procedure":
            named = (
                concept_text(ordered(resource)) if rtype in REQUEST_RESOURCES else concept_text(resource.get("code"))
            )
            yield NoteTitle(source=ref, title=f"Note on {named or rtype}",
                            when=_date_of(resource.get("authoredOn"), resource.get("performedDateTime")))  # fmt: skip


def _sex(patient: JSON | None) -> str | None:
    gender = (patient or {}).get("gender")
    return str(gender) if gender in ("female", "male", "other") else None


def _words(value: Any) -> str:
    if isinstance(value, list):
        return ", ".join(str(v) for v in value)
    if isinstance(value, bool):
        return "yes" if value else "no"
    return f"{value:g}" if isinstance(value, float) else str(value)


def _read(facts: RequestFacts, answer: Determination, rules: RuleSet) -> list[ReadFact]:
    """What the fired rules read beyond the findings with a quote (those are ``CaseItem.findings``)."""
    needs = {r.id: r.needs for r in rules.rules}
    names = dict.fromkeys(n for rule in answer.rules for n in needs.get(rule, []))
    values = {n: getattr(facts, n, None) for n in names if n not in facts.evidence}
    return [ReadFact(fact=n, value=_words(v)) for n, v in values.items() if v not in (None, [], "unknown")]


def case_context(
    response: JSON,
    requested: Sequence[Requested],
    data: JSON | RequestBundle,
    received: datetime,
    answers: Sequence[Determination] = (),
    rules: RuleSet | None = None,
) -> CaseContext:
    """The case a ClaimResponse answers, read from the input its determination read (as the edge read it, or
    its checked JSON); ``answers``, item by item, what the rules (``rules``) made of it: what each item lacks
    and the facts its recommendation read."""
    request = request_bundle(data, checked=True)
    resources = request.resources
    key, label, patient = _patient(request, response.get("patient"))
    rules = rules or mappings()[RULES]
    items = [
        CaseItem(
            sequence=r.sequence or n,
            service=concept_text(ordered(r.resource)) or "requested service",
            key=service_key(r.resource),
            findings=[f for f in r.facts.evidence.values() if f.status != "unknown"],
            needs=list(answer.documentation) if answer else [],
            read=_read(r.facts, answer, rules) if answer else [],
        )
        for n, (r, answer) in enumerate(zip_longest(requested, answers), start=1)
    ]
    return CaseContext(
        id=str(response["id"]),
        received=received,
        patient_key=key,
        patient=label,
        age=requested[0].facts.age if requested else None,
        sex=_sex(patient),
        injury=injury_date(resources),
        diagnoses=list(_diagnoses(resources)),
        history=list(_history(resources, {id(r.resource) for r in requested})),
        notes=list(_titles(request.entries)),
        items=items,
    )
