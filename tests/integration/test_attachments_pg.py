"""The documentation round trip on PostgreSQL (the shared state of replicas): a PAS request pends and asks, a
CDex attachment stating improvement (a note, or the answers to the adapter's DTR questionnaire) makes the next
version with that line certified, a wrong member id changes nothing; and the service killed between keeping an
attachment and its new version loses nothing."""

from __future__ import annotations

import contextlib
import json
import signal
import threading
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from adapter import sandbox
from adapter.config import load_settings
from adapter.fhir.pas import review_action_code
from adapter.sandbox import free_port
from adapter.service import wire
from adapter.service.schema import claim_responses
from adapter.service.state import Store
from tests.conftest import auth
from tests.integration.test_service_e2e import FHIR, _env
from tests.integration.test_subscriptions_e2e import _wait
from tests.test_attachments import (
    EHR,
    IMPROVED,
    REVIEWER,
    _attachment,
    _items,
    _member,
    _recommended,
    _request,
    _submit,
    _supported,
)
from tests.test_questionnaires import answered

JSON = dict[str, Any]
#: The longest a start or a decision may take on a busy machine (a bound, not an expectation).
STARTUP = 180.0


@pytest.fixture(scope="module")
def postgres() -> Iterator[str]:
    """A PostgreSQL database of this module's own on the sandbox server (dropped after), at the newest schema."""
    with sandbox.scratch_database(load_settings().sandbox) as url:
        yield url


@pytest.fixture
def client(postgres: str) -> Iterator[TestClient]:
    settings = load_settings(service={
        "tokens": {EHR: "system/*.*", REVIEWER: "user/Task.read user/Task.write user/ClaimResponse.read"},
        "state_url": postgres, "forward": False, "rate_limit": 10_000,
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


def test_a_questionnaire_response_round_trip_on_postgres(client: TestClient) -> None:
    request = _request()
    response = _submit(client, request)["entry"][0]["resource"]
    body = _attachment(f"{response['id']}-1", _member(request), IMPROVED)
    body["parameter"][4]["part"][2]["resource"] = answered("functional-improvement", {"functional_improvement": True})
    sent = client.post("/fhir/$submit-attachment", content=json.dumps(body), headers=auth(EHR))
    assert sent.status_code == 200, sent.text
    after = client.get(f"/fhir/ClaimResponse/{response['id']}", headers=auth(EHR)).json()
    assert review_action_code(_items(after)[1]["adjudication"]) == "A1"
    assert _items(after)[2] == _items(response)[2]


def test_dtr_answers_sent_with_the_first_claim_are_kept_and_read_again_on_postgres(client: TestClient) -> None:
    """Answers the first Claim names for a line certify it; the answers kept with the request on PostgreSQL are
    read again when an attachment decides the line again (no improvement: still the physician's, quoted)."""
    yes = _supported(_request(), answered("functional-improvement", {"functional_improvement": True}), (1,))
    assert review_action_code(_items(_submit(client, yes)["entry"][0]["resource"])[1]["adjudication"]) == "A1"
    request = _supported(_request(), answered("functional-improvement", {"functional_improvement": False}), (1,))
    response = _submit(client, request)["entry"][0]["resource"]
    body = _attachment(f"{response['id']}-1", _member(request), "Progress note. Low back pain, 5/10 today.")
    assert client.post("/fhir/$submit-attachment", content=json.dumps(body), headers=auth(EHR)).status_code == 200
    after = client.get(f"/fhir/ClaimResponse/{response['id']}", headers=auth(EHR)).json()
    assert after["meta"]["versionId"] == "2" and _recommended(_items(after)[1]) == "A3"
    assert "objective functional improvement" in json.dumps(_items(after)[1]["extension"])


def test_a_service_killed_between_the_attachment_and_its_new_version_loses_nothing(postgres: str) -> None:
    """The attachment is kept before it is decided: the service killed (SIGKILL) after keeping it and before the
    new version commits (held back here by a lock on the answer's row) leaves the answer as it was, and the
    service started again decides it, once."""
    url = postgres
    env = {**_env(url), "IMR_SERVICE__POLL_SECONDS": "600"}  # the restart's first pass, not a later one, decides
    port = free_port()
    base = f"http://127.0.0.1:{port}/fhir"
    store = Store(url)
    first = sandbox.start_service(env, port, timeout=STARTUP)
    try:
        request = _request()
        submitted = httpx.post(f"{base}/Claim/$submit", content=json.dumps(request), headers=FHIR, timeout=60)
        assert submitted.status_code == 200, submitted.text
        response = submitted.json()["entry"][0]["resource"]
        body = _attachment(f"{response['id']}-1", _member(request), IMPROVED)
        with store.engine.connect() as locked:
            locked.execute(select(claim_responses.c.id).where(claim_responses.c.id == response["id"]).with_for_update())
            sender = threading.Thread(target=_post_quietly, args=(f"{base}/$submit-attachment", body), daemon=True)
            sender.start()
            _wait(
                lambda: any(held.tracking.endswith(f"|{response['id']}-1") for held in store.held_attachments()),
                timeout=STARTUP,
            )
            first.send_signal(signal.SIGKILL)
            first.wait(timeout=15)
            locked.rollback()
        assert store.claim_response(response["id"]) == response
    finally:
        first.kill()
        first.wait(timeout=15)
    second = sandbox.start_service(env, port, timeout=STARTUP)
    try:
        _wait(lambda: (store.claim_response(response["id"]) or {})["meta"]["versionId"] == "2", timeout=STARTUP)
        after = httpx.get(f"{base}/ClaimResponse/{response['id']}", headers=FHIR, timeout=30).json()
        assert review_action_code(_items(after)[1]["adjudication"]) == "A1"
        assert _items(after)[2] == _items(response)[2]
        assert store.held_attachments() == []
    finally:
        second.send_signal(signal.SIGINT)
        second.wait(timeout=15)
        store.close()


def _post_quietly(url: str, body: JSON) -> None:
    """A submission whose answer never comes (the service is killed while it is decided)."""
    with contextlib.suppress(httpx.HTTPError):
        httpx.post(url, content=json.dumps(body), headers=FHIR, timeout=60)
