"""PAS subscriptions against the real service process: a rest-hook receiver on loopback gets the handshake,
then one notification per new version, in order, each with the full PAS response Bundle, none lost when the
service is killed (SIGKILL) while the receiver is down (for as many refused attempts as a minute down makes
on the default retry schedule, the schedule shortened) and another process takes over the same state."""

from __future__ import annotations

import json
import signal
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest

from adapter import sandbox
from adapter.config import ServiceSettings
from adapter.fhir.conformance import response_faults
from adapter.review.tasks import sequence_of
from adapter.sandbox import free_port
from adapter.service.subscriptions import CONTENT, FILTER, TOPIC, TRANSMISSION
from tests.integration.test_service_e2e import FHIR, REVIEWER, _env
from tests.test_review import _completed
from tests.test_updates import _request

JSON = dict[str, Any]


class _Receiver(ThreadingHTTPServer):
    got: list[JSON]
    down: bool
    refused: int


class _Handler(BaseHTTPRequestHandler):
    server: _Receiver

    def do_POST(self) -> None:  # noqa: N802 - the http.server name
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        if self.server.down:
            self.server.refused += 1
            self.send_response(503)
        else:
            self.server.got.append(json.loads(body))
            self.send_response(200)
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def receiver() -> Iterator[_Receiver]:
    server = _Receiver(("127.0.0.1", free_port()), _Handler)
    server.got, server.down, server.refused = [], False, 0
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server
    server.shutdown()


def _wait(condition: Callable[[], bool], timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.3)


def _attempts_in_a_minute_down() -> int:
    """How many times the default retry schedule sends a notification to an endpoint down for a minute."""
    defaults = ServiceSettings()
    at, attempts = 0.0, 0
    while at < 60:
        attempts += 1
        at += min(defaults.notify_backoff_max, defaults.notify_backoff * 2 ** (attempts - 1))
    return attempts


def _submitted(base: str, sender: str) -> JSON:
    """A PAS request of the sending system ``sender`` submitted: its ClaimResponse."""
    request = _request()
    request["entry"][0]["resource"]["extension"] = [{"url": TRANSMISSION, "extension": [
        {"url": "applicationSenderCode", "valueString": sender},
        {"url": "applicationReceiverCode", "valueString": "IMR-ADAPTER"}]}]  # fmt: skip
    submitted = httpx.post(f"{base}/Claim/$submit", content=json.dumps(request), headers=FHIR, timeout=60)
    assert submitted.status_code == 200, submitted.text
    return dict(submitted.json()["entry"][0]["resource"])


def test_notifications_survive_a_killed_service_and_a_receiver_that_was_down(
    tmp_path: Path, receiver: _Receiver, ehr_url: str, payer_url: str
) -> None:
    state = f"sqlite:///{tmp_path}/state.db"
    env = {
        **_env(state),
        "IMR_SERVICE__SUBSCRIPTION_ENDPOINTS": json.dumps([f"http://127.0.0.1:{receiver.server_port}/"]),
        # the retry schedule shortened: a minute's worth of refused attempts in well under a second each
        "IMR_SERVICE__NOTIFY_BACKOFF": "0.02",
        "IMR_SERVICE__NOTIFY_BACKOFF_MAX": "0.2",
    }
    reviewer = {"Authorization": f"Bearer {REVIEWER}", "Content-Type": "application/fhir+json"}
    port = free_port()
    first = sandbox.start_service(env, port, timeout=120)
    base = f"http://127.0.0.1:{port}/fhir"
    sender = f"SENDER-{uuid.uuid4().hex[:8]}"
    try:
        response = _submitted(base, sender)
        subscription = {
            "resourceType": "Subscription", "status": "requested", "reason": "e2e", "criteria": TOPIC,
            "_criteria": {"extension": [{"url": FILTER, "valueString": f"orgIdentifier={sender}"}]},
            "channel": {"type": "rest-hook", "endpoint": f"http://127.0.0.1:{receiver.server_port}/hook",
                        "payload": "application/fhir+json",
                        "_payload": {"extension": [{"url": CONTENT, "valueCode": "full-resource"}]}},
        }  # fmt: skip
        made = httpx.post(f"{base}/Subscription", content=json.dumps(subscription), headers=FHIR, timeout=30)
        assert made.status_code == 201, made.text
        _wait(lambda: len(receiver.got) == 1)  # the handshake
        found = httpx.get(f"{base}/Task", params={"focus": response["request"]["reference"]}, headers=reviewer)
        tasks = sorted((e["resource"] for e in found.json()["entry"]), key=sequence_of)
        receiver.down = True
        decided = httpx.put(f"{base}/Task/{tasks[0]['id']}", content=json.dumps(_completed(tasks[0], "A3")),
                            headers=reviewer, timeout=30)  # fmt: skip
        assert decided.status_code == 200, decided.text
        _wait(lambda: receiver.refused >= _attempts_in_a_minute_down())  # the receiver is down "a minute"
    finally:
        first.send_signal(signal.SIGKILL)
        first.wait(timeout=15)
    receiver.down = False
    second = sandbox.start_service(env, port, timeout=120)
    try:
        decided = httpx.put(f"{base}/Task/{tasks[1]['id']}", content=json.dumps(_completed(tasks[1], "A3")),
                            headers=reviewer, timeout=30)  # fmt: skip
        assert decided.status_code == 200, decided.text
        later = _submitted(base, sender)  # a third change: another request of the same sending system
        _wait(lambda: any(_focus(b) == later["id"] for b in receiver.got))
    finally:
        second.send_signal(signal.SIGINT)
        second.wait(timeout=15)
    events = receiver.got[1:]  # in order per subscription: a second copy of an event would come before the last
    numbers = [[p["valueString"] for e in b["entry"][0]["resource"]["parameter"] if e["name"] == "notification-event"
                for p in e["part"] if p["name"] == "event-number"] for b in events]  # fmt: skip
    assert numbers == [["1"], ["2"], ["3"]]
    answers = [b["entry"][1]["resource"] for b in events]
    assert [(a["entry"][0]["resource"]["id"], a["entry"][0]["resource"]["meta"]["versionId"]) for a in answers] == [
        (response["id"], "2"), (response["id"], "3"), (later["id"], "1")]  # fmt: skip
    for answer in answers:  # each the full PAS response Bundle: the ClaimResponse and all it refers to
        assert response_faults(answer) == []


def _focus(notification: JSON) -> str:
    """The ClaimResponse a notification Bundle carries (none for a handshake)."""
    entries = notification["entry"][1:]
    return str(entries[0]["resource"]["entry"][0]["resource"]["id"]) if entries else ""
