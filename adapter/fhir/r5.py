"""R4 <-> R5 for the resources the adapter writes.

The adapter builds R4 (4.0.1) and, on request, rewrites the few elements R5 renamed or retyped: the
ClaimResponse gains ``decision`` and per-item ``reviewOutcome``; ServiceRequest.code becomes a
CodeableReference and reasonReference becomes ``reason``; Coverage.payor becomes ``insurer`` with the
new required ``kind``; Procedure.performed[x] becomes ``occurrence[x]``; DocumentReference points at the
Claim through ``basedOn``; processNote.type becomes a CodeableConcept; Attachment.size becomes an
integer64 (a JSON string). The way back undoes exactly that, so the reader only ever reads R4.
"""

from __future__ import annotations

import copy

from adapter.actions import ReviewAction
from adapter.fhir.pas import review_action_code
from adapter.tables import mappings
from adapter.types import JSON

#: What a request orders: (R4 element, R5 CodeableReference element) per resource type.
_ORDERED = {
    "ServiceRequest": ("code", "code"),
    "MedicationRequest": ("medicationCodeableConcept", "medication"),
    "DeviceRequest": ("codeCodeableConcept", "code"),
}


def is_r5(bundle: JSON) -> bool:
    """Whether a Bundle holds the R5 shape (as this module writes it, or as an R5 server returns it)."""
    if not isinstance(bundle, dict):
        return False
    entries = bundle.get("entry") if bundle.get("resourceType") == "Bundle" else [{"resource": bundle}]
    for entry in entries if isinstance(entries, list) else []:
        resource = entry.get("resource") if isinstance(entry, dict) else None
        if not isinstance(resource, dict):
            continue
        rtype = resource.get("resourceType")
        if not isinstance(rtype, str):
            continue
        if rtype in _ORDERED and isinstance(resource.get(_ORDERED[rtype][1]), dict):
            if "concept" in resource[_ORDERED[rtype][1]]:
                return True
        if rtype == "Coverage" and "kind" in resource:
            return True
        if rtype == "ClaimResponse" and "decision" in resource:
            return True
    return False


def _outcome(code: str | None) -> JSON:
    """The R5 claim decision for an X12 review action (pending when there is none)."""
    action = ReviewAction(code) if code in set(ReviewAction) else ReviewAction.PENDED
    return {"coding": [{"system": mappings().tables.system_uris["claim_decision_r5"], "code": action.decision_r5}]}


def r4_to_r5(bundle: JSON) -> JSON:
    """A copy of an adapter-built R4 Bundle in R5 shape."""
    bundle = copy.deepcopy(bundle)
    claim_ref = next((e["fullUrl"] for e in bundle["entry"] if e["resource"]["resourceType"] == "Claim"), None)
    for entry in bundle["entry"]:
        resource = entry["resource"]
        rtype = resource["resourceType"]
        if rtype in _ORDERED:
            resource[_ORDERED[rtype][1]] = {"concept": resource.pop(_ORDERED[rtype][0])}
            if "reasonReference" in resource:
                resource["reason"] = [{"reference": r} for r in resource.pop("reasonReference")]
        elif rtype == "Procedure" and "_performedDateTime" in resource:
            resource["_occurrenceDateTime"] = resource.pop("_performedDateTime")  # R5 renamed performed[x]
        elif rtype == "Coverage":
            resource["kind"] = "insurance"
            resource["insurer"] = resource.pop("payor")[0]
        elif rtype == "DocumentReference":
            resource.pop("context", None)
            if claim_ref:
                resource["basedOn"] = [{"reference": claim_ref}]
            for content in resource["content"]:
                content["attachment"]["size"] = str(content["attachment"]["size"])
        elif rtype == "ClaimResponse":
            codes = [review_action_code(item.get("adjudication", [])) for item in resource.get("item", [])]
            overall = codes[0] if codes and len(set(codes)) == 1 else ReviewAction.PARTIAL
            resource["decision"] = _outcome(overall)
            for item, code in zip(resource.get("item", []), codes, strict=True):
                item["reviewOutcome"] = {"decision": _outcome(code)}
            for note in resource.get("processNote", []):
                system = mappings().tables.system_uris["note_type"]
                note["type"] = {"coding": [{"system": system, "code": note["type"]}]}
    return bundle


def r5_to_r4(bundle: JSON) -> JSON:
    """A copy of an R5 Bundle (as ``r4_to_r5`` writes it) in the R4 shape the reader expects."""
    bundle = copy.deepcopy(bundle)
    response_ref = next(
        (
            e.get("fullUrl")
            for e in bundle.get("entry", [])
            if e.get("resource", {}).get("resourceType") == "ClaimResponse"
        ),
        None,
    )
    for entry in bundle.get("entry", []):
        resource = entry.get("resource", {})
        rtype = resource.get("resourceType")
        if rtype in _ORDERED:
            r4_name, r5_name = _ORDERED[rtype]
            if "concept" in (resource.get(r5_name) or {}):
                resource[r4_name] = resource.pop(r5_name)["concept"]
            if "reason" in resource:
                resource["reasonReference"] = [r["reference"] for r in resource.pop("reason") if "reference" in r]
        elif rtype == "Procedure" and "_occurrenceDateTime" in resource:
            resource["_performedDateTime"] = resource.pop("_occurrenceDateTime")
        elif rtype == "Coverage":
            resource.pop("kind", None)
            if "insurer" in resource:
                resource["payor"] = [resource.pop("insurer")]
        elif rtype == "DocumentReference":
            resource.pop("basedOn", None)
            if response_ref:
                resource["context"] = {"related": [{"reference": response_ref}]}
            for content in resource.get("content", []):
                if "size" in content.get("attachment", {}):
                    content["attachment"]["size"] = int(content["attachment"]["size"])
        elif rtype == "ClaimResponse":
            resource.pop("decision", None)
            for item in resource.get("item", []):
                item.pop("reviewOutcome", None)
            for note in resource.get("processNote", []):
                if isinstance(note.get("type"), dict):
                    codes = [c["code"] for c in note["type"].get("coding", []) if "code" in c]
                    if codes:
                        note["type"] = codes[0]
                    else:
                        del note["type"]
    return bundle
