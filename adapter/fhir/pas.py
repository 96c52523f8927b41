"""Da Vinci PAS 2.2.1's vocabulary in one place: the profiles, extensions and X12 code lists
(``mappings/pas.yaml``), the code systems of the value sets PAS binds, and the shapes the adapter writes (a PAS
Bundle, a reviewAction). The review actions themselves are ``adapter.actions``; the conformance check is
``adapter.fhir.conformance``.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict

from adapter.actions import ReviewAction
from adapter.fhir.navigate import closure, concept_text, extensions
from adapter.tables import TableFile, mappings
from adapter.types import JSON

# --- the table -------------------------------------------------------------------------------------------


class _Table(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Code(_Table):
    code: str
    display: str


class Profiles(_Table):
    request_bundle: str
    response_bundle: str
    inquiry_response_bundle: str
    claim: str
    claim_response: str
    inquiry_response: str
    beneficiary: str
    coverage: str
    insurer: str
    requestor: str
    service_request: str
    medication_request: str
    device_request: str
    subscription: str
    communication_request: str


class Extensions(_Table):
    review_action: str
    review_action_code: str
    claim_response_reviewer: str
    requested_service: str
    request_type: str
    certification_type: str
    item_preauth_period: str
    document_information: str
    info_changed: str
    info_cancelled: str
    administration_reference: str
    service_line_number: str
    pa_line_number: str
    transmission_identifiers: str


class Canonicals(_Table):
    claim_submit: str
    claim_inquiry: str
    subscription_topic: str


class CodeSystems(_Table):
    review_action: str
    request_type: str
    certification_type: str
    service_type: str
    entity_type: str
    relationship: str
    place_of_service: str
    identifier_type: str
    subscriber_relationship: str
    adjudication: str
    report_type: str
    temp_codes: str
    quantity_qualifier: str


class ValueSets(_Table):
    """The code systems of the value sets PAS binds as required (a binding checked by code system)."""

    requested_service: frozenset[str]
    service_modifier: frozenset[str]
    diagnosis: frozenset[str]
    location: frozenset[str]


RequestResource = Literal["ServiceRequest", "MedicationRequest", "DeviceRequest"]
REQUEST_RESOURCES: tuple[str, ...] = ("ServiceRequest", "MedicationRequest", "DeviceRequest")


class Carrier(_Table):
    """How PAS carries one category of request."""

    resource: RequestResource
    service_type: Code
    place: str


class PASTable(_Table):
    profiles: Profiles
    extensions: Extensions
    canonicals: Canonicals
    code_systems: CodeSystems
    value_sets: ValueSets
    request_type: Code
    certification_type: Code
    insurer_type: Code
    requestor_type: Code
    relationship: Code
    supporting_report_type: Code
    authorization_days: int
    default: Carrier
    categories: dict[str, Carrier]

    def carrier(self, category: str) -> Carrier:
        return self.categories.get(category, self.default)

    def coding(self, system: str, code: Code) -> JSON:
        return {"system": getattr(self.code_systems, system), "code": code.code, "display": code.display}


PAS = TableFile("pas.yaml", PASTable)


def ordered(request: JSON) -> JSON | None:
    """What a request orders: ServiceRequest.code, MedicationRequest.medicationCodeableConcept or
    DeviceRequest.codeCodeableConcept."""
    concept = request.get("code") or request.get("medicationCodeableConcept") or request.get("codeCodeableConcept")
    return concept if isinstance(concept, dict) else None


def ordered_text(request: JSON) -> str:
    """The words of what a request orders (its text, else the first display)."""
    return concept_text(ordered(request))


def support_items(claim: JSON) -> dict[int, set[int]]:
    """Which items of a Claim each ``supportingInfo`` supports, by its sequence: those that name it in
    ``item.informationSequence``. One no item names is absent: it supports the whole request."""
    named: dict[int, set[int]] = {}
    for item in claim.get("item", []) if isinstance(claim.get("item"), list) else []:
        sequences = item.get("informationSequence") if isinstance(item, dict) else None
        for info in sequences if isinstance(sequences, list) else []:
            if isinstance(info, int) and isinstance(item.get("sequence"), int):
                named.setdefault(info, set()).add(item["sequence"])
    return named


def supporting(claim: JSON, sequence: int | None) -> list[JSON]:
    """The Claim's ``supportingInfo`` that supports its item ``sequence`` (``support_items``), in its order."""
    named = support_items(claim)
    infos = claim.get("supportingInfo")
    out = []
    for info in infos if isinstance(infos, list) else []:
        key = info.get("sequence") if isinstance(info, dict) else None
        if isinstance(key, int) and sequence in named.get(key, {sequence}):
            out.append(info)
    return out


def collection(profile: str, identifier: JSON, timestamp: str, start: list[JSON], pool: list[JSON]) -> JSON:
    """A PAS Bundle: a collection declaring ``profile``, with its identifier and timestamp, holding the entries
    ``start`` and every entry of ``pool`` they refer to, directly or not (so each reference resolves inside)."""
    return {
        "resourceType": "Bundle",
        "meta": {"profile": [profile]},
        "identifier": identifier,
        "type": "collection",
        "timestamp": timestamp,
        "entry": [{"fullUrl": e["fullUrl"], "resource": e["resource"]} for e in closure(pool, start)],
    }


def review_action_code(adjudications: list[JSON]) -> str | None:
    """The PAS review action code (A1, A3, ...) carried by an item's adjudications, if any."""
    ext = mappings()[PAS].extensions
    for adjudication in adjudications:
        for action in adjudication.get("extension", []):
            if action.get("url") != ext.review_action:
                continue
            for sub in action.get("extension", []):
                codings = sub.get("valueCodeableConcept", {}).get("coding", [])
                if sub.get("url") in (ext.review_action_code, "code") and codings:
                    return str(codings[0].get("code"))
    return None


def review_number(item: JSON) -> str | None:
    """The number an item's reviewAction carries: a certified item's authorization number, a pended item's pend
    reference number."""
    url = mappings()[PAS].extensions.review_action
    for adjudication in item.get("adjudication", []):
        for action in extensions(adjudication, url):
            for number in extensions(action, "number"):
                if number.get("valueString"):
                    return str(number["valueString"])
    return None


def review_action(code: str, *, number: str | None = None) -> JSON:
    """An adjudication carrying a PAS reviewAction: the X12 306 code and, for certified care, its number."""
    pas = mappings()[PAS]
    coding = {"system": pas.code_systems.review_action, "code": code, "display": ReviewAction(code).display}
    parts: list[JSON] = [{"url": pas.extensions.review_action_code, "valueCodeableConcept": {"coding": [coding]}}]
    if number is not None:
        parts.append({"url": "number", "valueString": number})
    return {
        "extension": [{"url": pas.extensions.review_action, "extension": parts}],
        "category": {"coding": [{"system": pas.code_systems.adjudication, "code": "submitted"}]},
    }


# --- required codes -----------------------------------------------------------------------------------
# The codes of the value sets PAS binds as required (Terminology.fsh) whose systems are the tables'; the value
# sets bound by code system are pas.yaml's value_sets. Checked by adapter.fhir.conformance.

#: X12278DiagnosisType (PASTempCodes).
DIAGNOSIS_TYPES = frozenset({"admitting", "principal", "patientreasonforvisit"})
#: ClaimTypes (fhir.yaml's claim_type system).
CLAIM_TYPES = frozenset({"institutional", "professional"})
#: ClaimResponseOutcome.
OUTCOMES = frozenset({"complete", "error", "partial"})
