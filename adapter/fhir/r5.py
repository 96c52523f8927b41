"""R4 <-> R5 for the resources the adapter writes.

The adapter builds R4 (4.0.1) and, on request, rewrites the few elements R5 renamed or retyped: the
ClaimResponse gains ``decision`` and per-item ``reviewOutcome``; ServiceRequest.code becomes a
CodeableReference and reasonReference becomes ``reason``; Coverage.payor becomes ``insurer`` with the
new required ``kind``; DocumentReference points at the Claim through ``basedOn``; processNote.type
becomes a CodeableConcept; Attachment.size becomes an integer64 (a JSON string). The way back undoes
exactly that, so the reader only ever reads R4.
"""

from __future__ import annotations

import copy
from typing import Any

JSON = dict[str, Any]

#: Claim decision codes (R5 http://terminology.hl7.org/CodeSystem/claim-decision) per X12 review action.
_DECISIONS = {"A1": "approved", "A2": "partial", "A3": "denied", "A4": "pending", "A6": "partial"}
CLAIM_DECISION = "http://terminology.hl7.org/CodeSystem/claim-decision"
NOTE_TYPE = "http://hl7.org/fhir/note-type"
_MARK = "urn:imr-adapter:fhir-version"


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
        code = resource.get("code")
        if rtype == "ServiceRequest" and isinstance(code, dict) and "concept" in code:
            return True
        if rtype == "Coverage" and "kind" in resource:
            return True
        if rtype == "ClaimResponse" and "decision" in resource:
            return True
    return False


def review_action_code(adjudications: list[JSON]) -> str | None:
    """The PAS review action code (A1, A3, ...) carried by an item's adjudications, if any."""
    for adjudication in adjudications:
        for ext in adjudication.get("extension", []):
            for sub in ext.get("extension", []):
                codings = sub.get("valueCodeableConcept", {}).get("coding", [])
                if codings:
                    return str(codings[0].get("code"))
    return None


def _outcome(code: str | None) -> JSON:
    return {"coding": [{"system": CLAIM_DECISION, "code": _DECISIONS.get(code or "", "pending")}]}


def r4_to_r5(bundle: JSON) -> JSON:
    """A copy of an adapter-built R4 Bundle in R5 shape."""
    bundle = copy.deepcopy(bundle)
    claim_ref = next((e["fullUrl"] for e in bundle["entry"] if e["resource"]["resourceType"] == "Claim"), None)
    for entry in bundle["entry"]:
        resource = entry["resource"]
        rtype = resource["resourceType"]
        if rtype == "ServiceRequest":
            resource["code"] = {"concept": resource["code"]}
            if "reasonReference" in resource:
                resource["reason"] = [{"reference": r} for r in resource.pop("reasonReference")]
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
            overall = codes[0] if codes and len(set(codes)) == 1 else "A2"
            resource["decision"] = _outcome(overall)
            for item, code in zip(resource.get("item", []), codes, strict=True):
                item["reviewOutcome"] = {"decision": _outcome(code)}
            for note in resource.get("processNote", []):
                note["type"] = {"coding": [{"system": NOTE_TYPE, "code": note["type"]}]}
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
        if rtype == "ServiceRequest":
            if "concept" in resource.get("code", {}):
                resource["code"] = resource["code"]["concept"]
            if "reason" in resource:
                resource["reasonReference"] = [r["reference"] for r in resource.pop("reason") if "reference" in r]
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
