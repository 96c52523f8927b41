"""The Da Vinci DTR questionnaires of the documentation criteria (``GET /fhir/Questionnaire``), and the facts their
answers state: served valid R4, one per criterion that names facts, searchable as FHIR says; a
QuestionnaireResponse read into typed facts, or refused with a stable code."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from fhir.resources.R4B.questionnaire import Questionnaire

from adapter.config import load_settings
from adapter.determination import RequestFacts
from adapter.determination.documentation import DOCUMENTATION
from adapter.determination.stated import Stated, with_stated
from adapter.errors import InputLimitError, MappingTableError
from adapter.fhir.questionnaires import (
    MAX_NOTE,
    PROFILE,
    QuestionnaireAnswerError,
    QuestionnaireUnknownError,
    QuestionTable,
    questionnaire,
    questionnaires,
    stated_facts,
)
from adapter.fhir.schema import schema_valid
from adapter.service import wire
from adapter.tables import DEFAULT_MAPPINGS, load_table, mappings

JSON = dict[str, Any]


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    state = tmp_path_factory.mktemp("state") / "state.db"
    tokens = {"t": "system/Claim.write", "r": "system/Questionnaire.read"}
    settings = load_settings(service={"tokens": tokens, "state_url": f"sqlite:///{state}",
                                      "forward": False, "rate_limit": 10_000})  # fmt: skip
    with TestClient(wire(settings).app()) as test_client:
        yield test_client


def answered(criterion: str, answers: dict[str, Any], note: str | None = None) -> JSON:
    """A completed QuestionnaireResponse to the adapter's questionnaire for ``criterion``, with a note if given."""
    found = questionnaire(criterion)
    assert found is not None
    kinds = {bool: "valueBoolean", int: "valueInteger", str: "valueString"}
    items = [{"linkId": link, "answer": [{kinds[type(v)]: v}]} for link, v in answers.items()]
    items += [{"linkId": "note", "answer": [{"valueString": note}]}] if note is not None else []
    canonical = f"{found['url']}|{found['version']}"
    return {"resourceType": "QuestionnaireResponse", "status": "completed", "questionnaire": canonical,
            "item": [{"linkId": criterion, "item": items}]}  # fmt: skip


def test_one_valid_dtr_questionnaire_per_criterion_with_facts(client: TestClient) -> None:
    criteria = mappings()[DOCUMENTATION].criteria
    found = client.get("/fhir/Questionnaire", params={"_count": 100})
    assert found.status_code == 200 and found.headers["content-type"].startswith("application/fhir+json")
    bundle = found.json()
    assert bundle["type"] == "searchset" and schema_valid(bundle)
    served = [e["resource"] for e in bundle["entry"]]
    assert [q["id"] for q in served] == [c for c, criterion in criteria.items() if criterion.facts]
    assert bundle["total"] == len(served)
    for resource in served:
        assert schema_valid(resource), resource["id"]
        Questionnaire.model_validate(resource)
        # DTR dtr-std-questionnaire: profile, subjectType Patient, items with text; a canonical url and version
        assert resource["meta"]["profile"] == [PROFILE] and resource["subjectType"] == ["Patient"]
        assert resource["url"].endswith(f"/Questionnaire/{resource['id']}") and resource["version"]
        criterion = criteria[resource["id"]]
        (group,) = resource["item"]
        assert (group["linkId"], group["type"], group["text"]) == (resource["id"], "group", criterion.question)
        assert [i["linkId"] for i in group["item"]] == [*criterion.facts, "note"]
        assert all(i["text"] for i in group["item"])
        types = {i["linkId"]: i["type"] for i in group["item"]}
        assert types["note"] == "text" and set(types.values()) <= {"boolean", "integer", "text"}
        assert [c["code"] for c in resource["code"]] == criterion.loinc
        read = client.get(f"/fhir/Questionnaire/{resource['id']}")
        assert read.status_code == 200 and read.json() == resource
    assert "treatment-plan" not in {q["id"] for q in served}  # it names no fact an answer could state
    assert client.get("/fhir/Questionnaire/treatment-plan").status_code == 404
    assert client.get("/fhir/Questionnaire/no-such-criterion").json()["resourceType"] == "OperationOutcome"


def test_questionnaires_are_searched_as_fhir_says(client: TestClient) -> None:
    def ids(**params: str) -> list[str]:
        response = client.get("/fhir/Questionnaire", params={**params, "_count": "100"})
        assert response.status_code == 200, response.text
        return [e["resource"]["id"] for e in response.json().get("entry", [])]

    target = questionnaire("functional-improvement")
    assert target is not None
    assert ids(url=target["url"]) == ["functional-improvement"]
    assert ids(url=f"{target['url']}|{target['version']}") == ["functional-improvement"]
    assert ids(url=f"{target['url']}|0.0.0") == []
    assert ids(_id="red-flags,gi-risk") == ["red-flags", "gi-risk"]
    assert ids(name="functionalimp") == ["functional-improvement"]  # a string: case-insensitive, starts with
    assert "functional-improvement" in ids(code="http://loinc.org|47420-5")  # the LOINC code the ask names
    assert ids(code="47420-5", title="documentation request: functional") == ["functional-improvement"]
    assert len(ids(status="active")) == len(questionnaires()) and ids(status="retired") == []
    assert ids(version=str(target["version"])) == [q["id"] for q in questionnaires()]
    assert client.get("/fhir/Questionnaire", params={"_summary": "count"}).json()["total"] == len(questionnaires())
    refused = client.get("/fhir/Questionnaire", params={"publisher": "x"})
    assert refused.status_code == 400 and refused.json()["issue"][0]["details"]["coding"][0]["code"] == "bad-search"


def test_the_capability_statement_offers_the_questionnaires(client: TestClient) -> None:
    resources = {r["type"]: r for r in client.get("/fhir/metadata").json()["rest"][0]["resource"]}
    assert resources["Questionnaire"]["profile"] == PROFILE
    assert [i["code"] for i in resources["Questionnaire"]["interaction"]] == ["read", "search-type"]


def test_answers_are_read_straight_into_facts() -> None:
    stated = stated_facts(answered("red-flags", {"red_flags": False, "fracture_signs": True}, "No saddle anesthesia."),
                          "QuestionnaireResponse/qr")  # fmt: skip
    assert [(s.fact, s.value) for s in stated] == [("red_flags", False), ("fracture_signs", True)]
    assert stated[0].source == "QuestionnaireResponse/qr#red_flags"
    assert stated[0].quote.endswith("No. No saddle anesthesia.") and stated[0].quote.startswith("Are there red flags")
    counts = stated_facts(answered("request-specified", {"requested_count": 6}), "QuestionnaireResponse/qr")
    assert [(s.fact, s.value) for s in counts] == [("requested_count", 6)]
    diagnosis = stated_facts(answered("diagnosis-indication", {"radicular_diagnosis": True}), "QR")
    facts = with_stated(RequestFacts(request="MRI lumbar spine", category="mri-spine"), [*stated, *counts, *diagnosis])
    assert (facts.red_flags, facts.fracture_signs, facts.requested_count) == ("absent", "present", 6)
    assert facts.radicular_diagnosis is True
    assert facts.evidence["red_flags"].status == "absent" and facts.evidence["red_flags"].quote == stated[0].quote
    # a later answer to a fact stands over an earlier one
    later = Stated(fact="red_flags", value=True, quote="Progressive weakness.", source="QR2")
    assert with_stated(facts, [later]).red_flags == "present"


@pytest.mark.parametrize(
    ("change", "error"),
    [
        (lambda r: r.update(questionnaire="http://payer.example/Questionnaire/red-flags"), QuestionnaireUnknownError),
        (lambda r: r.pop("questionnaire"), QuestionnaireUnknownError),
        (lambda r: r.update(status="in-progress"), QuestionnaireAnswerError),
        (lambda r: r["item"][0].update(linkId="gi-risk"), QuestionnaireAnswerError),
        (lambda r: r["item"].append(r["item"][0]), QuestionnaireAnswerError),
        (lambda r: r["item"][0]["item"][0].update(linkId="gi_risk"), QuestionnaireAnswerError),
        (lambda r: r["item"][0]["item"][0].update(answer=[{"valueCoding": {"code": "present"}}]),
         QuestionnaireAnswerError),
        (lambda r: r["item"][0]["item"][0].update(answer=[{"valueBoolean": True}, {"valueBoolean": False}]),
         QuestionnaireAnswerError),
        (lambda r: r["item"][0]["item"][0].update(answer=[]), QuestionnaireAnswerError),  # then nothing is answered
        (lambda r: r["item"][0]["item"].append({"linkId": "note", "answer": [{"valueString": "x" * (MAX_NOTE + 1)}]}),
         InputLimitError),
    ],
)  # fmt: skip
def test_a_bad_answer_is_refused_with_a_stable_code(change: Any, error: type[Exception]) -> None:
    response = answered("red-flags", {"red_flags": True})
    change(response)
    with pytest.raises(error):
        stated_facts(response, "QuestionnaireResponse/qr")
    count = answered("request-specified", {"requested_count": 0})
    with pytest.raises(QuestionnaireAnswerError, match="whole number"):
        stated_facts(count, "QuestionnaireResponse/qr")


def test_every_fact_a_criterion_names_has_a_question(tmp_path: Path) -> None:
    text = (DEFAULT_MAPPINGS / "questionnaires.yaml").read_text()
    context = {"documentation": mappings()[DOCUMENTATION]}
    assert load_table(DEFAULT_MAPPINGS / "questionnaires.yaml", QuestionTable, context=context).facts
    broken = tmp_path / "questionnaires.yaml"
    broken.write_text("\n".join(line for line in text.splitlines() if not line.startswith("  red_flags:")))
    with pytest.raises(MappingTableError, match="red_flags") as raised:
        load_table(broken, QuestionTable, context=context)
    assert str(broken) in str(raised.value.location)
    broken.write_text(text + "  age: How old is the patient?\n")
    with pytest.raises(MappingTableError, match="age"):
        load_table(broken, QuestionTable, context=context)


def _package_call(*parameters: JSON) -> JSON:
    coverage = {"resourceType": "Coverage", "id": "cov-1", "status": "active",
                "beneficiary": {"reference": "Patient/p-1"}, "payor": [{"display": "Insurer"}]}  # fmt: skip
    return {"resourceType": "Parameters", "parameter": [{"name": "coverage", "resource": coverage}, *parameters]}


def _order(text: str, rtype: str = "ServiceRequest") -> JSON:
    concept = {"text": text}
    field = {"ServiceRequest": "code", "MedicationRequest": "medicationCodeableConcept"}[rtype]
    return {"name": "order", "resource": {"resourceType": rtype, "id": "o-1", "status": "active",
                                          "intent": "order", "subject": {"reference": "Patient/p-1"},
                                          field: concept}}  # fmt: skip


def test_a_dtr_client_gets_the_questionnaire_package_of_its_orders(client: TestClient) -> None:
    """DTR ``$questionnaire-package``: for each order, the questionnaires of what the guideline asks for that
    service, each in a collection Bundle with the Questionnaire first and a draft QuestionnaireResponse naming it
    by version, for the Coverage's member, in the context of the Coverage and the orders; a canonical asked by
    name too, each questionnaire once; what is unknown a warning; a call without a Coverage refused."""
    headers = {"Authorization": "Bearer r", "Content-Type": "application/fhir+json"}
    wanted = questionnaire("functional-improvement")
    assert wanted is not None
    unknown = "http://example.org/Questionnaire/none"
    call = _package_call(_order("Physical therapy 2 times a week for 4 weeks for the low back"),
                         {"name": "questionnaire", "valueCanonical": wanted["url"]},
                         {"name": "questionnaire", "valueCanonical": unknown})  # fmt: skip
    answer = client.post("/fhir/Questionnaire/$questionnaire-package", json=call, headers=headers)
    assert answer.status_code == 200, answer.text
    out = answer.json()
    assert out["resourceType"] == "Parameters" and schema_valid(out)
    bundles = [p["resource"] for p in out["parameter"] if p["name"] == "packagebundle"]
    ids = [b["entry"][0]["resource"]["id"] for b in bundles]
    assert "functional-improvement" in ids and len(ids) == len(set(ids))  # asked twice, packaged once
    for bundle in bundles:
        assert bundle["type"] == "collection" and len(bundle["entry"]) == 2
        found, draft = (e["resource"] for e in bundle["entry"])
        assert draft["questionnaire"] == f"{found['url']}|{found['version']}" and draft["status"] == "in-progress"
        assert draft["subject"] == {"reference": "Patient/p-1"}
        assert [e["valueReference"]["reference"] for e in draft["extension"]] == [
            "Coverage/cov-1",
            "ServiceRequest/o-1",
        ]
    (outcome,) = [p["resource"] for p in out["parameter"] if p["name"] == "outcome"]
    assert [i["severity"] for i in outcome["issue"]] == ["warning"]
    assert "Questionnaire/none" in outcome["issue"][0]["details"]["text"]
    no_coverage = {"resourceType": "Parameters", "parameter": [_order("MRI of the lumbar spine")]}
    refused = client.post("/fhir/Questionnaire/$questionnaire-package", headers=headers, json=no_coverage)
    assert refused.status_code == 422
    assert refused.json()["issue"][0]["details"]["coding"][0]["code"] == "questionnaire-package-invalid"
    assert client.post("/fhir/Questionnaire/$questionnaire-package", json=call).status_code == 401
