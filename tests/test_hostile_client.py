"""A hostile client against the service in-process: each attack of the second hardening round (issue 25)
kept as a test that it is refused or handled, and that nothing is stored from a refused request."""

from __future__ import annotations

import base64
import json
import re
import socket
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient

from adapter import parse_letter
from adapter.config import load_settings
from adapter.fhir.build import pas_bundle
from adapter.review.tasks import first_input, response_of
from adapter.service import wire
from adapter.service.hooks import MAX_CONNECTIONS, HookListener
from adapter.service.reviewers import Reviewers
from adapter.service.routes.pages import SESSION_COOKIE
from adapter.service.state import Store
from tests.conftest import LETTERS, auth
from tests.test_review import EHR, REVIEWER, _completed, _csrf, _sign_in, _submit, _tasks
from tests.test_reviewers import ADA, PASSWORD, add_reviewer

WRITER, SCOPED, OUTCOMES = "writer-token", "scoped-token", "outcome-token"
REVIEWER_SCOPES = "user/Task.read user/Task.write user/ClaimResponse.read"


@pytest.fixture
def service(tmp_path: Path) -> Iterator[tuple[TestClient, Store]]:
    settings = load_settings(
        service={
            "tokens": {
                WRITER: "system/*.*",
                SCOPED: "system/ClaimResponse.rs?patient=Patient/p1",
                OUTCOMES: "system/ClaimResponse.rs?outcome=complete",
            },
            "state_url": f"sqlite:///{tmp_path}/state.db",
            "forward": False,
            "rate_limit": 1000,
        }
    )
    wiring = wire(settings)
    with TestClient(wiring.app()) as client:
        yield client, wiring.store


def _request(patient: str, text: str = "Physical therapy 2 times a week for 4 weeks") -> dict[str, Any]:
    return {"resourceType": "ServiceRequest", "status": "active", "intent": "order",
            "subject": {"reference": f"Patient/{patient}"}, "code": {"text": text}}  # fmt: skip


def _post(client: TestClient, resource: dict[str, Any], path: str = "/fhir/ServiceRequest") -> Any:
    return client.post(path, content=json.dumps(resource), headers=auth(WRITER))


def _text(answer: Any) -> str:
    """The first issue's message of an OperationOutcome answer."""
    return str(answer.json()["issue"][0]["details"]["text"])


# --- 1. scopes hold for every value of a repeated parameter ----------------------------------------------


@pytest.mark.parametrize(
    ("token", "query"),
    [
        (SCOPED, "patient=Patient/p1&patient=Patient/p2"),
        (SCOPED, "patient=Patient/p2&patient=Patient/p1"),
        (SCOPED, "patient=Patient/p1,Patient/p2"),
        (OUTCOMES, "outcome=complete&outcome=partial"),
        (OUTCOMES, "outcome=partial&outcome=complete"),
    ],
)
def test_a_repeated_parameter_does_not_widen_a_restricted_scope(
    service: tuple[TestClient, Store], token: str, query: str
) -> None:
    client, _ = service
    assert _post(client, _request("p1")).status_code == 201
    assert _post(client, _request("p2")).status_code == 201
    answer = client.get(f"/fhir/ClaimResponse?{query}", headers=auth(token))
    assert answer.status_code == 403, answer.text
    assert client.get("/fhir/ClaimResponse?patient=Patient/p1", headers=auth(SCOPED)).json()["total"] == 1


@pytest.mark.parametrize(
    "query",
    [
        "patient=Patient/p1&patient=Patient/p2",
        "outcome=complete&outcome=partial",
        "request=ServiceRequest/a&request=ServiceRequest/b",
        "_count=1&_count=50",
    ],
)
def test_a_search_refuses_a_parameter_it_reads_once_given_twice(service: tuple[TestClient, Store], query: str) -> None:
    client, _ = service
    answer = client.get(f"/fhir/ClaimResponse?{query}", headers=auth(WRITER))
    assert answer.status_code == 400 and "more than once" in _text(answer)


# --- 3. one patient however it is named -------------------------------------------------------------------

MRI = "MRI of the lumbar spine"
PATIENT = {"resourceType": "Patient", "id": "p1", "name": [{"family": "Doe", "given": ["Jane"]}]}


def _flag(subject: Any, **more: Any) -> dict[str, Any]:
    """Another patient's red flag, named as ``subject``."""
    return {"resourceType": "Condition", "code": {"text": "Cauda equina syndrome with saddle anesthesia"},
            "subject": subject, **more}  # fmt: skip


def _context(*resources: dict[str, Any]) -> dict[str, Any]:
    entries = [{"fullUrl": "Patient/p1", "resource": PATIENT}, {"resource": _request("p1", MRI)}]
    return {"resourceType": "Bundle", "type": "collection", "entry": [*entries, *({"resource": r} for r in resources)]}


FOOT_DROP = base64.b64encode(b"Progressive foot drop.").decode()
NOTE = {"resourceType": "DocumentReference", "status": "current",
        "content": [{"attachment": {"contentType": "text/plain", "data": FOOT_DROP}}]}  # fmt: skip
SPELLINGS: list[tuple[str, dict[str, Any]]] = [
    ("lower case", _flag({"reference": "patient/p2"})),
    ("upper case", _flag({"reference": "PATIENT/p2"})),
    ("identifier only", _flag({"identifier": {"system": "urn:mrn", "value": "MRN-2"}})),
    ("conditional", _flag({"reference": "Patient?identifier=urn:mrn|MRN-2"})),
    ("display only", _flag({"display": "John Roe"})),
    ("a Group", _flag({"reference": "Group/g1"})),
    ("a Group entry", {"resourceType": "Group", "type": "person", "actual": True,
                       "member": [{"entity": {"reference": "Patient/p2"}}]}),
    ("a contained Patient", _flag({"reference": "#other"}, contained=[{"resourceType": "Patient", "id": "other"}])),
    ("another Patient's Condition in a contained resource",
     {**NOTE, "subject": {"reference": "Patient/p1"}, "contained": [_flag({"reference": "Patient/p2"}, id="c")]}),
    ("an absolute URL of another", _flag({"reference": "https://ehr.example/fhir/Patient/p2/_history/3"})),
    ("a note about no patient", NOTE),
    ("an Observation about no patient", {"resourceType": "Observation", "status": "final",
                                         "code": {"text": "note"}, "valueString": "Progressive foot drop."}),
]  # fmt: skip


@pytest.mark.parametrize("extra", [s[1] for s in SPELLINGS], ids=[s[0] for s in SPELLINGS])
def test_another_patients_facts_are_refused_however_the_patient_is_named(
    service: tuple[TestClient, Store], extra: dict[str, Any]
) -> None:
    client, store = service
    answer = _post(client, _context(extra))
    assert answer.status_code == 422, answer.text[:300]
    assert store.search()[0] == 0 and store.outbox_pending() == 0


@pytest.mark.parametrize(
    "subject",
    [{"reference": "Patient/p1"}, {"reference": "https://ehr.example/fhir/Patient/p1"},
     {"reference": "Patient/p1", "display": "Jane Doe", "identifier": {"value": "MRN-1"}}],
)  # fmt: skip
def test_the_requests_own_patient_may_be_named_by_reference(
    service: tuple[TestClient, Store], subject: dict[str, Any]
) -> None:
    client, _ = service
    assert _post(client, _context(_flag(subject), {**NOTE, "subject": subject})).status_code == 201


def test_a_single_request_names_its_patient_by_reference(service: tuple[TestClient, Store]) -> None:
    client, store = service
    conditional = {**_request("p1"), "subject": {"reference": "Patient?identifier=urn:mrn|MRN-2"}}
    assert _post(client, conditional).status_code == 422
    assert store.search()[0] == 0


# --- the reviewer's side: quantities, forms, sessions -----------------------------------------------------


@pytest.fixture
def review(tmp_path: Path) -> Iterator[tuple[TestClient, Store]]:
    settings = load_settings(
        service={
            "tokens": {EHR: "system/*.*", REVIEWER: REVIEWER_SCOPES},
            "state_url": f"sqlite:///{tmp_path}/state.db",
            "forward": False,
            "rate_limit": 1000,
        }
    )
    wiring = wire(settings)
    add_reviewer(wiring.store)
    with TestClient(wiring.app()) as client:
        yield client, wiring.store


def _open_task(client: TestClient) -> dict[str, Any]:
    """A pended review Task whose request states a quantity."""
    _submit(client)
    return next(t["resource"] for t in _tasks(client)["entry"] if first_input(t["resource"], "requested-quantity"))


@pytest.mark.parametrize("quantity", [1e300, -3, 0, 10_000])
def test_an_a6_quantity_beyond_the_request_is_refused(review: tuple[TestClient, Store], quantity: float) -> None:
    client, _ = review
    task = _open_task(client)
    answer = client.put(f"/fhir/Task/{task['id']}", content=json.dumps(_completed(task, "A6", quantity=quantity)),
                        headers=auth(REVIEWER))  # fmt: skip
    assert answer.status_code == 422, answer.text
    assert client.get(f"/fhir/Task/{task['id']}", headers=auth(REVIEWER)).json() == task


@pytest.mark.parametrize("quantity", ["inf", "nan", "-inf", "1e300", "0"])
def test_an_a6_quantity_on_the_form_is_a_finite_number_within_the_request(
    review: tuple[TestClient, Store], quantity: str
) -> None:
    client, _ = review
    task = _open_task(client)
    _sign_in(client)
    case = f"/review/cases/{response_of(task)}"
    form = {f"decision-{task['id']}": "A6", f"rationale-{task['id']}": "Fewer visits.",
            f"quantity-{task['id']}": quantity, "action": "decide", "csrf": _csrf(client.get(case))}  # fmt: skip
    answer = client.post(case, data=form, follow_redirects=False)
    assert answer.status_code == 422 and re.search(r'class="error"[^>]*>[^<]*quantity', answer.text)
    assert client.get(f"/fhir/Task/{task['id']}", headers=auth(REVIEWER)).json() == task


def test_an_a6_within_the_request_is_applied(review: tuple[TestClient, Store]) -> None:
    client, _ = review
    task = _open_task(client)
    most = first_input(task, "requested-quantity")
    answer = client.put(f"/fhir/Task/{task['id']}", content=json.dumps(_completed(task, "A6", quantity=most)),
                        headers=auth(REVIEWER))  # fmt: skip
    assert answer.status_code == 200, answer.text


# --- 9. duplicate item sequences ----------------------------------------------------------------------------


def test_a_claim_with_an_item_sequence_twice_is_refused_naming_the_rule(review: tuple[TestClient, Store]) -> None:
    client, store = review
    request = pas_bundle(parse_letter((LETTERS / "case-number-multi.txt").read_bytes()))
    claim = request["entry"][0]["resource"]
    assert len(claim["item"]) > 1
    claim["item"][1]["sequence"] = claim["item"][0]["sequence"]
    answer = client.post("/fhir/Claim/$submit", content=json.dumps(request), headers=auth(EHR))
    assert answer.status_code == 400
    issue = answer.json()["issue"][0]
    assert issue["expression"] == ["Bundle.entry[0].resource.item[1].sequence"]
    assert "Claim.item.sequence" in issue["diagnostics"]
    assert store.search()[0] == 0 and _tasks(client)["total"] == 0


# --- 10. smaller: the failed-login limiter, forms, sessions -----------------------------------------------------


def _guesses(client: TestClient, forwarded: Callable[[int], str]) -> list[int]:
    """60 guessed tokens, each claiming its own address in X-Forwarded-For."""
    return [client.get("/fhir/ClaimResponse", headers={"Authorization": f"Bearer guess-{n}",
                                                       "X-Forwarded-For": forwarded(n)}).status_code
            for n in range(60)]  # fmt: skip


@pytest.mark.parametrize(
    ("proxies", "forwarded", "throttled"),
    [
        ([], lambda n: f"10.0.0.{n}", True),  # anyone's header is ignored
        (["testclient"], lambda n: f"10.0.0.{n}", False),  # behind our proxy: each client its own limit
        (["testclient"], lambda n: f"10.0.0.{n}, 192.0.2.7", True),  # what the client wrote before our proxy
    ],
)
def test_x_forwarded_for_counts_only_from_a_configured_proxy(
    tmp_path: Path, proxies: list[str], forwarded: Callable[[int], str], throttled: bool
) -> None:
    settings = load_settings(service={"state_url": f"sqlite:///{tmp_path}/s.db", "forward": False,
                                      "auth_failure_rate": 2, "trusted_proxies": proxies})  # fmt: skip
    with TestClient(wire(settings).app()) as client:
        statuses = _guesses(client, forwarded)
    assert (429 in statuses) is throttled


@pytest.fixture
def hook() -> Iterator[HookListener]:
    listener = HookListener("127.0.0.1", 0)
    listener.start()
    yield listener
    listener.stop()


def _port(listener: HookListener) -> int:
    return int(listener.url.rsplit(":", 1)[1].split("/")[0])


def test_the_hook_listener_refuses_before_reading_a_body(hook: HookListener) -> None:
    with socket.create_connection(("127.0.0.1", _port(hook)), timeout=10) as connection:
        # 10 MB announced, none sent: the answer must not wait for it
        connection.sendall(b"POST /hook HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer guess\r\n"
                           b"Content-Length: 10000000\r\n\r\n")  # fmt: skip
        assert connection.recv(100).startswith(b"HTTP/1.0 401")
    assert not hook.notified.is_set()


def test_the_hook_listener_serves_a_bounded_number_of_connections(hook: HookListener) -> None:
    idle = [socket.create_connection(("127.0.0.1", _port(hook)), timeout=10) for _ in range(MAX_CONNECTIONS + 4)]
    try:
        closed = 0
        for connection in idle[MAX_CONNECTIONS:]:
            try:
                closed += connection.recv(1) == b""  # closed by the listener at once
            except TimeoutError:
                pass
        assert closed == 4
    finally:
        for connection in idle:
            connection.close()
    answer = httpx.post(hook.url, headers={"Authorization": f"Bearer {hook.token}"}, content=b"{}")
    assert answer.status_code == 200 and hook.notified.is_set()


def test_a_review_form_from_an_opaque_origin_is_refused(review: tuple[TestClient, Store]) -> None:
    client, _ = review
    task = _open_task(client)
    form = client.get("/review/login")
    login = client.post("/review/login", data={"login": ADA, "password": PASSWORD, "csrf": _csrf(form)},
                        headers={"Origin": "null"}, follow_redirects=False)  # fmt: skip
    assert login.status_code == 403
    _sign_in(client)
    case = f"/review/cases/{response_of(task)}"
    decision = {f"decision-{task['id']}": "A1", "action": "decide", "csrf": _csrf(client.get(case))}
    answer = client.post(case, data=decision, headers={"Origin": "null"})
    assert answer.status_code == 403
    assert client.get(f"/fhir/Task/{task['id']}", headers=auth(REVIEWER)).json() == task


# --- 6. sessions end with sign-out and with their token --------------------------------------------------------


def test_a_session_cookie_replayed_after_sign_out_signs_nobody_in(review: tuple[TestClient, Store]) -> None:
    client, _ = review
    task = _open_task(client)
    _sign_in(client)
    cookie = client.cookies[SESSION_COOKIE]
    case = f"/review/cases/{response_of(task)}"
    decision = {f"decision-{task['id']}": "A1", "action": "decide", "csrf": _csrf(client.get(case))}
    assert client.post("/review/logout", data={"csrf": decision["csrf"]}, follow_redirects=False).status_code == 303
    client.cookies.set(SESSION_COOKIE, cookie)  # replayed
    assert client.get("/review", follow_redirects=False).headers["location"] == "/review/login"
    answer = client.post(case, data=decision, follow_redirects=False)
    assert answer.headers["location"] == "/review/login"
    assert client.get(f"/fhir/Task/{task['id']}", headers=auth(REVIEWER)).json() == task


def _settings(tmp_path: Path, tokens: dict[str, str], **service: Any) -> Any:
    return load_settings(service={"tokens": tokens, "state_url": f"sqlite:///{tmp_path}/state.db", "forward": False,
                                  "session_secret": "a shared secret for both replicas", **service})  # fmt: skip


def test_a_session_of_a_disabled_reviewer_decides_nothing(review: tuple[TestClient, Store]) -> None:
    client, store = review
    task = _open_task(client)
    _sign_in(client)
    case = f"/review/cases/{response_of(task)}"
    decision = {f"decision-{task['id']}": "A1", "action": "decide", "csrf": _csrf(client.get(case))}
    Reviewers(store).disable(ADA)
    answer = client.post(case, data=decision, follow_redirects=False)
    assert answer.headers["location"] == "/review/login"
    assert client.get(f"/fhir/Task/{task['id']}", headers=auth(REVIEWER)).json() == task


def test_a_task_search_names_its_owner_once(tmp_path: Path) -> None:
    mine = "user/Task.rs?owner:identifier=http://hl7.org/fhir/sid/us-npi|1234567893"
    settings = _settings(tmp_path, {"own-tasks": mine})
    with TestClient(wire(settings).app()) as client:
        other = "owner=http://hl7.org/fhir/sid/us-npi|1111111112"
        answer = client.get(f"/fhir/Task?owner:identifier=http://hl7.org/fhir/sid/us-npi|1234567893&{other}",
                            headers=auth("own-tasks"))  # fmt: skip
        assert answer.status_code == 400
