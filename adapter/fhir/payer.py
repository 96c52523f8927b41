"""The payer's copy of an answer whose request came from the EHR (the sync worker's): a transaction Bundle that
writes, beside the ClaimResponse, the resources it names (the patient, the request, the requester, as far as the
request's context holds them), so that every reference the payer server is sent resolves there.

Each resource copied carries a tag naming the EHR resource it copies (``Type/id``, the system of the adapter's
logical references) and is created on the payer only when no copy bears that tag (``ifNoneExist``), so a patient
with many requests has one copy there, and a transaction sent again creates nothing twice. Inside the Bundle the
copies are named by ``urn:uuid`` full URLs made from that EHR reference (the same for every answer about that
resource, so the answers of one transaction share one entry); the payer server replaces them with its own ids.
A reference the context cannot back (a Practitioner the EHR did not send) stays logical: an identifier, which
names without pointing.
"""

from __future__ import annotations

import uuid
from copy import deepcopy
from typing import Any

from adapter.fhir.navigate import references
from adapter.fhir.response import FOREIGN_REFERENCE_SYSTEM, logical
from adapter.types import JSON

#: The elements of a resource copied to the payer that are the EHR's own and mean nothing there.
_LOCAL = ("id", "meta", "text", "contained")


def held_url(reference: str) -> str:
    """The ``urn:uuid`` full URL of the payer's copy of the EHR resource ``reference`` (``Type/id``)."""
    return f"urn:uuid:{uuid.uuid5(uuid.NAMESPACE_URL, f'{FOREIGN_REFERENCE_SYSTEM}:{reference}')}"


def _ehr_reference(reference: JSON) -> str | None:
    """The EHR's ``Type/id`` a reference names: a relative reference, or a logical one of the adapter's system."""
    value = reference.get("reference")
    if isinstance(value, str) and "/" in value and ":" not in value:
        return value
    identifier = reference.get("identifier") or {}
    if identifier.get("system") == FOREIGN_REFERENCE_SYSTEM and isinstance(identifier.get("value"), str):
        return str(identifier["value"])
    return None


def _pointed(node: Any, copies: dict[str, JSON]) -> None:
    """Each reference under ``node`` to a resource copied points at the copy's full URL; any other is made
    logical (it would not resolve on the payer)."""
    for reference in references(node, logical=True):
        ehr = _ehr_reference(reference)
        if ehr is not None and ehr in copies:
            kept = {k: v for k, v in reference.items() if k not in ("reference", "identifier")}
            target = {**kept, "reference": held_url(ehr)}
        else:
            target = dict(logical(reference) or {})  # a copy: the reference is cleared below
        reference.clear()
        reference.update(target)


def _copied(resource: JSON, reference: str) -> JSON:
    copy = {k: deepcopy(v) for k, v in resource.items() if k not in _LOCAL}
    copy["meta"] = {"tag": [{"system": FOREIGN_REFERENCE_SYSTEM, "code": reference}]}
    return copy


def payer_transaction(answer: JSON, claim_response_id: str, context: JSON, *, identifier_system: str) -> JSON:
    """The payer's copy ``answer`` of a ClaimResponse (references logical) as a transaction with the resources
    it names that the request's ``context`` Bundle holds: those first, each created once, then the ClaimResponse,
    created once (on its ``identifier_system`` identifier, ``claim_response_id``)."""
    held = {
        str(e.get("fullUrl")): e["resource"] for e in context.get("entry", []) if isinstance(e.get("resource"), dict)
    }
    named = [ref for r in references(answer, logical=True) if (ref := _ehr_reference(r)) in held]
    wanted = list(dict.fromkeys(named))
    # what the copies name in turn (the request's subject and requester) comes along when the context holds it
    for reference in list(wanted):
        wanted += [
            ref
            for r in references(held[reference], logical=True)
            if (ref := _ehr_reference(r)) in held and ref not in wanted
        ]
    copies = {reference: _copied(held[reference], reference) for reference in wanted}
    for copy in copies.values():
        _pointed(copy, copies)
    response = deepcopy(answer)
    _pointed(response, copies)
    entries = [
        {"fullUrl": held_url(reference), "resource": copy, "request": {
            "method": "POST", "url": copy["resourceType"],
            "ifNoneExist": f"_tag={FOREIGN_REFERENCE_SYSTEM}|{reference}"}}
        for reference, copy in copies.items()
    ]  # fmt: skip
    entries.append({"fullUrl": f"urn:uuid:{uuid.uuid4()}", "resource": response, "request": {
        "method": "POST", "url": "ClaimResponse",
        "ifNoneExist": f"identifier={identifier_system}|{claim_response_id}"}})  # fmt: skip
    return {"resourceType": "Bundle", "type": "transaction", "entry": entries}


def answer_of(payload: JSON) -> JSON:
    """The ClaimResponse an outbox payload carries, on its own: the payload itself, or the last entry of its
    transaction with the references to the copies beside it made logical again (for a payer that takes no
    transactions, and to read its version)."""
    if payload.get("resourceType") != "Bundle":
        return payload
    copies = {str(e["fullUrl"]): str(e["resource"]["meta"]["tag"][0]["code"]) for e in payload["entry"][:-1]}
    answer = deepcopy(payload["entry"][-1]["resource"])
    for reference in references(answer):
        if reference["reference"] in copies:
            ehr = copies[reference.pop("reference")]
            reference["identifier"] = {"system": FOREIGN_REFERENCE_SYSTEM, "value": ehr}
    return dict(answer)


def keep_references(answer: JSON, served: JSON) -> JSON:
    """A later version ``answer`` of a ClaimResponse naming what the payer's copy ``served`` of an earlier one
    names (the copies written with it) where the new version's references are logical."""
    updated = deepcopy(answer)
    for party in ("patient", "request", "insurer", "requestor"):
        if _is_logical(updated.get(party)) and isinstance((served.get(party) or {}).get("reference"), str):
            updated[party] = served[party]
    earlier = {i.get("itemSequence"): i for i in served.get("item", [])}
    for item in updated.get("item", []):
        theirs = {e.get("url"): e for e in earlier.get(item.get("itemSequence"), {}).get("extension", [])}
        for extension in item.get("extension", []):
            before = theirs.get(extension.get("url"), {}).get("valueReference") or {}
            if _is_logical(extension.get("valueReference")) and isinstance(before.get("reference"), str):
                extension["valueReference"] = before
    return updated


def _is_logical(reference: Any) -> bool:
    return isinstance(reference, dict) and (reference.get("identifier") or {}).get("system") == FOREIGN_REFERENCE_SYSTEM
