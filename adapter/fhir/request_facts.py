"""Facts from FHIR: a ServiceRequest alone, in a Bundle with its context, or a Da Vinci PAS Claim Bundle.

Context read: the Patient (age from the adapter's extension or the birth date), Conditions (diagnoses,
onset = injury), Procedures and completed ServiceRequests (prior treatment), MedicationRequests and
MedicationStatements (current drugs), and clinical text (ServiceRequest and Condition notes, Claim
supportingInfo strings, text/plain DocumentReference attachments, Observation strings); and the answers to the
adapter's DTR questionnaires that support a request, which state facts: named by the PAS Claim's supportingInfo
for its item (as DTR hands them to PAS) or by the request itself (an attachment's).
"""

from __future__ import annotations

import base64
import binascii
import re
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from adapter.categories import categorise
from adapter.determination.evidence import Text
from adapter.determination.facts import Context, RequestFacts
from adapter.determination.recall import FACTS
from adapter.determination.stated import Stated, with_stated
from adapter.errors import InputLimitError, MappingError
from adapter.fhir.extensions import age_of, body_sites_of, by_id
from adapter.fhir.inbound import DEFAULT_LIMITS, Limits
from adapter.fhir.navigate import Index, concept_text
from adapter.fhir.pas import REQUEST_RESOURCES, ordered, supporting
from adapter.fhir.questionnaires import QuestionnaireUnknownError, answers_in, stated_facts
from adapter.fhir.request import RequestBundle, request_bundle
from adapter.lexicon import LEXICON
from adapter.tables import mappings
from adapter.types import JSON


@dataclass
class Requested:
    """One requested service found in the input, with its facts."""

    reference: str
    resource: JSON
    facts: RequestFacts
    #: The Claim item's sequence (PAS input), which the answer echoes.
    sequence: int | None = None
    #: The clinical texts the facts were read from (evidence offsets point into these).
    texts: list[Text] = field(default_factory=list)


def _codes(concept: JSON | None) -> list[str]:
    concept = (concept or {}).get("concept", concept or {})
    return [str(c["code"]) for c in concept.get("coding", []) if c.get("code")]


def _date(value: Any) -> date | None:
    try:
        return date.fromisoformat(str(value)[:10]) if value else None
    except ValueError:
        return None


def _shape(request: JSON, item: JSON | None, site_url: str) -> tuple[Any, JSON, list[JSON]]:
    """(quantity, timing repeat, body sites) of a request, wherever its resource type keeps them."""
    dosage = (request.get("dosageInstruction") or [{}])[0]
    quantity = (
        request.get("quantityQuantity", {}).get("value")
        or request.get("dispenseRequest", {}).get("quantity", {}).get("value")
        or (item or {}).get("quantity", {}).get("value")
    )
    repeat = (request.get("occurrenceTiming") or dosage.get("timing") or {}).get("repeat", {})
    sites = request.get("bodySite") or body_sites_of(request, site_url)
    return quantity, repeat, sites


#: A line break inside a sentence (a PDF's or a form's wrap): the next line goes on in lower case.
_WRAP = re.compile(r"(?<![.:;!?])[ \t]*\n[ \t]*(?=[a-z0-9(])")


def _text(source: str, text: str) -> Text:
    """A clinical text, its wrapped lines mended (paragraphs and line-per-item lists kept)."""
    return Text(source, _WRAP.sub(" ", text))


def _notes(ref: str, resource: JSON) -> list[Text]:
    return [_text(f"{ref}.note[{n}]", str(note["text"])) for n, note in enumerate(resource.get("note", []))
            if note.get("text")]  # fmt: skip


#: Where a request names what supports it (MedicationRequest spells it out).
SUPPORT = ("supportingInfo", "supportingInformation")


def _support(request: JSON, claim: JSON | None, item: JSON | None) -> list[JSON]:
    """The references to what supports a request: the PAS Claim's ``supportingInfo`` for its item (DTR's answers
    handed to PAS, ``pas.supporting``), then the request's own (an attachment's answers, which stand over them)."""
    refs = [i.get("valueReference") for i in supporting(claim, item.get("sequence"))] if claim and item else []
    for element in SUPPORT:
        refs += request.get(element, []) if isinstance(request.get(element), list) else []
    return [r for r in refs if isinstance(r, dict) and r.get("reference")]


def _stated(references: list[JSON], index: Index) -> list[Stated]:
    """What the answers to the adapter's questionnaires among these supporting resources state
    (``questionnaires.answers_in``; an answer to a questionnaire not served here is left unread)."""
    stated: list[Stated] = []
    for reference in references:
        found = answers_in(index.find(reference))
        if found is None:
            continue
        try:
            stated += stated_facts(found, str(reference["reference"]))
        except QuestionnaireUnknownError:
            continue
    return stated


def _clinical_texts(entries: list[tuple[str, JSON]], skip: set[int]) -> list[Text]:
    """Every clinical text in the input, with where it came from (the requests' own notes aside)."""
    texts: list[Text] = []
    letter_type = mappings().tables.fhir.document_type_text
    for ref, resource in entries:
        if id(resource) in skip:
            continue
        rtype = resource.get("resourceType")
        texts += _notes(ref, resource)
        if rtype == "Claim":
            infos = enumerate(resource.get("supportingInfo", []))
            texts += [
                _text(f"{ref}.supportingInfo[{n}]", str(i["valueString"])) for n, i in infos if i.get("valueString")
            ]
        elif rtype == "Observation" and resource.get("valueString"):
            texts.append(_text(ref, str(resource["valueString"])))
        elif rtype == "DocumentReference" and concept_text(resource.get("type")) != letter_type:
            # clinical notes only: an IMR letter holds decisions, which a determination must never read
            for content in resource.get("content", []):
                attachment = content.get("attachment", {})
                if str(attachment.get("contentType", "")).startswith("text/plain") and attachment.get("data"):
                    try:
                        texts.append(_text(ref, base64.b64decode(attachment["data"]).decode("utf-8", errors="replace")))
                    except (binascii.Error, ValueError):
                        continue
    return texts


def _medication_list(resources: list[JSON]) -> list[str] | None:
    """The ingredients of the medications taken now (MedicationRequest and MedicationStatement, read as
    structured data); None when the input holds no medication resources."""
    lexicon = mappings()[LEXICON]
    listed = [r for r in resources if r.get("resourceType") in ("MedicationRequest", "MedicationStatement")]
    if not listed:
        return None
    by_code = {d.rxnorm: d.ingredient for d in lexicon.drug_names if d.rxnorm}
    taken: list[str] = []
    for resource in listed:
        if resource.get("status") in ("stopped", "cancelled", "entered-in-error", "completed", "not-taken"):
            continue
        concept = resource.get("medicationCodeableConcept")
        coded = [by_code[c] for c in _codes(concept) if c in by_code]
        taken += coded or [d.ingredient for d in lexicon.drugs_in(concept_text(concept))]
    return list(dict.fromkeys(taken))


@dataclass(frozen=True)
class _Given:
    """Care given before (a completed Procedure or ServiceRequest): its therapy, the region it names, how many
    sessions."""

    therapy: str
    region: str | None
    sessions: int


def _history(resources: list[JSON], exclude: set[int]) -> list[_Given]:
    """The care given before, of the therapies the lexicon knows, each resource read once for all requests."""
    lexicon = mappings()[LEXICON]
    session_url = mappings().tables.fhir.extensions.session_count
    given = []
    for resource in resources:
        if id(resource) in exclude:
            continue
        rtype = resource.get("resourceType")
        if rtype not in ("Procedure", "ServiceRequest") or resource.get("status") != "completed":
            continue
        label = concept_text(resource.get("code"))
        therapy = lexicon.therapy_for(categorise(label, _codes(resource.get("code"))))
        if therapy is None:
            continue
        sites = " ".join(concept_text(site) for site in resource.get("bodySite", []))
        sessions = by_id(resource, session_url, "valueInteger")
        if sessions is None and rtype == "ServiceRequest":
            sessions = resource.get("quantityQuantity", {}).get("value")
        count = _count(sessions, f"{rtype}.quantity") or 1
        given.append(_Given(therapy.name, lexicon.region(f"{label} {sites}"), count))
    return given


def _prior(history: list[_Given], region: str | None) -> dict[str, int]:
    """Prior sessions per therapy, counted from the care given before for the same body region (or none
    named)."""
    counts: dict[str, int] = {}
    for given in history:
        if not (region and given.region and given.region != region):
            counts[given.therapy] = counts.get(given.therapy, 0) + given.sessions
    return counts


def _count(value: Any, location: str) -> int | None:
    """A count a request states (a quantity, a frequency, weeks, sessions), whole: any number FHIR's integer holds
    (a fraction cut off); ``MappingError`` for anything else (a quantity of 1e30 is no request)."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value < 2**31:
        raise MappingError(f"{str(value)[:40]} is not a count a request can hold", location=location)
    return int(value)


def patient_age(patient: JSON | None, as_of: date | None) -> int | None:
    """A Patient's age on ``as_of``: the age the letter gave (the adapter's age extension), else from a full
    birth date; None when neither says."""
    if not patient:
        return None
    if (age := age_of(patient, mappings().tables.fhir.extensions.patient_age)) is not None:
        return age
    born = _date(patient.get("birthDate"))
    if born and as_of and len(str(patient.get("birthDate"))) == 10:
        return as_of.year - born.year - ((as_of.month, as_of.day) < (born.month, born.day))
    return None


def injury_date(resources: list[JSON]) -> date | None:
    """The date of injury: the earliest onset of a Condition or accident date of a Claim."""
    dates = [_date(r.get("onsetDateTime")) for r in resources if r.get("resourceType") == "Condition"]
    dates += [_date((r.get("accident") or {}).get("date")) for r in resources if r.get("resourceType") == "Claim"]
    return min((d for d in dates if d), default=None)


def requested_services(
    data: JSON | RequestBundle, *, today: date | None = None, checked: bool = False, limits: Limits = DEFAULT_LIMITS
) -> list[Requested]:
    """Every ServiceRequest the input asks about (for a PAS Bundle: those the Claim's items point at). The
    input is the RequestBundle the edge made, or JSON checked at the edge here (``adapter.fhir.inbound``)
    unless the caller did (``checked``)."""
    bundle = request_bundle(data, checked=checked, limits=limits)
    entries, shape, resources, index = bundle.entries, bundle.shape, bundle.resources, bundle.index
    items: dict[int, JSON] = {}
    claim = resources[0] if shape == "pas" else None
    if claim is not None:
        requests = []
        for item in claim.get("item", []):
            refs = [e.get("valueReference", {}).get("reference") for e in item.get("extension", [])
                    if str(e.get("url", "")).endswith("requestedService")]  # fmt: skip
            target = index.find({"reference": refs[0]}) if refs and refs[0] else None
            if target is None or target.get("resourceType") not in REQUEST_RESOURCES:
                # a Claim item without a request resource: the item itself is the request
                target = {
                    "resourceType": "ServiceRequest",
                    "status": "active",
                    "intent": "order",
                    "code": item.get("productOrService", {}),
                    "quantityQuantity": item.get("quantity", {}),
                }
            items[id(target)] = item
            requests.append((refs[0] if refs and refs[0] else f"Claim/item/{item.get('sequence')}", target))
    elif shape == "service-request" or (
        entries and entries[0][1].get("resourceType") in ("MedicationRequest", "DeviceRequest")
    ):
        # a request alone, or first in a Bundle of its context
        requests = [entries[0]] if entries[0][1].get("status") != "completed" else []
    else:  # ServiceRequests with their context (where MedicationRequests are the drugs taken)
        requests = [
            (ref, r)
            for ref, r in entries
            if r.get("resourceType") == "ServiceRequest" and r.get("status") != "completed"
        ]
    if not requests:
        raise MappingError(
            "no request (ServiceRequest, MedicationRequest, DeviceRequest) to determine", location="ServiceRequest"
        )

    patients = [r for r in resources if r.get("resourceType") == "Patient"]
    conditions = [r for r in resources if r.get("resourceType") == "Condition"]
    claims = [r for r in resources if r.get("resourceType") == "Claim"]
    injury = injury_date(resources)
    exclude = {id(r) for _, r in requests}
    shared = _clinical_texts(entries, exclude)
    own = {ref: _notes(ref, r) for ref, r in requests}
    size = sum(len(t.text) for texts in (shared, *own.values()) for t in texts)
    if size > limits.max_clinical_text:  # the determination's work grows with it: bound it
        raise InputLimitError(
            f"the clinical text adds up to {size} characters, more than {limits.max_clinical_text}; "
            "send the notes that bear on this request"
        )
    medications = _medication_list([r for r in resources if id(r) not in exclude])
    diagnoses = [t for t in (concept_text(c.get("code")) for c in conditions) if t]
    # a ServiceRequest on its own says nothing about history: prior treatment stays unknown
    history = _history(resources, exclude) if shape != "service-request" else None

    out = []
    site_url = mappings().tables.fhir.extensions.body_site
    labels = {ref: concept_text(ordered(request)) for ref, request in requests}
    for ref, request in requests:
        label = labels[ref]
        if not label:
            raise MappingError(f"the {request.get('resourceType')} has no code text or display", location=f"{ref}.code")
        item = items.get(id(request))
        quantity, repeat, site_list = _shape(request, item, site_url)
        weekly = repeat.get("periodUnit") == "wk" and repeat.get("period", 1) == 1
        weeks = repeat.get("boundsDuration", {}).get("value")
        as_of = _date(request.get("authoredOn")) or (_date(claims[0].get("created")) if claims else None) or today
        sites = " ".join(concept_text(site) for site in site_list)
        context = Context(
            texts=[*own[ref], *shared],
            diagnoses=diagnoses,
            prior=_prior(history, mappings()[LEXICON].region(f"{label} {sites}")) if history is not None else None,
            medication_list=medications,
            injury=injury,
            as_of=as_of,
            age=patient_age(patients[0] if patients else None, as_of),
            alongside=[other for key, other in labels.items() if key != ref and other],
        )
        read = FACTS.facts(
            label,
            context,
            codes=_codes(ordered(request)),
            quantity=_count(quantity, f"{ref}.quantity"),
            frequency=_count(repeat.get("frequency"), f"{ref}.occurrenceTiming.repeat.frequency") if weekly else None,
            weeks=_count(weeks, f"{ref}.occurrenceTiming.repeat.boundsDuration.value"),
        )
        facts = with_stated(read, _stated(_support(request, claim, item), index))
        sequence = item.get("sequence") if item else None
        out.append(Requested(ref, request, facts, sequence=sequence if isinstance(sequence, int) else None,
                             texts=context.texts))  # fmt: skip
    return out
