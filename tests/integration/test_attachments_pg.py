"""The documentation round trip on PostgreSQL (the shared state of replicas): a PAS request pends and asks, a
CDex attachment stating improvement makes the next version with that line certified, a wrong member id
changes nothing."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from adapter.config import load_settings
from adapter.fhir.pas import review_action_code
from adapter.service import wire
from tests.conftest import auth
from tests.test_attachments import EHR, IMPROVED, REVIEWER, _attachment, _items, _member, _request, _submit


@pytest.fixture
def client() -> Iterator[TestClient]:
    url = load_settings().sandbox.postgres_url
    settings = load_settings(service={
        "tokens": {EHR: "system/*.*", REVIEWER: "user/Task.read user/Task.write user/ClaimResponse.read"},
        "state_url": url, "forward": False, "rate_limit": 10_000,
    })  # fmt: skip
    with TestClient(wire(settings).app()) as test_client:
        yield test_client


def test_the_attachment_round_trip_on_postgres(client: TestClient) -> None:
    request = _request()
    response = _submit(client, request)["entry"][0]["resource"]
    wrong = _attachment(f"{response['id']}-1", {**_member(request), "value": "somebody-else"}, IMPROVED)
    assert client.post("/fhir/$submit-attachment", content=json.dumps(wrong), headers=auth(EHR)).status_code == 422
    assert client.get(f"/fhir/ClaimResponse/{response['id']}", headers=auth(EHR)).json() == response
    body = json.dumps(_attachment(f"{response['id']}-1", _member(request), IMPROVED))
    sent = client.post("/fhir/$submit-attachment", content=body, headers=auth(EHR))
    assert sent.status_code == 200, sent.text
    after = client.get(f"/fhir/ClaimResponse/{response['id']}", headers=auth(EHR)).json()
    assert after["meta"]["versionId"] == "2"
    assert review_action_code(_items(after)[1]["adjudication"]) == "A1"
    assert _items(after)[2] == _items(response)[2]
    again = client.post("/fhir/$submit-attachment", content=body, headers=auth(EHR))
    assert again.headers["content-location"].endswith("/_history/2")
