"""PAS Claim updates through $submit: the next version of the same ClaimResponse, decided items and their
Tasks kept, changed items determined again, cancelled ones out, their Tasks cancelled, pend numbers kept."""

from __future__ import annotations

import copy
import json
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from adapter import parse_letter
from adapter.config import load_settings
from adapter.fhir.build import pas_bundle
from adapter.fhir.conformance import response_faults
from adapter.fhir.pas import PAS, review_action_code
from adapter.review.tasks import response_of, sequence_of
from adapter.service import wire
from adapter.tables import mappings
from tests.conftest import LETTERS, auth
from tests.test_review import _completed

JSON = dict[str, Any]
EHR, REVIEWER = "update-ehr", "update-reviewer"
PROFILE = "http://hl7.org/fhir/us/davinci-pas/StructureDefinition/profile-claim-update"
PRIOR = {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/ex-relatedclaimrelationship", "code": "prior"}]}


@pytest.fixture
def client(tmp_path: Path) -> Iterator[TestClient]:
    settings = load_settings(service={
        "tokens": {EHR: "system/*.*", REVIEWER: "user/Task.read user/Task.write user/ClaimResponse.read"},
        "state_url": f"sqlite:///{tmp_path}/state.db", "forward": False, "rate_limit": 10_000,
    })  # fmt: skip
    with TestClient(wire(settings).app()) as test_client:
        yield test_client


def _request() -> JSON:
    """A PAS request (2014 variant: two items, both pended for a physician) under a case number of its own."""
    case = parse_letter((LETTERS / "2014-variant.txt").read_bytes())
    case.case_number = f"CM91-{uuid.uuid4().int % 10**7:07d}"
    return pas_bundle(case)


def _tasks(client: TestClient, response: JSON) -> list[JSON]:
    found = client.get("/fhir/Task", params={"focus": response["request"]["reference"], "_count": 100},
                       headers=auth(REVIEWER)).json()  # fmt: skip
    return [e["resource"] for e in found.get("entry", [])]


def _update(request: JSON, *, changed: dict[int, JSON] | None = None, cancelled: tuple[int, ...] = ()) -> JSON:
    """A Claim update of ``request``: all its items, ``changed`` ones (by sequence) with new details and the
    infoChanged flag, ``cancelled`` ones with infoCancelled; the earlier Claim included (spec-65)."""
    ext = mappings()[PAS].extensions
    update = copy.deepcopy(request)
    earlier = copy.deepcopy(update["entry"][0])
    earlier["fullUrl"] = "urn:uuid:00000000-0000-4000-8000-0000000000e1"
    claim = update["entry"][0]["resource"]
    claim["meta"] = {"profile": [PROFILE]}
    claim["identifier"] = [{"system": "urn:trnorg:ehr", "value": f"update-{uuid.uuid4()}"}]
    claim["related"] = [{"relationship": PRIOR, "claim": {"reference": earlier["fullUrl"]}}]
    for item in claim["item"]:
        if item["sequence"] in (changed or {}):
            item.update(changed[item["sequence"]])  # type: ignore[index]
            item["extension"].append({"url": ext.info_changed, "valueCode": "changed"})
        if item["sequence"] in cancelled:
            item["modifierExtension"] = [{"url": ext.info_cancelled, "valueBoolean": True}]
            item["extension"].append({"url": ext.info_changed, "valueCode": "changed"})
    update["entry"].append(earlier)
    return update


def test_an_update_is_the_next_version_keeping_what_was_decided(client: TestClient) -> None:
    request = _request()
    first = client.post("/fhir/Claim/$submit", content=json.dumps(request), headers=auth(EHR)).json()
    response = first["entry"][0]["resource"]
    assert response["disposition"] == "A4, A4"
    by_sequence = {sequence_of(t): t for t in _tasks(client, response)}
    one, two = sorted(by_sequence)
    pend_number = [e for e in response["item"] if e["itemSequence"] == two][0]["adjudication"]
    # a physician decides the first item; the update then changes the second and adds nothing else
    decided = client.put(f"/fhir/Task/{by_sequence[one]['id']}", content=json.dumps(
        _completed(by_sequence[one], "A3")), headers=auth(REVIEWER))  # fmt: skip
    assert decided.status_code == 200, decided.text

    unchanged = client.post("/fhir/Claim/$submit", content=json.dumps(_update(request)), headers=auth(EHR))
    assert unchanged.status_code == 200, unchanged.text
    kept = unchanged.json()["entry"][0]["resource"]
    assert (kept["id"], kept["meta"]["versionId"]) == (response["id"], "3")
    items = {i["itemSequence"]: i for i in kept["item"]}
    assert review_action_code(items[one]["adjudication"]) == "A3"  # the physician's decision stands
    assert items[two]["adjudication"] == pend_number  # pended, with its pend reference number
    assert [t["status"] for t in _tasks(client, response) if sequence_of(t) == two] == ["requested"]
    assert response_faults(unchanged.json(), request["entry"][0]["resource"]) == []

    cancel = _update(request, cancelled=(two,))
    cancelled = client.post("/fhir/Claim/$submit", content=json.dumps(cancel), headers=auth(EHR)).json()
    final = cancelled["entry"][0]["resource"]
    assert (final["id"], final["meta"]["versionId"], final["outcome"]) == (response["id"], "4", "complete")
    assert [i["itemSequence"] for i in final["item"]] == [one]
    assert any(f"Item {two} cancelled" in n["text"] for n in final["processNote"])
    statuses = {sequence_of(t): t["status"] for t in _tasks(client, response)}
    assert statuses == {one: "completed", two: "cancelled"}
    assert all(response_of(t) == response["id"] for t in _tasks(client, response))
    # sent again, the same update gets the version it made; the history holds every version
    again = client.post("/fhir/Claim/$submit", content=json.dumps(cancel), headers=auth(EHR)).json()
    assert again["entry"][0]["resource"]["meta"]["versionId"] == "4"
    history = client.get(f"/fhir/ClaimResponse/{response['id']}/_history", headers=auth(EHR)).json()
    assert [e["resource"]["meta"]["versionId"] for e in history["entry"]] == ["4", "3", "2", "1"]


def test_a_changed_item_is_determined_again_and_its_task_replaced(client: TestClient) -> None:
    request = _request()
    response = client.post("/fhir/Claim/$submit", content=json.dumps(request), headers=auth(EHR)).json()[
        "entry"][0]["resource"]  # fmt: skip
    before = {sequence_of(t): t for t in _tasks(client, response)}
    two = max(before)
    update = _update(request, changed={two: {"quantity": {"value": 1}}})
    answer = client.post("/fhir/Claim/$submit", content=json.dumps(update), headers=auth(EHR))
    assert answer.status_code == 200, answer.text
    assert answer.json()["entry"][0]["resource"]["meta"]["versionId"] == "2"
    after = [t for t in _tasks(client, response) if sequence_of(t) == two]
    assert {t["id"] for t in after if t["status"] == "cancelled"} == {before[two]["id"]}
    assert len([t for t in after if t["status"] == "requested"]) == 1  # pended again: a new Task


def test_an_update_of_a_claim_not_submitted_here_is_refused(client: TestClient) -> None:
    refused = client.post("/fhir/Claim/$submit", content=json.dumps(_update(_request())), headers=auth(EHR))
    assert refused.status_code == 422 and "not submitted here" in refused.text


def test_cancelling_the_whole_request_cancels_every_item_and_task(client: TestClient) -> None:
    """certificationType 3 (Cancel) on the Claim update itself: every item leaves the answer, every open Task
    is cancelled (specification.md, Updating Authorization Requests)."""
    request = _request()
    response = client.post("/fhir/Claim/$submit", content=json.dumps(request), headers=auth(EHR)).json()[
        "entry"][0]["resource"]  # fmt: skip
    update = _update(request)
    pas = mappings()[PAS]
    cancel = {"system": pas.code_systems.certification_type, "code": "3", "display": "Cancel"}
    update["entry"][0]["resource"]["extension"] = [
        {"url": pas.extensions.certification_type, "valueCodeableConcept": {"coding": [cancel]}}
    ]
    answer = client.post("/fhir/Claim/$submit", content=json.dumps(update), headers=auth(EHR))
    assert answer.status_code == 200, answer.text
    final = answer.json()["entry"][0]["resource"]
    assert (final["id"], final["meta"]["versionId"], final["outcome"]) == (response["id"], "2", "complete")
    assert "item" not in final and final["disposition"] == "Cancelled by the requester"
    assert {t["status"] for t in _tasks(client, response)} == {"cancelled"}
