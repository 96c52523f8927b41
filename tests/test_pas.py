"""Da Vinci PAS 2.2.1 conformance of what the adapter sends: request Bundles for every fixture and corpus
letter, and how drugs, equipment and modified requests are ordered (the rules one by one:
tests/test_conformance.py)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from adapter import parse_letter
from adapter.fhir import bundle_to_case, case_to_bundle, r4_to_r5, r5_to_r4, validate_bundle
from adapter.fhir.build import pas_bundle
from adapter.fhir.conformance import request_faults
from adapter.fhir.request_facts import requested_services
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
