"""Facts from FHIR: a ServiceRequest alone, in a Bundle with its context, or a Da Vinci PAS Claim Bundle.

Context read: the Patient (age from the adapter's extension or the birth date), Conditions (diagnoses,
onset = injury), Procedures and completed ServiceRequests (prior treatment), MedicationRequests and
MedicationStatements (current drugs), and clinical text (ServiceRequest and Condition notes, Claim
supportingInfo strings, text/plain DocumentReference attachments, Observation strings).
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass
from datetime import date
from typing import Any

from adapter.determination.facts import RequestFacts, build_facts, categorise
from adapter.errors import InputLimitError, MappingError
from adapter.fhir.inbound import DEFAULT_LIMITS, Limits, check_inbound
from adapter.fhir.r5 import is_r5
from adapter.tables import load_tables

JSON = dict[str, Any]
AGE_EXTENSION_SUFFIX = "age-at-decision"
SESSION_COUNT_SUFFIX = "session-count"
_THERAPY_NAMES = {
    "physical-therapy": "physical therapy", "chiropractic": "chiropractic", "acupuncture": "acupuncture",
    "occupational-therapy": "occupational therapy",
}  # fmt: skip


@dataclass
class Requested:
    """One requested service found in the input, with its facts."""

    reference: str
    resource: JSON
    facts: RequestFacts


def _text(concept: JSON | None) -> str:
    if not concept:
        return ""
    concept = concept.get("concept", concept)  # R5 CodeableReference
    return str(
        concept.get("text") or next((c.get("display") for c in concept.get("coding", []) if c.get("display")), "")
    )


def _codes(concept: JSON | None) -> list[str]:
    concept = (concept or {}).get("concept", concept or {})
    return [str(c["code"]) for c in concept.get("coding", []) if c.get("code")]


def _date(value: Any) -> date | None:
    try:
        return date.fromisoformat(str(value)[:10]) if value else None
    except ValueError:
        return None


def _resources(data: JSON) -> tuple[list[tuple[str, JSON]], str]:
    """(fullUrl or Type/id, resource) for every resource; and the input's shape."""
    if data.get("resourceType") == "Bundle":
        entries = [(e.get("fullUrl") or f"{e['resource']['resourceType']}/{e['resource'].get('id', n)}", e["resource"])
                   for n, e in enumerate(data.get("entry", [])) if isinstance(e.get("resource"), dict)]  # fmt: skip
        first = entries[0][1].get("resourceType") if entries else None
        return entries, "pas" if first == "Claim" else "bundle"
    if data.get("resourceType") == "ServiceRequest":
        return [(f"ServiceRequest/{data.get('id', 'request')}", data)], "service-request"
    raise MappingError(
        f"expected a ServiceRequest or a Bundle, not {data.get('resourceType')!r}", location="resourceType"
    )


def _notes(resource: JSON) -> list[str]:
    return [str(n["text"]) for n in resource.get("note", []) if n.get("text")]


def _clinical_text(resources: list[JSON]) -> tuple[str, list[str]]:
    texts: list[str] = []
    drugs: list[str] = []
    for resource in resources:
        rtype = resource.get("resourceType")
        texts += _notes(resource)
        if rtype == "Claim":
            texts += [str(s["valueString"]) for s in resource.get("supportingInfo", []) if s.get("valueString")]
        elif rtype == "Observation" and resource.get("valueString"):
            texts.append(str(resource["valueString"]))
        elif rtype == "DocumentReference" and _text(resource.get("type")) != load_tables().fhir.document_type_text:
            # clinical notes only: an IMR letter holds decisions, which a determination must never read
            for content in resource.get("content", []):
                attachment = content.get("attachment", {})
                if str(attachment.get("contentType", "")).startswith("text/plain") and attachment.get("data"):
                    try:
                        texts.append(base64.b64decode(attachment["data"]).decode("utf-8", errors="replace"))
                    except (binascii.Error, ValueError):
                        continue
        elif rtype in ("MedicationRequest", "MedicationStatement"):
            name = _text(resource.get("medicationCodeableConcept"))
            if name and resource.get("status") not in ("stopped", "cancelled", "entered-in-error", "completed"):
                drugs.append(name)
    if drugs:
        texts.append("Current medications include " + ", ".join(drugs) + ".")
    return " ".join(texts), drugs


def _prior(resources: list[JSON], exclude: set[int]) -> tuple[dict[str, int] | None, set[str] | None]:
    """Prior sessions per therapy (counted from Procedures and completed ServiceRequests) and therapies named."""
    counts: dict[str, int] = {}
    named: set[str] = set()
    for resource in resources:
        if id(resource) in exclude:
            continue
        rtype = resource.get("resourceType")
        done = (rtype == "Procedure" and resource.get("status") == "completed") or (
            rtype == "ServiceRequest" and resource.get("status") == "completed"
        )
        if not done:
            continue
        therapy = _THERAPY_NAMES.get(categorise(_text(resource.get("code")), _codes(resource.get("code"))))
        if therapy is None:
            continue
        named.add(therapy)
        sessions = next(
            (
                e.get("valueInteger")
                for e in resource.get("extension", [])
                if str(e.get("url", "")).endswith(SESSION_COUNT_SUFFIX)
            ),
            None,
        )
        if sessions is None and rtype == "ServiceRequest":
            sessions = resource.get("quantityQuantity", {}).get("value")
        counts[therapy] = counts.get(therapy, 0) + int(sessions or 1)
    return counts, named


def _age(patient: JSON | None, as_of: date | None) -> int | None:
    if not patient:
        return None
    for extension in patient.get("extension", []):
        age = extension.get("valueAge", {}).get("value")
        if str(extension.get("url", "")).endswith(AGE_EXTENSION_SUFFIX) and age is not None:
            return int(age)
    born = _date(patient.get("birthDate"))
    if born and as_of and len(str(patient.get("birthDate"))) == 10:
        return as_of.year - born.year - ((as_of.month, as_of.day) < (born.month, born.day))
    return None


def requested_services(
    data: JSON, *, today: date | None = None, checked: bool = False, limits: Limits = DEFAULT_LIMITS
) -> list[Requested]:
    """Every ServiceRequest the input asks about (for a PAS Bundle: those the Claim's items point at).
    The input is checked at the edge first (``adapter.fhir.inbound``) unless the caller did (``checked``)."""
    if not checked:
        check_inbound(data, version="R5" if is_r5(data) else "R4", limits=limits)
    entries, shape = _resources(data)
    resources = [r for _, r in entries]
    by_ref = {ref: r for ref, r in entries}
    by_ref.update({f"{r['resourceType']}/{r['id']}": r for r in resources if r.get("id")})
    if shape == "pas":
        claim = resources[0]
        requests = []
        for item in claim.get("item", []):
            refs = [e.get("valueReference", {}).get("reference") for e in item.get("extension", [])
                    if str(e.get("url", "")).endswith("requestedService")]  # fmt: skip
            target = by_ref.get(refs[0]) if refs and refs[0] else None
            if target is None:  # a Claim item without a ServiceRequest: the item itself is the request
                target = {
                    "resourceType": "ServiceRequest",
                    "status": "active",
                    "intent": "order",
                    "code": item.get("productOrService", {}),
                    "quantityQuantity": item.get("quantity", {}),
                }
            requests.append((refs[0] if refs and refs[0] else f"Claim/item/{item.get('sequence')}", target))
    else:
        requests = [
            (ref, r)
            for ref, r in entries
            if r.get("resourceType") == "ServiceRequest" and r.get("status") != "completed"
        ]
    if not requests:
        raise MappingError("no ServiceRequest to determine", location="ServiceRequest")

    patients = [r for r in resources if r.get("resourceType") == "Patient"]
    conditions = [r for r in resources if r.get("resourceType") == "Condition"]
    claims = [r for r in resources if r.get("resourceType") == "Claim"]
    injury = min(
        (d for d in [*(_date(c.get("onsetDateTime")) for c in conditions),
                     *(_date(c.get("accident", {}).get("date")) for c in claims)] if d),
        default=None,
    )  # fmt: skip
    clinical, _ = _clinical_text(resources)
    if len(clinical) > limits.max_clinical_text:  # the determination's work grows with it: bound it
        raise InputLimitError(
            f"the clinical text adds up to {len(clinical)} characters, more than {limits.max_clinical_text}; "
            "send the notes that bear on this request"
        )
    exclude = {id(r) for _, r in requests}
    # a ServiceRequest on its own says nothing about history: prior treatment stays missing, not "none"
    prior, named = _prior(resources, exclude) if shape != "service-request" else (None, None)
    diagnoses = [t for t in (_text(c.get("code")) for c in conditions) if t]

    out = []
    for ref, request in requests:
        if not _text(request.get("code")):
            raise MappingError("the ServiceRequest has no code text or display", location=f"{ref}.code")
        repeat = request.get("occurrenceTiming", {}).get("repeat", {})
        weekly = repeat.get("periodUnit") == "wk" and repeat.get("period", 1) == 1
        quantity = request.get("quantityQuantity", {}).get("value")
        weeks = repeat.get("boundsDuration", {}).get("value")
        as_of = _date(request.get("authoredOn")) or (_date(claims[0].get("created")) if claims else None) or today
        facts = build_facts(
            _text(request.get("code")),
            codes=_codes(request.get("code")),
            quantity=int(quantity) if quantity is not None else None,
            frequency=repeat.get("frequency") if weekly else None,
            weeks=int(weeks) if weeks is not None else None,
            clinical=" ".join([*_notes(request), clinical]).strip() or None,
            diagnoses=diagnoses,
            prior=prior,
            prior_mentioned=named,
            injury=injury,
            as_of=as_of,
            age=_age(patients[0] if patients else None, as_of),
        )
        out.append(Requested(ref, request, facts))
    return out
