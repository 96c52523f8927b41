"""The payer's copy of a worker's answer: the resources it names written beside it, references that resolve
on the payer (or stay logical where the EHR sent nothing to copy), and later versions naming the same copies."""

from __future__ import annotations

from adapter.fhir.payer import answer_of, held_url, keep_references, payer_transaction, references
from adapter.fhir.response import FOREIGN_REFERENCE_SYSTEM
from adapter.review.policy import DEFAULT_POLICY
from adapter.service.pipeline import DETERMINATION_SYSTEM, decide, for_payer
from adapter.types import JSON

REQUEST: JSON = {
    "resourceType": "ServiceRequest", "id": "sr1", "status": "active", "intent": "order",
    "subject": {"reference": "Patient/p1"}, "requester": {"reference": "Practitioner/d1"},
    "reasonReference": [{"reference": "Condition/c1"}], "code": {"text": "Physical therapy 12 visits, neck"},
}  # fmt: skip
CONTEXT: JSON = {"resourceType": "Bundle", "type": "collection", "entry": [
    {"fullUrl": "ServiceRequest/sr1", "resource": REQUEST},
    {"fullUrl": "Patient/p1", "resource": {"resourceType": "Patient", "id": "p1", "gender": "male",
                                           "meta": {"versionId": "3"}}},
    {"fullUrl": "Condition/c1", "resource": {"resourceType": "Condition", "id": "c1", "code": {"text": "Neck pain"},
                                             "subject": {"reference": "Patient/p1"}}},
]}  # fmt: skip


def _references(node: object) -> list[str]:
    return [r["reference"] for r in references(node) if "reference" in r]


def test_the_payers_copy_names_only_what_it_writes_beside_it() -> None:
    decided = decide(CONTEXT, policy=DEFAULT_POLICY)
    bundle = payer_transaction(for_payer(decided.response), decided.response["id"], CONTEXT,
                               identifier_system=DETERMINATION_SYSTEM)  # fmt: skip
    held = {e["fullUrl"]: e for e in bundle["entry"]}
    assert [e["resource"]["resourceType"] for e in bundle["entry"]] == ["Patient", "ServiceRequest", "Condition",
                                                                          "ClaimResponse"]  # fmt: skip
    for entry in bundle["entry"]:  # every reference is to an entry of the transaction
        assert set(_references(entry["resource"])) <= set(held), entry["resource"]["resourceType"]
    patient = held[held_url("Patient/p1")]
    assert patient["request"]["ifNoneExist"] == f"_tag={FOREIGN_REFERENCE_SYSTEM}|Patient/p1"
    assert "id" not in patient["resource"] and "versionId" not in patient["resource"]["meta"]
    answer = bundle["entry"][-1]["resource"]
    assert answer["patient"] == {"reference": held_url("Patient/p1")}
    # the requester the EHR did not send stays a logical reference (an identifier), not a dangling one
    assert answer["requestor"] == {"identifier": {"system": FOREIGN_REFERENCE_SYSTEM, "value": "Practitioner/d1"}}
    assert held[held_url("ServiceRequest/sr1")]["resource"]["requester"] == answer["requestor"]
    assert answer_of(bundle) == for_payer(decided.response) | {"meta": answer["meta"]}  # alone, as it was


def test_a_later_version_names_what_the_payers_copy_names() -> None:
    decided = decide(CONTEXT, policy=DEFAULT_POLICY)
    later = for_payer(decided.response)
    served = {**later, "id": "payer-1", "patient": {"reference": "Patient/on-payer"}}
    served["item"] = [{**i, "extension": [{**e, "valueReference": {"reference": "ServiceRequest/on-payer"}}
                                          if "valueReference" in e else e for e in i.get("extension", [])]}
                      for i in later["item"]]  # fmt: skip
    kept = keep_references(later, served)
    assert kept["patient"] == {"reference": "Patient/on-payer"}
    assert "ServiceRequest/on-payer" in _references(kept["item"])
    assert kept["requestor"] == later["requestor"]  # logical on both: as it was
