"""The PAS 2.2.1 conformance check rule by rule: every rule cites the FSH line (or specification.md SHALL)
that states it, and every rule the adapter relies on has a request, inquiry or response broken in exactly
that rule, which ``$submit`` (or ``$inquire``) refuses with the rule named, or the response check names."""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from adapter import parse_letter
from adapter.config import load_settings
from adapter.fhir.build import pas_bundle
from adapter.fhir.conformance import (
    INQUIRY_BUNDLE,
    REQUEST_BUNDLE,
    RESPONSE_BUNDLE,
    RULES,
    Rule,
    request_faults,
    response_faults,
    rules_cited,
)
from adapter.fhir.pas import review_action
from adapter.fhir.response import response_bundle
from adapter.review import apply_decision, read_decision
from adapter.review.policy import DEFAULT_POLICY
from adapter.review.tasks import first_input
from adapter.service import wire
from adapter.service.pipeline import decide
from tests.conftest import FIXTURES, LETTERS, auth
from tests.test_review import _completed
from tests.test_service import _inquiry

JSON = dict[str, Any]
FSH = FIXTURES / "pas-fsh"
TOKEN = "conformance-token"
NPI = "http://hl7.org/fhir/sid/us-npi"


# --- citations -------------------------------------------------------------------------------------------


def _stated(rule: Rule) -> str:
    """The text a rule's citation points at: the FSH line, or the specification's SHALL (or anchored note)."""
    if rule.source.startswith("specification.md#"):
        text = (FSH / "specification.md").read_text()
        anchor = rule.source.split("#", 1)[1]
        if anchor.startswith("spec-"):
            found = re.search(rf"§{anchor}\^[^:]*:(.*?)§", text, re.S)
        else:
            found = re.search(rf'name="{anchor}"></a>(.{{0,2000}})', text, re.S)
        assert found, f"{rule.source} is not in the specification"
        return found.group(1)
    name, line = rule.source.split(":")
    return (FSH / name).read_text().splitlines()[int(line) - 1]


@pytest.mark.parametrize("rule", list(rules_cited()), ids=str)
def test_each_rule_cites_the_line_that_states_it(rule: Rule) -> None:
    assert rule.words in _stated(rule)


# --- requests broken in one rule, refused by $submit ----------------------------------------------------


def _pas(name: str) -> JSON:
    return pas_bundle(parse_letter((LETTERS / name).read_bytes()))


MULTI, MODIFIED = _pas("case-number-multi.txt"), _pas("case-number-modified.txt")


def _claim(b: JSON) -> JSON:
    claim: JSON = b["entry"][0]["resource"]
    return claim


def _item(b: JSON) -> JSON:
    item: JSON = _claim(b)["item"][0]
    return item


def _first(b: JSON, rtype: str) -> JSON:
    found: JSON = next(e["resource"] for e in b["entry"] if e["resource"]["resourceType"] == rtype)
    return found


def _entry(b: JSON, rtype: str) -> JSON:
    found: JSON = next(e for e in b["entry"] if e["resource"]["resourceType"] == rtype)
    return found


def _ref(b: JSON, rtype: str) -> JSON:
    return {"reference": _entry(b, rtype)["fullUrl"]}


def _by(b: JSON, reference: JSON) -> JSON:
    found: JSON = next(e["resource"] for e in b["entry"] if e["fullUrl"] == reference["reference"])
    return found


def _insurer(b: JSON) -> JSON:
    return _by(b, _claim(b)["insurer"])


def _requestor(b: JSON) -> JSON:
    return _by(b, _claim(b)["provider"])


def _add(b: JSON, resource: JSON, n: int) -> JSON:
    url = f"urn:uuid:00000000-0000-4000-8000-{n:012d}"
    b["entry"].append({"fullUrl": url, "resource": resource})
    return {"reference": url}


def _role(b: JSON, **changes: Any) -> None:
    """The Claim's provider a PractitionerRole (of a named Practitioner with an NPI, at the requestor)."""
    practitioner = {"resourceType": "Practitioner", "identifier": [{"system": NPI, "value": "1234567893"}],
                    "name": [{"family": "Osler"}]}  # fmt: skip
    role: JSON = {"resourceType": "PractitionerRole", "practitioner": _add(b, practitioner, 1),
                  "organization": _claim(b)["provider"]}  # fmt: skip
    role.update(changes.pop("role", {}))
    practitioner.update(changes.pop("practitioner", {}))
    _claim(b)["provider"] = _add(b, role, 2)


def _update(b: JSON, related: list[JSON] | None) -> None:
    _claim(b)["meta"] = {"profile": ["http://hl7.org/fhir/us/davinci-pas/StructureDefinition/profile-claim-update"]}
    if related is not None:
        _claim(b)["related"] = related


def _info(b: JSON) -> JSON:
    info: JSON = _claim(b)["supportingInfo"][0]
    return info


def _other_code(concept: JSON) -> None:
    for coding in concept["coding"]:
        coding["system"] = "urn:example:other"


PRIOR = {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/ex-relatedclaimrelationship", "code": "prior"}]}
Change = Callable[[JSON], Any]

#: (name, the Bundle it breaks, the change, the rule it breaks, other rules that necessarily follow)
BREAKS: list[tuple[str, JSON, Change, str, frozenset[str]]] = [
    (n, base, change, rule, frozenset(also)) for n, base, change, rule, *also in [
    # Bundle.fsh
    ("claim not first", MULTI, lambda b: b["entry"].append(b["entry"].pop(0)), "B:first"),
    ("no identifier", MULTI, lambda b: b.pop("identifier"), "B:identifier"),
    ("a transaction", MULTI, lambda b: b.update(type="transaction"), "B:type"),
    ("no timestamp", MULTI, lambda b: b.pop("timestamp"), "B:timestamp"),
    ("no entries", MULTI, lambda b: b.update(entry=[]), "B:entry", "B:first", "B:slice"),
    ("entry without fullUrl", MULTI, lambda b: b["entry"].append({"resource": {
        "resourceType": "Organization", "active": True, "name": "x"}}), "B:fullUrl", "spec-20"),
    ("entry without resource", MULTI, lambda b: b["entry"].append({"fullUrl": "urn:uuid:0-1"}), "B:resource"),
    ("entry.search", MULTI, lambda b: b["entry"][1].update(search={"mode": "match"}), "B:search"),
    ("entry.request", MULTI, lambda b: b["entry"][1].update(request={"method": "POST", "url": "Patient"}),
     "B:request"),
    ("entry.response", MULTI, lambda b: b["entry"][1].update(response={"status": "201"}), "B:response"),
    ("three Claims", MULTI, lambda b: b["entry"].extend(
        {"fullUrl": f"urn:uuid:00000000-0000-4000-8000-00000000000{n}", "resource": _claim(b)} for n in (7, 8)),
     "B:slice"),
    # specification.md
    ("dangling reference", MULTI, lambda b: _first(b, "Procedure").update(
        performer=[{"actor": {"reference": "urn:uuid:00000000-0000-4000-8000-000000000009"}}]), "spec-13"),
    ("relative fullUrl", MULTI, lambda b: (_entry(b, "Procedure").update(fullUrl="Procedure/p1"),
                                          _info(b).update(valueReference={"reference": "Procedure/p1"})), "spec-16"),
    ("unreferenced prior treatment", MULTI, lambda b: _claim(b).pop("supportingInfo"), "spec-20"),
    ("supportingInfo sequence twice", MULTI, lambda b: _claim(b)["supportingInfo"][1].update(sequence=1), "spec-22"),
    ("condition without category", MULTI, lambda b: _first(b, "Condition").pop("category"), "condition.category"),
    ("completed procedure, no performed", MULTI, lambda b: _first(b, "Procedure").pop("_performedDateTime"),
     "procedure.performed"),
    # Identifier.fsh
    ("identifier without system", MULTI, lambda b: _claim(b)["identifier"][0].pop("system"), "identifier.system"),
    ("identifier without value", MULTI, lambda b: _claim(b)["identifier"].append({"system": "urn:x"}),
     "identifier.value"),
    # Claim.fsh
    ("claim draft", MULTI, lambda b: _claim(b).update(status="draft"), "claim.status"),
    ("claim type oral", MULTI, lambda b: _claim(b)["type"]["coding"][0].update(code="oral"), "claim.type"),
    ("use = claim", MULTI, lambda b: _claim(b).update(use="claim"), "claim.use"),
    ("no insurer", MULTI, lambda b: _claim(b).pop("insurer"), "claim.insurer"),
    ("insurer a Coverage", MULTI, lambda b: _claim(b).update(insurer=_ref(b, "Coverage")), "claim.insurer.only"),
    ("provider a Coverage", MULTI, lambda b: _claim(b).update(provider=_ref(b, "Coverage")), "claim.provider"),
    ("diagnosis by reference", MULTI, lambda b: _claim(b)["diagnosis"][0].update(
        diagnosisReference=_ref(b, "Condition"), diagnosisCodeableConcept=None) or _claim(b)["diagnosis"][0].pop(
        "diagnosisCodeableConcept"), "claim.diagnosis"),
    ("diagnosis in SNOMED", MULTI, lambda b: _other_code(_claim(b)["diagnosis"][0]["diagnosisCodeableConcept"]),
     "claim.diagnosis.code"),
    ("diagnosis type as text", MULTI, lambda b: _claim(b)["diagnosis"][0].update(type=[{"text": "principal"}]),
     "claim.diagnosis.type"),
    ("insurance not focal", MULTI, lambda b: _claim(b)["insurance"][0].update(focal=False), "claim.insurance.focal"),
    ("insurance a Procedure", MULTI, lambda b: _claim(b)["insurance"][0].update(coverage=_ref(b, "Procedure")),
     "claim.insurance.coverage", "spec-20"),
    ("accident month only", MULTI, lambda b: _claim(b)["accident"].update(date="2016-08"), "claim.accident.date"),
    ("category not X12", MULTI, lambda b: _other_code(_item(b)["category"]), "item.category.code"),
    ("text-only service", MULTI, lambda b: _item(b).update(productOrService={"text": "MRI"}),
     "item.productOrService"),
    ("modifier as text", MULTI, lambda b: _item(b).update(modifier=[{"text": "bilateral"}]), "item.modifier"),
    ("service year only", MULTI, lambda b: _item(b).update(servicedDate="2017"), "item.servicedDate"),
    ("location an address", MULTI, lambda b: _item(b).update(locationAddress={"city": "Sacramento"},
                                                             locationCodeableConcept=None) or _item(b).pop(
        "locationCodeableConcept"), "item.location.only"),
    ("location not POS", MULTI, lambda b: _other_code(_item(b)["locationCodeableConcept"]), "item.location.code"),
    ("claim relates to another", MULTI, lambda b: (_claim(b).update(
        meta={"profile": ["http://hl7.org/fhir/us/davinci-pas/StructureDefinition/profile-claim"]},
        related=[{"relationship": PRIOR, "claim": {"display": "earlier"}}])), "claim.related"),
    ("three identifiers", MULTI, lambda b: _claim(b)["identifier"].extend(
        [{"system": "urn:x", "value": "1"}, {"system": "urn:x", "value": "2"}]), "claim.identifier.count"),
    ("no items", MULTI, lambda b: _claim(b).pop("item"), "claim.item", "spec-20"),
    ("item sequence twice", MULTI, lambda b: _claim(b)["item"][1].update(sequence=_item(b)["sequence"]),
     "item.sequence"),
    ("no requestType", MULTI, lambda b: _item(b)["extension"].pop(0), "item.requestType"),
    ("no certificationType", MULTI, lambda b: _item(b)["extension"].pop(1), "item.certificationType"),
    ("no category", MULTI, lambda b: _item(b).pop("category"), "item.category"),
    ("no location", MULTI, lambda b: _item(b).pop("locationCodeableConcept"), "item.location"),
    ("AdditionalInformation untyped", MULTI, lambda b: _info(b).pop("extension"), "info.documentInformation"),
    ("AdditionalInformation with timing", MULTI, lambda b: _info(b).update(timingDate="2017-01-01"), "info.timing"),
    ("AdditionalInformation without value", MULTI, lambda b: _info(b).pop("valueReference"), "info.value",
     "spec-20"),
    ("report type not X12 755", MULTI, lambda b: _other_code(
        _info(b)["extension"][0]["extension"][0]["valueCodeableConcept"]), "info.reportType"),
    # Claim-update.fsh
    ("update without related", MULTI, lambda b: _update(b, None), "update.related"),
    ("update, not prior", MULTI, lambda b: _update(b, [{"relationship": {"coding": [
        {"system": "http://terminology.hl7.org/CodeSystem/ex-relatedclaimrelationship", "code": "associated"}]},
        "claim": {"display": "earlier"}}]), "update.relationship"),
    ("update naming no claim", MULTI, lambda b: _update(b, [{"relationship": PRIOR}]), "update.claim"),
    ("requestType not X12", MULTI, lambda b: _other_code(_item(b)["extension"][0]["valueCodeableConcept"]),
     "ext.requestType"),
    ("certificationType not X12", MULTI, lambda b: _other_code(_item(b)["extension"][1]["valueCodeableConcept"]),
     "ext.certificationType"),
    ("requested service a Coverage", MULTI, lambda b: _item(b)["extension"][2].update(
        valueReference=_ref(b, "Coverage")), "ext.requestedService", "spec-20"),
    # Quantity.fsh, Request.fsh
    ("quantity without value", MULTI, lambda b: _item(b).update(quantity={"unit": "visit"}), "quantity.value"),
    ("quantity in UCUM", MULTI, lambda b: _item(b).update(
        quantity={"value": 1, "system": "http://unitsofmeasure.org", "code": "d"}), "quantity.code"),
    ("bounds a Period", MULTI, lambda b: _first(b, "ServiceRequest").update(
        occurrenceTiming={"repeat": {"boundsPeriod": {"start": "2017-01-01"}}}), "timing.bounds"),
    ("drug plan", MULTI, lambda b: _first(b, "MedicationRequest").update(intent="plan"), "mr.intent"),
    ("drug draft", MULTI, lambda b: _first(b, "MedicationRequest").update(status="draft"), "mr.status"),
    ("drug as text, its item coded", MULTI, lambda b: _first(b, "MedicationRequest").update(
        medicationCodeableConcept={"text": "Cyclobenzaprine 7.5mg #90"}), "mr.medication"),
    ("drug without requester", MULTI, lambda b: _first(b, "MedicationRequest").pop("requester"), "mr.requester"),
    ("service proposal", MULTI, lambda b: _first(b, "ServiceRequest").update(intent="proposal"), "sr.intent"),
    ("service text only", MULTI, lambda b: _first(b, "ServiceRequest").update(code={"text": "MRI"}), "sr.code"),
    ("service quantity range", MULTI, lambda b: _first(b, "ServiceRequest").update(
        quantityRange={"low": {"value": 1}}), "sr.quantity"),
    ("service occurrenceDateTime", MULTI, lambda b: _first(b, "ServiceRequest").update(
        occurrenceDateTime="2017-03-01"), "sr.occurrence"),
    ("device plan", MODIFIED, lambda b: _first(b, "DeviceRequest").update(intent="plan"), "dr.intent"),
    ("device a reference", MODIFIED, lambda b: _first(b, "DeviceRequest").update(
        codeReference={"display": "TENS unit"}) or _first(b, "DeviceRequest").pop("codeCodeableConcept"),
     "dr.code.only"),
    ("device text only", MODIFIED, lambda b: _first(b, "DeviceRequest").update(
        codeCodeableConcept={"text": "cold therapy unit"}), "dr.code"),
    ("device occurrencePeriod", MODIFIED, lambda b: _first(b, "DeviceRequest").update(
        occurrencePeriod={"start": "2017-03-01"}), "dr.occurrence"),
    # Patient.fsh (and US Core Patient)
    ("birth year only", MULTI, lambda b: _first(b, "Patient").update(birthDate="1970"), "patient.birthDate"),
    ("patient without identifier", MULTI, lambda b: _first(b, "Patient").pop("identifier"), "patient.identifier"),
    ("patient without name", MULTI, lambda b: _first(b, "Patient").pop("name"), "patient.name"),
    ("patient without gender", MULTI, lambda b: _first(b, "Patient").pop("gender"), "patient.gender"),
    # Coverage.fsh
    ("spouse, no subscriber", MULTI, lambda b: (_first(b, "Coverage").update(relationship={"coding": [
        {"system": "http://terminology.hl7.org/CodeSystem/subscriber-relationship", "code": "spouse"}]}),
        _first(b, "Coverage").pop("subscriber")), "coverage.self"),
    ("no member id", MULTI, lambda b: _first(b, "Coverage").update(identifier=[
        {"system": "urn:x", "value": "1"}]), "coverage.memberid"),
    ("coverage cancelled", MULTI, lambda b: _first(b, "Coverage").update(status="cancelled"), "coverage.status"),
    ("subscriber an Organization", MULTI, lambda b: _first(b, "Coverage").update(subscriber=_claim(b)["insurer"]),
     "coverage.subscriber"),
    ("two X12 relationships", MULTI, lambda b: _first(b, "Coverage")["relationship"]["coding"].append(
        {"system": "https://codesystem.x12.org/005010/1069", "code": "01"}), "coverage.x12.count"),
    ("payor the patient", MULTI, lambda b: _first(b, "Coverage").update(payor=[_claim(b)["patient"]]),
     "coverage.payor"),
    ("coverage without relationship", MULTI, lambda b: _first(b, "Coverage").pop("relationship"),
     "coverage.relationship", "coverage.self"),
    # Organization.fsh
    ("insurer type not X12", MULTI, lambda b: _other_code(_insurer(b)["type"][0]), "insurer.type"),
    ("insurer inactive", MULTI, lambda b: _insurer(b).update(active=False), "insurer.active"),
    ("requestor type not X12", MULTI, lambda b: _other_code(_requestor(b)["type"][0]), "requestor.type"),
    ("requestor inactive", MULTI, lambda b: _requestor(b).update(active=False), "requestor.active"),
    ("requestor without name", MULTI, lambda b: _requestor(b).pop("name"), "organization.name"),
    # Practitioner.fsh
    ("role without practitioner", MULTI, lambda b: _role(b, role={"practitioner": None}) or _by(
        b, _claim(b)["provider"]).pop("practitioner"), "role.practitioner", "spec-20"),
    ("role's practitioner an Organization", MULTI, lambda b: _role(b, role={"practitioner": _claim(b)["insurer"]}),
     "role.practitioner.only", "spec-20"),
    ("role at a Coverage", MULTI, lambda b: _role(b, role={"organization": _ref(b, "Coverage")}),
     "role.organization"),
    ("practitioner without name", MULTI, lambda b: _role(b, practitioner={"name": None}) or _by(
        b, _by(b, _claim(b)["provider"])["practitioner"]).pop("name"), "practitioner.us-core"),
]]  # fmt: skip
#: Rules the edge check (one patient per request) refuses first: checked on the checker directly.
AT_THE_EDGE: list[tuple[str, JSON, Change, str]] = [
    ("patient a Coverage", MULTI, lambda b: _claim(b).update(patient=_ref(b, "Coverage")), "claim.patient"),
    ("drug for an Organization", MULTI, lambda b: _first(b, "MedicationRequest").update(subject=_claim(b)["insurer"]),
     "mr.subject"),
    ("service for an Organization", MULTI, lambda b: _first(b, "ServiceRequest").update(
        subject=_claim(b)["insurer"]), "sr.subject"),
    ("device for an Organization", MODIFIED, lambda b: _first(b, "DeviceRequest").update(
        subject=_claim(b)["insurer"]), "dr.subject"),
    ("beneficiary an Organization", MULTI, lambda b: _first(b, "Coverage").update(beneficiary=_claim(b)["insurer"]),
     "coverage.beneficiary"),
    # a fullUrl repeated is refused by the edge for every Bundle (FHIR bdl-7), before the PAS rules
    ("a resource twice", MULTI, lambda b: b["entry"].insert(2, copy.deepcopy(_entry(b, "Condition"))), "spec-14"),
]  # fmt: skip


def _rule(key: str) -> str:
    return str(REQUEST_BUNDLE[key[2:]] if key.startswith("B:") else RULES[key])


def _broken(base: JSON, change: Change) -> JSON:
    bundle = copy.deepcopy(base)
    change(bundle)
    return bundle


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    state = tmp_path_factory.mktemp("state") / "state.db"
    settings = load_settings(
        service={
            "tokens": {TOKEN: "system/Claim.write system/ClaimResponse.read"},
            "state_url": f"sqlite:///{state}",
            "forward": False,
            "rate_limit": 10_000,
        }
    )
    with TestClient(wire(settings).app()) as test_client:
        yield test_client


def test_what_the_adapter_sends_breaks_no_rule() -> None:
    assert request_faults(MULTI) == [] and request_faults(MODIFIED) == []


def test_a_dangling_reference_is_placed_at_the_element_that_holds_it() -> None:
    missing = "urn:uuid:00000000-0000-4000-8000-000000000009"
    bundle = _broken(MULTI, lambda b: _first(b, "Procedure").update(
        performer=[{"function": {"text": "surgeon"}}, {"actor": {"reference": missing}}]))  # fmt: skip
    n = next(n for n, e in enumerate(bundle["entry"]) if e["resource"]["resourceType"] == "Procedure")
    dangling = [f for f in request_faults(bundle) if "#spec-13)" in f.rule]
    assert [(f.location, f.message) for f in dangling] == [
        (f"Bundle.entry[{n}].resource.performer[1].actor", f"{missing} is not in the Bundle")
    ]


@pytest.mark.parametrize(("base", "change", "rule", "also"), [b[1:] for b in BREAKS], ids=[b[0] for b in BREAKS])
def test_submit_refuses_a_request_broken_in_one_rule_naming_it(
    client: TestClient, base: JSON, change: Change, rule: str, also: frozenset[str]
) -> None:
    bundle = _broken(base, change)
    refused = client.post("/fhir/Claim/$submit", content=json.dumps(bundle), headers=auth(TOKEN))
    assert refused.status_code == 400, refused.text
    named = {issue["diagnostics"] for issue in refused.json()["issue"]}
    assert _rule(rule) in named
    assert named <= {_rule(rule), *(_rule(a) for a in also)}, named


@pytest.mark.parametrize(("base", "change", "rule"), [b[1:] for b in AT_THE_EDGE], ids=[b[0] for b in AT_THE_EDGE])
def test_a_rule_the_edge_refuses_first_is_named_by_the_check(
    client: TestClient, base: JSON, change: Change, rule: str
) -> None:
    bundle = _broken(base, change)
    assert _rule(rule) in {f.rule for f in request_faults(bundle)}
    refused = client.post("/fhir/Claim/$submit", content=json.dumps(bundle), headers=auth(TOKEN))
    assert refused.status_code in (400, 422)


# --- responses ------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def answered(client: TestClient) -> tuple[JSON, JSON]:
    """A $submit answer (with a certified item) and the Claim it answers."""
    request = copy.deepcopy(MULTI)
    answer = client.post("/fhir/Claim/$submit", content=json.dumps(request), headers=auth(TOKEN))
    assert answer.status_code == 200, answer.text
    return answer.json(), _claim(request)


@pytest.fixture
def certified(answered: tuple[JSON, JSON]) -> tuple[JSON, JSON]:
    """The answer after a physician certified its first item: a review number, the authorization's."""
    bundle, claim = copy.deepcopy(answered)
    response = _response(bundle)
    response["item"][0]["adjudication"] = [review_action("A1", number=f"{response['id']}-1")]
    response.update(preAuthRef=response["id"], preAuthPeriod={"start": "2026-11-27", "end": "2027-05-26"})
    return bundle, claim


def _response(b: JSON) -> JSON:
    response: JSON = b["entry"][0]["resource"]
    return response


def _certified(b: JSON) -> JSON:
    item: JSON = next(i for i in _response(b)["item"] if "A1" in json.dumps(i["adjudication"]))
    return item


def _added(b: JSON) -> JSON:
    """An addItem (as a physician's A6 leaves), coded as PAS requires."""
    code = copy.deepcopy(_certified(b)["adjudication"])
    added: JSON = {"itemSequence": [1], "productOrService": {"coding": [
        {"system": "https://codesystem.x12.org/005010/1365", "code": "1"}]}, "quantity": {"value": 6},
        "adjudication": code}  # fmt: skip
    _response(b)["addItem"] = [added]
    return added


RESPONSE_BREAKS: list[tuple[str, Change, str]] = [
    ("not first", lambda b: b["entry"].append(b["entry"].pop(0)), "B:first"),
    ("no identifier", lambda b: b.pop("identifier"), "B:identifier"),
    ("a transaction", lambda b: b.update(type="transaction"), "B:type"),
    ("no timestamp", lambda b: b.pop("timestamp"), "B:timestamp"),
    ("no entries", lambda b: b.update(entry=[]), "B:entry"),
    ("entry without fullUrl", lambda b: b["entry"][1].pop("fullUrl"), "B:fullUrl"),
    ("entry without resource", lambda b: b["entry"].append({"fullUrl": "urn:uuid:0-1"}), "B:resource"),
    ("entry.search", lambda b: b["entry"][1].update(search={"mode": "match"}), "B:search"),
    ("entry.request", lambda b: b["entry"][1].update(request={"method": "POST", "url": "X"}), "B:request"),
    ("entry.response", lambda b: b["entry"][1].update(response={"status": "201"}), "B:response"),
    ("two ClaimResponses", lambda b: b["entry"].append({"fullUrl": "urn:uuid:0-2", "resource": _response(b)}),
     "B:slice"),
    ("cancelled", lambda b: _response(b).update(status="cancelled"), "response.status"),
    ("use claim", lambda b: _response(b).update(use="claim"), "response.use"),
    ("identifier without system", lambda b: _response(b)["identifier"][0].pop("system"), "identifier.system"),
    ("patient not a Patient", lambda b: _response(b).update(patient=_response(b)["insurer"]), "response.patient"),
    ("insurer a Patient", lambda b: _response(b).update(insurer=_response(b)["patient"]), "response.insurer"),
    ("no requestor", lambda b: _response(b).pop("requestor"), "response.requestor"),
    ("no request", lambda b: _response(b).pop("request"), "response.request"),
    ("outcome queued", lambda b: _response(b).update(outcome="queued"), "response.outcome"),
    ("item sequence not on the Claim", lambda b: _response(b)["item"][0].update(itemSequence=99),
     "response.sequence"),
    ("no reviewAction", lambda b: _response(b)["item"][0]["adjudication"][0].pop("extension"),
     "response.reviewAction"),
    ("adjudication not submitted", lambda b: _response(b)["item"][0]["adjudication"][0]["category"]["coding"][0]
     .update(code="eligible"), "response.item.category"),
    ("certified, no number", lambda b: _certified(b)["adjudication"][0]["extension"][0]["extension"].pop(),
     "reviewAction.number"),
    ("review action not X12", lambda b: _response(b)["item"][0]["adjudication"][0]["extension"][0]["extension"][0][
        "valueCodeableConcept"]["coding"][0].update(system="urn:x"), "reviewAction.code"),
    ("certified, no period", lambda b: _response(b).pop("preAuthPeriod"), "response.preAuth"),
    ("added item for two", lambda b: _added(b).update(itemSequence=[1, 2]), "addItem.itemSequence"),
    ("added item as text", lambda b: _added(b).update(productOrService={"text": "6 visits"}),
     "addItem.productOrService"),
    ("added quantity without value", lambda b: _added(b).update(quantity={"unit": "visit"}), "quantity.value"),
    ("added adjudication not submitted", lambda b: _added(b)["adjudication"][0]["category"]["coding"][0].update(
        code="eligible"), "addItem.category"),
    ("note without number", lambda b: _response(b)["processNote"][0].pop("number"), "processNote.number"),
    ("reviewer without flag", lambda b: _response(b).setdefault("extension", []).append(
        {"url": "http://hl7.org/fhir/us/davinci-pas/StructureDefinition/extension-claimResponseReviewer",
         "extension": [{"url": "reviewerSpecialty", "valueCodeableConcept": {"text": "Orthopedics"}}]}),
     "reviewer.flag"),
    ("ask not named", lambda b: _response(b)["communicationRequest"][0].update(reference="#nowhere"),
     "response.communicationRequest"),
    ("ask completed", lambda b: _asked(b).update(status="completed"), "cr.status"),
    ("ask without identifier", lambda b: _asked(b).pop("identifier"), "cr.identifier"),
    ("ask category not X12", lambda b: _asked(b)["category"][0]["coding"][0].update(system="urn:x"), "cr.category"),
    ("ask by two media", lambda b: _asked(b)["medium"].append({"text": "fax"}), "cr.medium"),
    ("ask payload not a string", lambda b: _asked(b).update(payload=[{"contentReference": {"reference": "#x"}}]),
     "cr.payload"),
    ("ask payload not LOINC", lambda b: _asked(b)["payload"][0].update(contentString="progress note"), "cr.loinc"),
    ("ask of the patient", lambda b: _asked(b).update(requester=_response(b)["patient"]), "cr.requester"),
    ("ask sent to the patient", lambda b: _asked(b).update(recipient=[_response(b)["patient"]]), "cr.recipient"),
    ("ask answered by the insurer", lambda b: _asked(b).update(sender=_response(b)["patient"]), "cr.sender"),
    ("ask for a line not on the Claim", lambda b: _asked(b)["extension"][0].update(valuePositiveInt=99), "cr.line"),
]  # fmt: skip


def _asked(b: JSON) -> JSON:
    """The answer's first documentation request (a contained PASCommunicationRequest)."""
    asked: JSON = _response(b)["contained"][0]
    return asked


def test_the_submit_answer_breaks_no_rule(answered: tuple[JSON, JSON], certified: tuple[JSON, JSON]) -> None:
    assert response_faults(*answered) == [] and response_faults(*certified) == []


@pytest.mark.parametrize(("change", "rule"), [b[1:] for b in RESPONSE_BREAKS], ids=[b[0] for b in RESPONSE_BREAKS])
def test_a_response_broken_in_one_rule_is_named(certified: tuple[JSON, JSON], change: Change, rule: str) -> None:
    bundle, claim = certified
    broken = _broken(bundle, change)
    expected = str(RESPONSE_BUNDLE[rule[2:]] if rule.startswith("B:") else RULES[rule])
    assert expected in {f.rule for f in response_faults(broken, claim)}


# --- inquiries ------------------------------------------------------------------------------------------


INQUIRY_BREAKS: list[tuple[str, Change, str]] = [
    ("no Bundle identifier", lambda b: b.pop("identifier"), "B:identifier"),
    ("no timestamp", lambda b: b.pop("timestamp"), "B:timestamp"),
    ("two Claims", lambda b: b["entry"].append({"fullUrl": "urn:uuid:0-3", "resource": _claim(b)}), "B:slice"),
    ("no insurer", lambda b: _claim(b).pop("insurer"), "claim.insurer"),
    ("use = claim", lambda b: _claim(b).update(use="claim"), "claim.use"),
    ("two identifiers", lambda b: _claim(b)["identifier"].append({"system": "urn:x", "value": "2"}),
     "inquiry.identifier"),
    ("no member id", lambda b: (b["entry"][1]["resource"].update(identifier=[{"system": "urn:x", "value": "p"}]),
                                _first(b, "Coverage").update(identifier=[{"system": "urn:x", "value": "c"}])),
     "inquiry.member"),
    ("no NPI", lambda b: b["entry"][3]["resource"].pop("identifier", None), "inquiry.provider"),
]  # fmt: skip


@pytest.mark.parametrize(("change", "rule"), [b[1:] for b in INQUIRY_BREAKS], ids=[b[0] for b in INQUIRY_BREAKS])
def test_inquire_refuses_what_is_not_a_pas_inquiry_naming_the_rule(
    client: TestClient, change: Change, rule: str
) -> None:
    inquiry = _broken(_inquiry(MULTI), change)
    refused = client.post("/fhir/Claim/$inquire", content=json.dumps(inquiry), headers=auth(TOKEN))
    assert refused.status_code == 400, refused.text
    expected = str(INQUIRY_BUNDLE[rule[2:]] if rule.startswith("B:") else RULES[rule])
    assert expected in {issue["diagnostics"] for issue in refused.json()["issue"]}


def test_every_rule_has_a_test_that_breaks_it() -> None:
    tested = {b[3] for b in BREAKS} | {b[3] for b in AT_THE_EDGE} | {b[2] for b in RESPONSE_BREAKS}
    tested |= {b[2] for b in INQUIRY_BREAKS}
    keys = {k for k in RULES} | {f"B:{k}" for k in REQUEST_BUNDLE}
    assert keys - tested == set()
    assert {f"B:{k}" for k in RESPONSE_BUNDLE} - tested == set()


def test_a_physicians_a6_adds_what_the_claim_item_names_coded() -> None:
    """The addItem of a physician's modification carries its Claim item's PAS-coded service (ClaimResponse.fsh
    :81), so the new version conforms like the first."""
    request = copy.deepcopy(MULTI)
    decided = decide(request, policy=DEFAULT_POLICY)
    task = decided.reviews[0].resource
    sequence = first_input(task, "item-sequence")
    _, final = apply_decision(task, decided.response, read_decision(_completed(task, "A6", quantity=1), task))
    (added,) = final["addItem"]
    claim_item = next(i for i in _claim(request)["item"] if i["sequence"] == sequence)
    assert added["productOrService"] == claim_item["productOrService"]
    bundle = response_bundle(final, "urn:uuid:00000000-0000-4000-8000-000000000010", request,
                             timestamp=final["meta"]["lastUpdated"])  # fmt: skip
    assert response_faults(bundle, _claim(request)) == []
