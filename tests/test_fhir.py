"""Cases <-> FHIR: validity (fhir.resources R4B and R5, the official R4 JSON schema), lossless round trips,
golden Bundles, what lands where, and errors."""

from __future__ import annotations

import base64
import copy
import hashlib
import json
from collections import Counter
from pathlib import Path
from typing import Any

import jsonschema
import orjson
import pytest
from hypothesis import HealthCheck, given, settings

from adapter import MappingError, parse_letter
from adapter.fhir import bundle_to_case, case_to_bundle, r4_to_r5, validate_bundle
from adapter.fhir.ndjson import import_resources
from adapter.model import IMRCase
from tests.conftest import CORPUS, FIXTURES, LETTERS, ROOT, SEED_LETTER, needs_corpus
from tests.golden import golden_bundle
from tests.strategies import cases

GOLDEN_LETTERS = sorted(p for p in LETTERS.iterdir() if p.suffix in {".txt", ".pdf"})
SCHEMA_FILE = ROOT.parent / "shared" / "schemas" / "fhir-r4.schema.json"


@pytest.fixture(scope="module")
def schema() -> jsonschema.protocols.Validator:
    if not SCHEMA_FILE.exists():
        pytest.skip("../shared/schemas/fhir-r4.schema.json is not beside the project")
    document = json.loads(SCHEMA_FILE.read_text())
    return jsonschema.validators.validator_for(document)(document)  # type: ignore[no-any-return]


def resources(bundle: dict[str, Any], rtype: str) -> list[dict[str, Any]]:
    return [e["resource"] for e in bundle["entry"] if e["resource"]["resourceType"] == rtype]


def check_everything(case: IMRCase, schema: jsonschema.protocols.Validator) -> None:
    bundle = case_to_bundle(case)
    validate_bundle(bundle, "R4")
    errors = sorted(schema.iter_errors(bundle), key=lambda e: list(e.absolute_path))
    assert not errors, [(list(e.absolute_path), e.message[:200]) for e in errors[:3]]
    assert bundle_to_case(bundle) == case
    assert bundle_to_case(orjson.loads(orjson.dumps(bundle))) == case
    r5 = r4_to_r5(bundle)
    validate_bundle(r5, "R5")
    assert bundle_to_case(r5) == case


@pytest.mark.parametrize("path", [*GOLDEN_LETTERS, SEED_LETTER], ids=lambda p: p.name)
def test_fixture_bundles_valid_and_lossless(path: Path, schema: jsonschema.protocols.Validator) -> None:
    check_everything(parse_letter(path.read_bytes()), schema)


@needs_corpus
def test_corpus_bundles_valid_and_lossless(schema: jsonschema.protocols.Validator) -> None:
    for path in sorted((CORPUS / "pdf").glob("*.pdf")):
        check_everything(parse_letter(path.read_bytes()), schema)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(cases())
def test_generated_cases_round_trip(case: IMRCase) -> None:
    bundle = case_to_bundle(case)
    validate_bundle(bundle, "R4")
    assert bundle_to_case(orjson.loads(orjson.dumps(bundle))) == case
    assert bundle_to_case(r4_to_r5(bundle)) == case


def test_schema_catches_a_broken_bundle(schema: jsonschema.protocols.Validator) -> None:
    bundle = case_to_bundle(parse_letter((LETTERS / "case-number-crlf.txt").read_bytes()))
    resources(bundle, "Patient")[0]["gender"] = "robot"
    assert list(schema.iter_errors(bundle))
    resources(bundle, "Patient")[0]["birthDate"] = "31/12/1970"
    with pytest.raises(MappingError) as raised:
        validate_bundle(bundle)
    assert raised.value.location == "entry[3].resource.birthDate"


@pytest.mark.parametrize("path", GOLDEN_LETTERS, ids=lambda p: p.name)
def test_matches_golden_bundle(path: Path) -> None:
    golden = (FIXTURES / "golden" / f"{path.stem}.bundle.json").read_bytes()
    assert orjson.loads(golden_bundle(path)) == orjson.loads(golden)


@pytest.fixture(scope="module")
def bundle() -> dict[str, Any]:
    return case_to_bundle(parse_letter((LETTERS / "case-number-multi.txt").read_bytes()))


class TestMapping:
    def test_every_entry_is_a_conditional_create_with_a_uuid(self, bundle: dict[str, Any]) -> None:
        full_urls = [e["fullUrl"] for e in bundle["entry"]]
        assert len(set(full_urls)) == len(full_urls)
        assert all(u.startswith("urn:uuid:") for u in full_urls)
        for entry in bundle["entry"]:
            assert entry["request"]["method"] == "POST"
            assert entry["request"]["ifNoneExist"].startswith(("identifier=", "_tag="))

    def test_every_reference_resolves_inside_the_bundle(self, bundle: dict[str, Any]) -> None:
        full_urls = {e["fullUrl"] for e in bundle["entry"]}
        refs = [m for m in json.dumps(bundle).split('"reference": "')[1:]]
        assert refs and all(r.split('"')[0] in full_urls for r in refs)

    def test_same_case_same_bundle(self, bundle: dict[str, Any]) -> None:
        again = case_to_bundle(parse_letter((LETTERS / "case-number-multi.txt").read_bytes()))
        assert [e["fullUrl"] for e in again["entry"]] == [e["fullUrl"] for e in bundle["entry"]]

    def test_resources(self, bundle: dict[str, Any]) -> None:
        counts = Counter(e["resource"]["resourceType"] for e in bundle["entry"])
        assert counts == {
            "Organization": 3, "Patient": 1, "Coverage": 1, "Practitioner": 1, "PractitionerRole": 1,
            "Condition": 3, "Procedure": 2, "ServiceRequest": 3, "MedicationRequest": 1, "Claim": 1,
            "ClaimResponse": 1,
            "DocumentReference": 1, "Provenance": 1,
        }  # fmt: skip

    def test_codes_from_the_tables(self, bundle: dict[str, Any]) -> None:
        mri, therapy, labs = resources(bundle, "ServiceRequest")
        (drug,) = resources(bundle, "MedicationRequest")
        assert mri["code"]["coding"][0]["code"] == "72148"
        assert mri["bodySite"][0]["coding"][0]["code"] == "122496007"
        assert therapy["code"]["coding"][0]["code"] == "97110"
        assert therapy["occurrenceTiming"]["repeat"] == {
            "frequency": 2, "period": 1, "periodUnit": "wk",
            "boundsDuration": {"value": 4, "unit": "wk", "system": "http://unitsofmeasure.org", "code": "wk"},
        }  # fmt: skip
        assert therapy["quantityQuantity"] == {"value": 8}
        assert labs["code"]["coding"][0]["code"] == "85025"
        assert drug["medicationCodeableConcept"]["coding"][0] == {
            "system": "http://www.nlm.nih.gov/research/umls/rxnorm", "code": "21949", "display": "cyclobenzaprine"
        }  # fmt: skip
        (claim,) = resources(bundle, "Claim")
        assert [i["productOrService"]["coding"][0]["code"] for i in claim["item"]] == ["72148", "97110", "85025", "88"]
        assert [d["diagnosisCodeableConcept"]["coding"][0]["code"] for d in claim["diagnosis"]] == [
            "M54.16",
            "S33.5XXA",
        ]
        conditions = resources(bundle, "Condition")
        assert [c["code"].get("coding", [{}])[0].get("code") for c in conditions] == ["M54.16", "S33.5XXA", None]
        assert conditions[2]["code"] == {"text": "myofascial pain"}
        assert all(c["onsetDateTime"] == "2016-08-14" for c in resources(bundle, "Condition"))
        assert len(mri["reasonReference"]) == 3

    def test_claim_response_is_pas_shaped(self, bundle: dict[str, Any]) -> None:
        (response,) = resources(bundle, "ClaimResponse")
        assert (response["use"], response["outcome"], response["preAuthRef"]) == (
            "preauthorization",
            "complete",
            "CM17-0100001",
        )
        codes = [
            a["extension"][0]["extension"][0]["valueCodeableConcept"]["coding"][0]["code"]
            for i in response["item"]
            for a in i["adjudication"]
        ]
        assert codes == ["A1", "A3", "A3", "A3"]
        notes = {n["number"]: n["text"] for n in response["processNote"]}
        assert notes[response["item"][1]["noteNumber"][0]].startswith("The guidelines allow 8-10 visits")
        reviewer = next(e for e in response["extension"] if e["url"].endswith("extension-claimResponseReviewer"))
        assert {"url": "wasHumanReviewedFlag", "valueBoolean": True} in reviewer["extension"]
        (claim,) = resources(bundle, "Claim")
        assert response["request"]["reference"] == next(e["fullUrl"] for e in bundle["entry"] if e["resource"] is claim)
        assert claim["priority"]["coding"][0]["code"] == "normal"
        assert claim["accident"]["date"] == "2016-08-14"
        (coverage,) = resources(bundle, "Coverage")
        assert coverage["type"]["coding"][0]["code"] == "WCBPOL"

    def test_modified_request_is_a6_with_add_item(self) -> None:
        bundle = case_to_bundle(parse_letter((LETTERS / "case-number-modified.txt").read_bytes()))
        (response,) = resources(bundle, "ClaimResponse")
        actions = [i["adjudication"][0]["extension"][0]["extension"][0]["valueCodeableConcept"]["coding"][0]["code"]
                   for i in response["item"]]  # fmt: skip
        assert actions == ["A1", "A6"]
        assert response["addItem"] == [
            {
                "itemSequence": [2],
                "productOrService": {"text": "a hot/cold therapy unit for a 7 day rental"},
                "adjudication": [response["item"][0]["adjudication"][0]],
            }
        ]
        (role,) = resources(bundle, "PractitionerRole")
        assert role["specialty"] == [{"text": "Chiropractor"}]
        (practitioner,) = resources(bundle, "Practitioner")
        assert [q["issuer"]["display"] for q in practitioner["qualification"]] == ["Texas", "California", "Nevada"]

    def test_document_reference_carries_the_letter(self) -> None:
        raw = (LETTERS / "maximus-notice.txt").read_bytes()
        (document,) = resources(case_to_bundle(parse_letter(raw)), "DocumentReference")
        attachment = document["content"][0]["attachment"]
        assert base64.b64decode(attachment["data"]) == raw
        assert attachment["size"] == len(raw)
        assert attachment["hash"] == base64.b64encode(hashlib.sha1(raw).digest()).decode()
        assert attachment["contentType"] == "text/plain"

    def test_unknown_codes_fall_back_to_the_x12_service_type(self) -> None:
        case = parse_letter((LETTERS / "case-number-crlf.txt").read_bytes())
        case.items[0].request = "Something nobody has a code for"
        (request,) = resources(case_to_bundle(case), "ServiceRequest")
        assert request["code"] == {
            "coding": [{"system": "https://codesystem.x12.org/005010/1365", "code": "1", "display": "Medical Care"}],
            "text": "Something nobody has a code for",
        }


def test_ndjson_resources_have_ids_and_relative_references() -> None:
    bundle = case_to_bundle(parse_letter((LETTERS / "case-number-multi.txt").read_bytes()))
    out = list(import_resources(bundle))
    ids = {f"{r['resourceType']}/{r['id']}" for r in out}
    assert len(out) == len(bundle["entry"])
    text = json.dumps(out)
    assert "urn:uuid:" not in text
    assert all(ref.split('"')[0] in ids for ref in text.split('"reference": "')[1:])


class TestReadingErrors:
    def test_not_a_bundle(self) -> None:
        with pytest.raises(MappingError):
            bundle_to_case({"resourceType": "Patient"})

    def test_no_claim_response(self) -> None:
        with pytest.raises(MappingError) as raised:
            bundle_to_case({"resourceType": "Bundle", "type": "collection", "entry": []})
        assert raised.value.location == "ClaimResponse"

    def test_broken_reference(self) -> None:
        bundle = case_to_bundle(parse_letter((LETTERS / "case-number-crlf.txt").read_bytes()))
        bundle = copy.deepcopy(bundle)
        resources(bundle, "ClaimResponse")[0]["request"] = {"reference": "urn:uuid:nowhere"}
        with pytest.raises(MappingError) as raised:
            bundle_to_case(bundle)
        assert raised.value.location == "ClaimResponse.request"

    def test_pended_review_action_is_not_an_imr_decision(self) -> None:
        bundle = case_to_bundle(parse_letter((LETTERS / "case-number-crlf.txt").read_bytes()))
        coding = resources(bundle, "ClaimResponse")[0]["item"][0]["adjudication"][0]["extension"][0]["extension"][0]
        coding["valueCodeableConcept"]["coding"][0]["code"] = "A4"
        with pytest.raises(MappingError, match="A4"):
            bundle_to_case(bundle)

    def test_mangled_content_is_a_mapping_error(self) -> None:
        bundle = case_to_bundle(parse_letter((LETTERS / "case-number-crlf.txt").read_bytes()))
        del resources(bundle, "ServiceRequest")[0]["code"]
        with pytest.raises(MappingError):
            bundle_to_case(bundle)


def test_a_reference_is_read_one_way() -> None:
    """Type and id of a literal reference, everywhere the adapter follows one; anything else is no target."""
    from adapter.fhir.navigate import typed_id

    assert typed_id("Patient/p-1") == ("Patient", "p-1")
    assert typed_id("https://ehr.example/fhir/Patient/p-1") is None
    assert typed_id("https://ehr.example/fhir/Patient/p-1", absolute=True) == ("Patient", "p-1")
    for other in ("#contained", "Patient/", "patient/p-1", "Patient?identifier=x|1", "Patient/p-1/_history/2", ""):
        assert typed_id(other, absolute=True) is None, other
