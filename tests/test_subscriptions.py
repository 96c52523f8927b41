"""PAS subscriptions: who may subscribe and to what, the handshake, one notification per new version of an
answer with the full PAS response Bundle, in order, kept while the receiver is down, $events and $status."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient

from adapter.config import load_settings
from adapter.fhir.conformance import response_faults
from adapter.review.tasks import sequence_of
from adapter.service import wire
from adapter.service.state import Store
from adapter.service.subscriptions import CONTENT, FILTER, HEARTBEAT, TOPIC, TRANSMISSION, Notifier
from tests.conftest import auth
from tests.test_review import _completed
from tests.test_updates import _request

JSON = dict[str, Any]
EHR, OTHER, REVIEWER = "sub-ehr", "sub-other", "sub-reviewer"
ENDPOINT = "http://receiver.test/notify"
PUSHED = "http://receiver.test/pushed"
BASE = "http://adapter.test/fhir"


def _service(tmp_path: Path, senders: JSON | None = None) -> Iterator[tuple[TestClient, Store]]:
    settings = load_settings(service={
        "tokens": {EHR: "system/*.*", OTHER: "system/*.*",
                   REVIEWER: "user/Task.read user/Task.write user/ClaimResponse.read"},
        "state_url": f"sqlite:///{tmp_path}/state.db", "forward": False, "rate_limit": 10_000,
        "subscription_endpoints": ["http://receiver.test/"], "notify": False, "base_url": BASE,
        "senders": senders or {},
    })  # fmt: skip
    wiring = wire(settings)
    with TestClient(wiring.app()) as client:
        yield client, wiring.store


@pytest.fixture
def service(tmp_path: Path) -> Iterator[tuple[TestClient, Store]]:
    yield from _service(tmp_path)


@pytest.fixture
def configured(tmp_path: Path) -> Iterator[tuple[TestClient, Store]]:
    """OTHER speaks for SENDER-9 (no endpoint); SENDER-7's notifications are pushed to PUSHED, EHR its client."""
    yield from _service(tmp_path, {"SENDER-9": {"clients": [OTHER]},
                                   "SENDER-7": {"clients": [EHR], "endpoint": PUSHED}})  # fmt: skip


class Receiver:
    """A rest-hook endpoint: what it was sent, answering 200 (or 503 while ``down``)."""

    def __init__(self) -> None:
        self.got: list[JSON] = []
        self.down = False

    def __call__(self, request: httpx.Request) -> httpx.Response:
        if self.down:
            return httpx.Response(503)
        self.got.append(json.loads(request.content))
        return httpx.Response(200)


def _sent_by(sender: str) -> JSON:
    request = _request()
    request["entry"][0]["resource"]["extension"] = [{"url": TRANSMISSION, "extension": [
        {"url": "applicationSenderCode", "valueString": sender},
        {"url": "applicationReceiverCode", "valueString": "IMR-ADAPTER"}]}]  # fmt: skip
    return request


def _subscription(org: str = "SENDER-1", **changes: Any) -> JSON:
    subscription: JSON = {
        "resourceType": "Subscription", "status": "requested", "reason": "PAS results for my organization",
        "criteria": TOPIC, "_criteria": {"extension": [{"url": FILTER, "valueString": f"orgIdentifier={org}"}]},
        "channel": {"type": "rest-hook", "endpoint": ENDPOINT, "payload": "application/fhir+json",
                    "_payload": {"extension": [{"url": CONTENT, "valueCode": "full-resource"}]}},
    }  # fmt: skip
    subscription.update(changes)
    return subscription


def _event_numbers(bundle: JSON) -> list[str]:
    status = bundle["entry"][0]["resource"]
    return [p["valueString"] for e in status["parameter"] if e["name"] == "notification-event"
            for p in e["part"] if p["name"] == "event-number"]  # fmt: skip


def test_a_subscriber_hears_of_each_new_version_once_in_order(service: tuple[TestClient, Store]) -> None:
    client, store = service
    request = _sent_by("SENDER-1")
    submitted = client.post("/fhir/Claim/$submit", content=json.dumps(request), headers=auth(EHR)).json()
    response = submitted["entry"][0]["resource"]
    # who may subscribe, and to what
    foreign = client.post("/fhir/Subscription", content=json.dumps(_subscription()), headers=auth(OTHER))
    assert foreign.status_code == 403  # OTHER sent nothing for SENDER-1
    for bad in (_subscription(criteria="http://example.org/other-topic"),
                _subscription(channel={**_subscription()["channel"], "endpoint": "http://elsewhere.test/"}),
                _subscription(channel={**_subscription()["channel"], "_payload": {"extension": [
                    {"url": CONTENT, "valueCode": "id-only"}]}})):  # fmt: skip
        refused = client.post("/fhir/Subscription", content=json.dumps(bad), headers=auth(EHR))
        assert refused.status_code == 422, bad
    made = client.post("/fhir/Subscription", content=json.dumps(_subscription()), headers=auth(EHR))
    assert made.status_code == 201 and made.json()["status"] == "requested"
    sid = made.json()["id"]
    assert client.get(f"/fhir/Subscription/{sid}", headers=auth(OTHER)).status_code == 404

    receiver = Receiver()
    notifier = Notifier(store, BASE, client=httpx.Client(transport=httpx.MockTransport(receiver)), backoff=0)
    assert notifier.send_due() == 1  # the handshake: the subscription is then active
    assert receiver.got[0]["entry"][0]["resource"]["parameter"][3] == {"name": "type", "valueCode": "handshake"}
    assert client.get(f"/fhir/Subscription/{sid}", headers=auth(EHR)).json()["status"] == "active"

    # a physician decides both pended items, the receiver down for the first: nothing lost, in order, once
    tasks = sorted((e["resource"] for e in client.get("/fhir/Task", headers=auth(REVIEWER)).json()["entry"]),
                   key=sequence_of)  # fmt: skip
    receiver.down = True
    for task in tasks:
        done = client.put(f"/fhir/Task/{task['id']}", content=json.dumps(_completed(task, "A3")),
                          headers=auth(REVIEWER))  # fmt: skip
        assert done.status_code == 200, done.text
    assert notifier.send_due() == 0
    receiver.down = False
    while notifier.send_due():
        pass
    events = receiver.got[1:]
    assert [_event_numbers(b) for b in events] == [["1"], ["2"]]
    versions = [b["entry"][1]["resource"]["entry"][0]["resource"]["meta"]["versionId"] for b in events]
    assert versions == ["2", "3"]
    for bundle in events:
        assert bundle["type"] == "history"
        assert response_faults(bundle["entry"][1]["resource"], request["entry"][0]["resource"]) == []
    assert notifier.send_due() == 0  # each once

    missed = client.get(f"/fhir/Subscription/{sid}/$events", params={"eventsSinceNumber": 2}, headers=auth(EHR))
    assert _event_numbers(missed.json()) == ["2"] and missed.json()["entry"][1]["resource"]["entry"][0][
        "resource"]["id"] == response["id"]  # fmt: skip
    status = client.get(f"/fhir/Subscription/{sid}/$status", headers=auth(EHR)).json()["entry"][0]["resource"]
    assert {"name": "events-since-subscription-start", "valueString": "2"} in status["parameter"]
    assert client.delete(f"/fhir/Subscription/{sid}", headers=auth(OTHER)).status_code == 404
    assert client.delete(f"/fhir/Subscription/{sid}", headers=auth(EHR)).status_code == 204
    assert client.get(f"/fhir/Subscription/{sid}", headers=auth(EHR)).status_code == 404


def test_another_sending_systems_answers_are_not_sent(service: tuple[TestClient, Store]) -> None:
    client, store = service
    for sender in ("SENDER-1", "SENDER-2"):
        assert client.post("/fhir/Claim/$submit", content=json.dumps(_sent_by(sender)), headers=auth(EHR)).is_success
    assert client.post("/fhir/Subscription", content=json.dumps(_subscription("SENDER-2")),
                       headers=auth(EHR)).status_code == 201  # fmt: skip
    receiver = Receiver()
    notifier = Notifier(store, BASE, client=httpx.Client(transport=httpx.MockTransport(receiver)), backoff=0)
    notifier.send_due()
    for entry in client.get("/fhir/Task", headers=auth(REVIEWER)).json()["entry"]:
        task = entry["resource"]
        client.put(f"/fhir/Task/{task['id']}", content=json.dumps(_completed(task, "A3")), headers=auth(REVIEWER))
    while notifier.send_due():
        pass
    answered = {b["entry"][1]["resource"]["entry"][0]["resource"]["id"] for b in receiver.got[1:]}
    assert len(answered) == 1 and len(receiver.got) == 3  # the handshake and SENDER-2's two versions


def test_a_quiet_subscription_gets_heartbeats_at_its_period(service: tuple[TestClient, Store]) -> None:
    client, store = service
    assert client.post("/fhir/Claim/$submit", content=json.dumps(_sent_by("SENDER-1")), headers=auth(EHR)).is_success
    channel = {**_subscription()["channel"], "extension": [{"url": HEARTBEAT, "valueUnsignedInt": 60}]}
    made = client.post("/fhir/Subscription", content=json.dumps(_subscription(channel=channel)), headers=auth(EHR))
    assert made.status_code == 201
    receiver = Receiver()
    notifier = Notifier(store, BASE, client=httpx.Client(transport=httpx.MockTransport(receiver)), backoff=0)
    notifier.send_due()  # the handshake makes it active
    now = time.time()
    assert notifier.heartbeats(now + 30) == 0  # quiet for less than its period
    assert notifier.heartbeats(now + 61) == 1
    beat = receiver.got[-1]["entry"][0]["resource"]["parameter"]
    assert {"name": "type", "valueCode": "heartbeat"} in beat
    assert notifier.heartbeats(now + 90) == 0  # the next one a period later


def test_a_configured_client_subscribes_before_it_submits_and_searches_its_subscriptions(
    configured: tuple[TestClient, Store],
) -> None:
    client, _ = configured
    # EHR neither sent for SENDER-9 nor speaks for it; OTHER is configured for it and has sent nothing
    assert client.post("/fhir/Subscription", content=json.dumps(_subscription("SENDER-9")),
                       headers=auth(EHR)).status_code == 403  # fmt: skip
    made = [client.post("/fhir/Subscription", content=json.dumps(_subscription("SENDER-9", reason=f"n{n}")),
                        headers=auth(OTHER)) for n in range(3)]  # fmt: skip
    assert [m.status_code for m in made] == [201] * 3
    first = client.get("/fhir/Subscription", params={"status": "requested", "_count": 2}, headers=auth(OTHER)).json()
    assert first["total"] == 3 and len(first["entry"]) == 2
    following = next(link["url"] for link in first["link"] if link["relation"] == "next")
    rest = client.get(following.removeprefix(BASE.removesuffix("/fhir")), headers=auth(OTHER)).json()
    seen = [e["resource"]["id"] for e in first["entry"] + rest["entry"]]
    assert sorted(seen) == sorted(m.json()["id"] for m in made)  # every one once over the pages
    assert client.get("/fhir/Subscription", params={"status": "active"}, headers=auth(OTHER)).json()["total"] == 0
    assert client.get("/fhir/Subscription", params={"status": "on"}, headers=auth(OTHER)).status_code == 400
    assert client.get("/fhir/Subscription", params={"_summary": "count"}, headers=auth(EHR)).json()["total"] == 1


def test_a_configured_sending_system_is_pushed_its_answers_without_a_subscription_of_its_own(
    configured: tuple[TestClient, Store],
) -> None:
    client, store = configured
    kept = client.get("/fhir/Subscription", headers=auth(EHR)).json()  # the one the service keeps for SENDER-7
    (subscription,) = [e["resource"] for e in kept["entry"]]
    assert subscription["channel"]["endpoint"] == PUSHED and subscription["status"] == "requested"
    assert client.get("/fhir/Subscription", headers=auth(OTHER)).json()["total"] == 0  # not OTHER's sending system
    assert client.get(f"/fhir/Subscription/{subscription['id']}", headers=auth(OTHER)).status_code == 404
    assert client.delete(f"/fhir/Subscription/{subscription['id']}", headers=auth(EHR)).status_code == 409
    receiver = Receiver()
    notifier = Notifier(store, BASE, client=httpx.Client(transport=httpx.MockTransport(receiver)), backoff=0)
    assert notifier.send_due() == 1  # its handshake
    request = _sent_by("SENDER-7")
    assert client.post("/fhir/Claim/$submit", content=json.dumps(request), headers=auth(OTHER)).is_success
    assert notifier.send_due() == 1
    assert _event_numbers(receiver.got[1]) == ["1"]
    assert response_faults(receiver.got[1]["entry"][1]["resource"], request["entry"][0]["resource"]) == []
    status = client.get(f"/fhir/Subscription/{subscription['id']}/$status", headers=auth(EHR)).json()
    assert {"name": "status", "valueCode": "active"} in status["entry"][0]["resource"]["parameter"]
