"""Da Vinci PAS 2.2.1 conformance of what the adapter sends and answers: request Bundles for every fixture
and corpus letter, each kind of fault the check must catch, and the service's $submit and $inquire."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from adapter import parse_letter
from adapter.determination.fhir_facts import requested_services
from adapter.fhir import bundle_to_case, case_to_bundle, r4_to_r5, r5_to_r4, validate_bundle
from adapter.fhir.build import pas_bundle
from adapter.fhir.pas import ReviewAction, load_pas, request_faults, response_faults
from tests.conftest import CORPUS, LETTERS, ROOT

JSON = dict[str, Any]
SCHEMA = ROOT.parent / "shared" / "schemas" / "fhir-r4.schema.json"
FIXTURE_LETTERS = sorted(LETTERS.glob("*.txt"))
CORPUS_LETTERS = sorted((CORPUS / "text").glob("*.txt")) if CORPUS.exists() else []


def _pas(name: str = "case-number-multi.txt") -> JSON:
    return pas_bundle(parse_letter((LETTERS / name).read_bytes()))


def _resource(bundle: JSON, rtype: str) -> JSON:
    found: JSON = next(e["resource"] for e in bundle["entry"] if e["resource"]["resourceType"] == rtype)
    return found


@pytest.fixture(scope="module")
def schema() -> jsonschema.protocols.Validator:
    if not SCHEMA.exists():
        pytest.skip("the FHIR R4 JSON schema is not beside the project")
    document = json.loads(SCHEMA.read_text())
    validator: jsonschema.protocols.Validator = jsonschema.validators.validator_for(document)(document)
    return validator


@pytest.mark.parametrize("path", FIXTURE_LETTERS + CORPUS_LETTERS, ids=lambda p: p.name)
def test_request_bundle_conforms(path: Path, schema: jsonschema.protocols.Validator) -> None:
    bundle = pas_bundle(parse_letter(path.read_bytes()))
    assert [str(f) for f in request_faults(bundle)] == []
    assert not list(schema.iter_errors(bundle))
    validate_bundle(bundle)
    claim = bundle["entry"][0]["resource"]
    assert claim["resourceType"] == "Claim" and not any("request" in e for e in bundle["entry"])
    # every item reaches the determination, whatever resource carries it, with its sequence
    assert [r.sequence for r in requested_services(bundle)] == [i["sequence"] for i in claim["item"]]


def test_drugs_and_equipment_are_ordered_as_their_ehr_would() -> None:
    multi = _pas("case-number-multi.txt")
    drug = _resource(multi, "MedicationRequest")
    assert drug["medicationCodeableConcept"]["coding"][0]["system"] == "http://www.nlm.nih.gov/research/umls/rxnorm"
    assert drug["dispenseRequest"]["quantity"]["value"] == 90
    modified = _pas("case-number-modified.txt")
    device = _resource(modified, "DeviceRequest")
    assert device["codeCodeableConcept"]["text"] == "hot/cold therapy unit purchase"


def test_a_modified_request_orders_the_disputed_part() -> None:
    bundle = _pas("case-number-modified.txt")
    request = _resource(bundle, "ServiceRequest")
    assert request["code"]["text"] == "Chiropractic manipulation for the cervical spine 6 sessions"


@pytest.mark.parametrize("path", FIXTURE_LETTERS, ids=lambda p: p.name)
def test_round_trip_with_medication_and_device_requests(path: Path) -> None:
    case = parse_letter(path.read_bytes())
    bundle = case_to_bundle(case)
    assert bundle_to_case(bundle) == case
    assert bundle_to_case(r5_to_r4(r4_to_r5(bundle))) == case


def _breaks(change: Callable[[JSON], None]) -> list[str]:
    bundle = copy.deepcopy(_pas())
    change(bundle)
    return [f.rule for f in request_faults(bundle)]


def _claim(bundle: JSON) -> JSON:
    claim: JSON = bundle["entry"][0]["resource"]
    return claim


def _item(bundle: JSON) -> JSON:
    item: JSON = _claim(bundle)["item"][0]
    return item


def _by_ref(bundle: JSON, reference: JSON) -> JSON:
    found: JSON = next(e["resource"] for e in bundle["entry"] if e["fullUrl"] == reference["reference"])
    return found


def _drop(bundle: JSON, rtype: str) -> None:
    bundle["entry"].remove(next(e for e in bundle["entry"] if e["resource"]["resourceType"] == rtype))


def _diagnosis_by_reference(bundle: JSON) -> None:
    diagnosis = _claim(bundle)["diagnosis"][0]
    diagnosis.pop("diagnosisCodeableConcept")
    diagnosis["diagnosisReference"] = {"reference": bundle["entry"][1]["fullUrl"]}


FAULTS: list[tuple[str, Callable[[JSON], None], str]] = [
    ("no identifier", lambda b: b.pop("identifier"), "identifier 1..1 (Bundle.fsh:7)"),
    ("no timestamp", lambda b: b.pop("timestamp"), "timestamp 1..1 (Bundle.fsh:10)"),
    ("a transaction", lambda b: b.update(type="transaction"), "type = #collection"),
    ("entry.request", lambda b: b["entry"][1].update(request={"method": "POST", "url": "X"}), "entry.request 0..0"),
    ("Claim not first", lambda b: b["entry"].reverse(), "ClaimFirst"),
    ("dangling reference", lambda b: _drop(b, "Coverage"), "references resolve inside the Bundle"),
    ("diagnosis by reference", _diagnosis_by_reference, "diagnosis[x] only CodeableConcept"),
    ("no requestType", lambda b: _item(b)["extension"].pop(0), "extension[requestType] 1..1"),
    ("no certificationType", lambda b: _item(b)["extension"].pop(1), "extension[certificationType] 1..1"),
    ("no category", lambda b: _item(b).pop("category"), "item.category 1..1"),
    ("no location", lambda b: _item(b).pop("locationCodeableConcept"), "item.location[x] 1..1"),
    ("text-only service", lambda b: _item(b).update(productOrService={"text": "MRI"}), "X12278RequestedServiceType"),
    ("patient without a name", lambda b: _resource(b, "Patient").pop("name"), "US Core Patient name"),
    ("coverage without relationship", lambda b: _resource(b, "Coverage").pop("relationship"), "relationship 1..1"),
    ("coverage without member id", lambda b: _resource(b, "Coverage").update(identifier=[]), "memberid] 1..1"),
    ("insurer not active", lambda b: _by_ref(b, _claim(b)["insurer"]).pop("active"), "PASInsurer active = true"),
    ("insurer without type", lambda b: _by_ref(b, _claim(b)["insurer"]).pop("type"), "PASInsurer type from X12 98"),
]  # fmt: skip


@pytest.mark.parametrize(("change", "rule"), [(c, r) for _, c, r in FAULTS], ids=[n for n, _, _ in FAULTS])
def test_each_fault_is_caught_and_named(change: Callable[[JSON], None], rule: str) -> None:
    assert any(rule in found for found in _breaks(change)), _breaks(change)


def test_response_faults() -> None:
    claim = {"item": [{"sequence": 10}, {"sequence": 20}]}
    response = {
        "resourceType": "ClaimResponse", "status": "active", "use": "preauthorization",
        "patient": {"reference": "Patient/p"}, "insurer": {"display": "x"}, "request": {"reference": "Claim/c"},
        "item": [{"itemSequence": 1, "adjudication": [{"category": {}, "extension": [
            {"url": load_pas().extensions.review_action, "extension": [
                {"url": load_pas().extensions.review_action_code,
                 "valueCodeableConcept": {"coding": [{"code": ReviewAction.CERTIFIED.value}]}}]}]}]}],
    }  # fmt: skip
    bundle = {"resourceType": "Bundle", "type": "collection", "entry": [{"fullUrl": "urn:x", "resource": response}]}
    rules = " | ".join(f.rule for f in response_faults(bundle, claim))
    for expected in ("identifier 1..1 (Bundle.fsh:54)", "timestamp 1..1", "PASBeneficiary", "PASInsurer",
                     "requestor", "itemSequence echoes", "extension[number]", "preAuthRef"):  # fmt: skip
        assert expected in rules
