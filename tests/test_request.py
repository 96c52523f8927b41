"""A request as the edge read it: indexed once, its Claim and Patient found, its stored copy indexed as it is
made; a $submit validates each resource once and indexes the request once."""

from __future__ import annotations

import copy
import inspect
import json
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from adapter.config import load_settings
from adapter.errors import MappingError
from adapter.fhir import inbound, navigate
from adapter.fhir.request import RequestBundle
from adapter.service import wire
from tests.conftest import auth

SUBMIT = json.loads((Path(__file__).parent.parent / "fixtures" / "http" / "claim-submit.json").read_text())
TOKEN = "ehr-token"


def test_a_pas_request_names_its_claim_and_patient() -> None:
    request = RequestBundle.of(SUBMIT)
    assert request.shape == "pas"
    assert request.claim is SUBMIT["entry"][0]["resource"]
    assert request.patient is not None and request.patient["resourceType"] == "Patient"
    assert [where for where, _ in request.entries] == [e["fullUrl"] for e in SUBMIT["entry"]]
    assert request.index.find(request.claim["patient"]) is request.patient


def test_a_service_request_alone_and_what_is_no_request() -> None:
    alone = {"resourceType": "ServiceRequest", "id": "1", "status": "active", "intent": "order"}
    request = RequestBundle.of(alone)
    assert (request.shape, request.claim, request.entries) == ("service-request", None, [("ServiceRequest/1", alone)])
    with pytest.raises(MappingError):
        RequestBundle.of({"resourceType": "Patient"})


def test_the_stored_copy_resolves_under_its_own_ids() -> None:
    original = copy.deepcopy(SUBMIT)
    stored = RequestBundle.of(SUBMIT).localized("seed", "http://service.test/fhir")
    assert SUBMIT == original  # the request itself is left as it came
    assert stored.claim is not None and stored.patient is not None
    assert stored.claim["patient"] == {"reference": f"Patient/{stored.patient['id']}"}
    assert stored.index.find(stored.claim["patient"]) is stored.patient
    assert all(where.startswith("http://service.test/fhir/") for where, _ in stored.entries)
    again = RequestBundle.of(SUBMIT).localized("seed", "http://service.test/fhir")
    assert [w for w, _ in again.entries] == [w for w, _ in stored.entries]  # the same request, the same ids


@pytest.fixture
def client(tmp_path: Path) -> Iterator[TestClient]:
    settings = load_settings(service={"tokens": {TOKEN: "system/Claim.write system/ClaimResponse.read"},
                                      "state_url": f"sqlite:///{tmp_path}/state.db", "forward": False})  # fmt: skip
    with TestClient(wire(settings).app()) as test_client:
        yield test_client


def test_a_submit_validates_each_resource_once_and_indexes_the_request_once(
    client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    validated: Counter[int] = Counter()
    check = inbound.check_resource

    def counted(resource: Any, *args: Any, **kwargs: Any) -> None:
        validated[id(resource)] += 1
        check(resource, *args, **kwargs)

    indexed: list[int] = []
    index = navigate.Index.__init__

    def counted_index(self: navigate.Index, resources: Any) -> None:
        index(self, resources)
        indexed.append(len(self.all))

    monkeypatch.setattr(inbound, "check_resource", counted)
    monkeypatch.setattr(navigate.Index, "__init__", counted_index)
    answer = client.post("/fhir/Claim/$submit", content=json.dumps(SUBMIT), headers=auth(TOKEN))
    assert answer.status_code == 200
    assert set(validated.values()) == {1} and len(validated) == len(SUBMIT["entry"]) + 1  # and the Bundle's shell
    # the request's index, its stored copy's (made with it); the response Bundle's own (the answer and what it
    # refers to) is a third
    held = len(SUBMIT["entry"])
    assert indexed[:2] == [held, held] and len(indexed) == 3


def test_requests_are_determined_off_the_event_loop() -> None:
    """The routes that determine (the evidence pass: tens of milliseconds of CPU for a text never read) are
    ``def`` routes, run in the bounded thread pool, never ``async`` on the event loop."""
    from adapter.service.routes import attachments, requests

    determining = [requests.submit, requests.post_service_request, attachments.submit_attachment]
    assert not any(inspect.iscoroutinefunction(route) for route in determining)
