"""End to end on real servers: the two sandbox FHIR servers, the service as its own process, the sync
worker as its own process, PostgreSQL. Push -> decide -> payer pull; a payer outage; a worker killed
mid-batch; bad requests; two replicas sharing one PostgreSQL state."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from adapter import parse_letter, sandbox
from adapter.config import SANDBOX, load_settings
from adapter.exchange import FHIRClient
from adapter.fhir.build import pas_bundle, request_bundle
from adapter.fhir.conformance import response_faults
from adapter.fhir.pas import REQUEST_RESOURCES
from adapter.letters import summary_text
from adapter.review import apply_decision, read_decision
from adapter.review.policy import DEFAULT_POLICY
from adapter.review.tasks import response_of
from adapter.sandbox import free_port
from adapter.service.forwarder import Forwarder, payer_client
from adapter.service.pipeline import DETERMINATION_SYSTEM, decide, for_payer, record
from adapter.service.state import Store
from tests.conftest import CORPUS, LETTERS
from tests.test_service import _inquiry, with_npi

TOKEN = "e2e-writer"
FHIR = {"Content-Type": "application/fhir+json", "Authorization": f"Bearer {TOKEN}"}


READER = "e2e-reader"
REVIEWER = "e2e-reviewer"
#: Seconds a forwarder holds what it sends (short here: the kill tests wait for a dead worker's lease).
LEASE = 3


def _env(state: str) -> dict[str, str]:
    return {
        **os.environ,
        "IMR_SERVICE__TOKENS": json.dumps(
            {
                TOKEN: "system/*.*",
                READER: "system/ClaimResponse.read",
                REVIEWER: "user/Task.read user/Task.write user/ClaimResponse.read",
            }
        ),  # fmt: skip
        "IMR_SERVICE__STATE_URL": state,
        "IMR_SERVICE__OUTBOX_MAX_DELAY": "2",
        "IMR_SERVICE__OUTBOX_LEASE": str(LEASE),
        "IMR_PAYER_URL": os.environ.get("IMR_PAYER_URL") or SANDBOX,  # forward to the payer under test
    }


@pytest.fixture
def service(tmp_path: Path, ehr_url: str, payer_url: str) -> Iterator[tuple[str, str]]:
    """`imr-adapter serve` in its own process; (base URL, state URL)."""
    port, state = free_port(), f"sqlite:///{tmp_path}/state.db"
    process = sandbox.start_service(_env(state), port)
    yield f"http://127.0.0.1:{port}/fhir", state
    process.send_signal(signal.SIGINT)
    process.wait(timeout=15)


def _pas(case_number: str) -> dict[str, Any]:
    case = parse_letter((LETTERS / "case-number-multi.txt").read_bytes())
    case.case_number = case_number
    return with_npi(pas_bundle(case))


def _on_payer(payer: FHIRClient, claim_response_id: str) -> int:
    page = next(
        payer.search_pages(
            "ClaimResponse", {"identifier": f"{DETERMINATION_SYSTEM}|{claim_response_id}", "_summary": "count"}
        )
    )
    return int(page["total"])


def _wait(condition: Any, seconds: float = 30, every: float = 0.2) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(every)


@pytest.fixture
def payer(payer_url: str) -> Iterator[FHIRClient]:
    with FHIRClient(payer_url, auth=load_settings().auth("payer")) as client:
        yield client


def test_push_decide_payer_pull(service: tuple[str, str], payer: FHIRClient) -> None:
    base, _ = service
    answer = httpx.post(
        f"{base}/Claim/$submit",
        content=json.dumps(_pas(f"CM98-{uuid.uuid4().int % 10**7:07d}")),
        headers=FHIR,
        timeout=30,
    )
    assert answer.status_code == 200
    response = answer.json()["entry"][0]["resource"]
    _wait(lambda: _on_payer(payer, response["id"]) == 1)
    (pulled,) = payer.search("ClaimResponse", {"identifier": f"{DETERMINATION_SYSTEM}|{response['id']}"})
    assert [i["adjudication"] for i in pulled["item"]] == [i["adjudication"] for i in response["item"]]
    assert pulled["processNote"] == response["processNote"]


def test_pas_submit_then_inquire_over_http(service: tuple[str, str], payer: FHIRClient) -> None:
    base, _ = service
    request = _pas(f"CM97-{uuid.uuid4().int % 10**7:07d}")
    claim = request["entry"][0]["resource"]
    submitted = httpx.post(f"{base}/Claim/$submit", content=json.dumps(request), headers=FHIR, timeout=30)
    assert submitted.status_code == 200 and response_faults(submitted.json(), claim) == []
    response = submitted.json()["entry"][0]["resource"]
    inquired = httpx.post(f"{base}/Claim/$inquire", content=json.dumps(_inquiry(request)), headers=FHIR, timeout=30)
    assert inquired.status_code == 200
    answer = inquired.json()["parameter"][0]["resource"]["entry"][0]["resource"]
    assert (answer["id"], answer["meta"]["versionId"]) == (response["id"], response["meta"]["versionId"])
    assert [i["adjudication"] for i in answer["item"]] == [i["adjudication"] for i in response["item"]]
    _wait(lambda: _on_payer(payer, response["id"]) == 1)


def _pas_letter(name: str, case_number: str) -> dict[str, Any]:
    case = parse_letter((LETTERS / name).read_bytes())
    case.case_number = case_number
    return with_npi(pas_bundle(case))


def test_physician_review_end_to_end(service: tuple[str, str], payer: FHIRClient) -> None:
    """$submit of a request the engine would deny answers A4; the review Task focuses it, with the
    recommendation and a due date, and is listed on /review; an EHR token cannot touch it; the reviewer's
    decision makes the ClaimResponse final as a new version, which $inquire returns and the payer gets once."""
    base, state = service
    reviewer = {"Authorization": f"Bearer {REVIEWER}", "Content-Type": "application/fhir+json"}
    request = _pas_letter("2014-variant.txt", f"CM96-{uuid.uuid4().int % 10**7:07d}")
    submitted = httpx.post(f"{base}/Claim/$submit", content=json.dumps(request), headers=FHIR, timeout=30)
    response = submitted.json()["entry"][0]["resource"]
    assert response["disposition"] == "A4, A4"
    found = httpx.get(f"{base}/Task", params={"focus": response["request"]["reference"], "status": "requested"},
                      headers=reviewer).json()  # fmt: skip
    tasks = [e["resource"] for e in found["entry"]]
    denial = next(t for t in tasks if '"code": "A3"' in json.dumps(t["input"]))
    assert denial["restriction"]["period"]["end"] > denial["authoredOn"]
    assert httpx.get(f"{base}/Task/{denial['id']}", headers=FHIR).status_code == 403
    page = httpx.get(f"{base.removesuffix('/fhir')}/review", headers={"Authorization": f"Bearer {REVIEWER}"})
    assert page.status_code == 200 and f"/review/cases/{response['id']}" in page.text
    _wait(lambda: _on_payer(payer, response["id"]) == 1)

    owner = {"identifier": {"system": "http://hl7.org/fhir/sid/us-npi", "value": "1234567893"}}
    for task, code in ((denial, "A3"), (next(t for t in tasks if t is not denial), "A1")):
        outputs = [{"type": {"text": "decision"}, "valueCodeableConcept": {"coding": [{"code": code}]}},
                   {"type": {"text": "rationale"}, "valueString": "Physician review of the records."}]  # fmt: skip
        decided = {**task, "status": "completed", "owner": owner, "output": outputs}
        done = httpx.put(f"{base}/Task/{task['id']}", content=json.dumps(decided), headers=reviewer, timeout=30)
        assert done.status_code == 200, done.text

    inquired = httpx.post(f"{base}/Claim/$inquire", content=json.dumps(_inquiry(request)), headers=FHIR, timeout=30)
    final = inquired.json()["parameter"][0]["resource"]["entry"][0]["resource"]
    assert (final["meta"]["versionId"], final["outcome"]) == ("3", "complete")
    assert sorted(final["disposition"].split(", ")) == ["A1", "A3"]

    def on_payer() -> dict[str, Any]:
        (copy,) = payer.search("ClaimResponse", {"identifier": f"{DETERMINATION_SYSTEM}|{response['id']}"})
        return dict(copy)

    _wait(lambda: on_payer()["outcome"] == "complete")
    copy = on_payer()
    assert sorted(copy["disposition"].split(", ")) == ["A1", "A3"]
    served = copy["meta"]["versionId"]
    # delivered again (a forwarder that crashed before recording delivery): nothing changes on the payer
    Forwarder(Store(state), payer).send(response["id"], for_payer(final))
    assert on_payer()["meta"]["versionId"] == served
    assert _on_payer(payer, response["id"]) == 1


def test_payer_outage_delays_but_loses_nothing(service: tuple[str, str], payer: FHIRClient) -> None:
    base, state = service
    settings = load_settings()
    if settings.payer_url is not None:
        pytest.skip("stops and starts the sandbox payer server")
    sandbox.down(settings.sandbox, names=("payer",), postgres=False)
    try:
        ids = []
        for _ in range(3):
            started = time.monotonic()
            body = json.dumps(_pas(f"CM97-{uuid.uuid4().int % 10**7:07d}"))
            answer = httpx.post(f"{base}/Claim/$submit", content=body, headers=FHIR, timeout=30)
            assert answer.status_code == 200 and time.monotonic() - started < 5  # the EHR is not kept waiting
            ids.append(answer.json()["entry"][0]["resource"]["id"])
        time.sleep(1.5)
        assert Store(state).outbox_pending() == 3
    finally:
        sandbox.up(settings.sandbox, keep_data=True, names=("payer",))
    _wait(lambda: Store(state).outbox_pending() == 0, seconds=60)
    assert [_on_payer(payer, rid) for rid in ids] == [1, 1, 1]


def test_bad_requests_store_nothing(service: tuple[str, str]) -> None:
    base, state = service
    cases = [
        ({"Content-Type": "application/fhir+json"}, b"{}", 401),
        ({**FHIR, "Authorization": "Bearer nope"}, b"{}", 401),
        ({**FHIR, "Authorization": f"Bearer {READER}"}, b"{}", 403),
        ({**FHIR}, b"{broken", 400),
        ({**FHIR}, b'{"resourceType": "ServiceRequest", "status": "active"}', 422),
        ({**FHIR}, b" " * 6_000_000, 413),
        ({**FHIR, "Content-Type": "application/xml"}, b"<x/>", 415),
    ]
    for headers, content, status in cases:
        answer = httpx.post(f"{base}/ServiceRequest", content=content, headers=headers, timeout=30)
        assert answer.status_code == status
        assert answer.json()["resourceType"] == "OperationOutcome"
    assert Store(state).search()[0] == 0


def _load_ehr(ehr: FHIRClient, letters: list[Path]) -> int:
    requests = 0
    for path in letters:
        case = parse_letter(path.read_bytes())
        assert case.source is not None
        results = ehr.transaction(request_bundle(case, summary_text(case.source.text, case.layout)))
        requests += len(case.items)
        assert all(r.status in (200, 201) for r in results)
    return requests


def test_worker_killed_mid_batch_loses_nothing_and_does_nothing_twice(
    tmp_path: Path, ehr_url: str, payer: FHIRClient
) -> None:
    settings = load_settings()
    if settings.ehr_url is not None:
        pytest.skip("needs a fresh sandbox EHR")
    with FHIRClient(ehr_url) as ehr:
        _load_ehr(ehr, sorted((CORPUS / "pdf").glob("*.pdf"))[:24] or sorted(LETTERS.glob("*.txt")))
        active = [  # every request the EHR holds: services, drugs, devices
            f"{rtype}/{r['id']}"
            for rtype in REQUEST_RESOURCES
            for r in ehr.search(rtype, {"_count": 200})
            if (r.get("status"), r.get("intent")) == ("active", "order")
        ]
    state = f"sqlite:///{tmp_path}/worker.db"
    command = [sys.executable, "-m", "adapter.cli", "sync", "--once"]
    # a page is recorded in one transaction: small pages, so that the kill lands between two of them; the
    # killed worker's lease on its request type runs out after WORKER_LEASE seconds, then the next takes over
    env = {**_env(state), "IMR_SERVICE__WORKER_PAGE_SIZE": "5", "IMR_SERVICE__WORKER_LEASE": "3"}
    first = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    store = Store(state)
    # killed as soon as its first page is recorded (a cheap count, polled often: with the project's own letters,
    # shorter than the corpus's, a slower poll of every answer once let the whole batch finish first)
    _wait(lambda: store.search(count=1)[0] >= 1, seconds=60, every=0.02)
    first.send_signal(signal.SIGKILL)  # mid-batch, with no chance to tidy up
    first.wait()
    done_before = store.search(count=1000)[0]
    assert 0 < done_before < len(active)
    time.sleep(3.5)
    subprocess.run(command, env=env, check=True, stdout=subprocess.DEVNULL, timeout=300)
    total, responses = store.search(count=1000)
    assert total == len(active)  # every request decided once
    requested = sorted(r["item"][0]["extension"][0]["valueReference"]["reference"] for r in responses)
    assert requested == sorted(active)
    # what the killed worker was sending stays leased to it for service.outbox_lease, then goes out
    forwarder = Forwarder(store, payer_client(payer.base_url, load_settings().auth("payer"), 30), lease=LEASE)
    _wait(lambda: forwarder.drain() >= 0 and store.outbox_pending() == 0, seconds=30)
    assert all(_on_payer(payer, r["id"]) == 1 for r in responses)  # on the payer exactly once each


def test_backfill_killed_midway_loses_nothing_and_does_nothing_twice(
    tmp_path: Path, ehr_url: str, payer: FHIRClient
) -> None:
    """`sync --backfill` from the EHR's Bulk Data export, killed with SIGKILL in the middle and started again:
    every exported request decided once, on the payer once, and polling handed over at the export's time."""
    from adapter.service.worker import cursor_name

    with FHIRClient(ehr_url) as ehr:
        since = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() - 1))
        time.sleep(1.1)
        for path in sorted(LETTERS.glob("*.txt")) * 10:  # new cases each time: new resources, not matches
            case = parse_letter(path.read_bytes())
            case.case_number = f"CM94-{uuid.uuid4().int % 10**7:07d}"
            assert case.source is not None
            ehr.transaction(request_bundle(case, summary_text(case.source.text, case.layout)))
        active = {
            f"{rtype}/{r['id']}"
            for rtype in REQUEST_RESOURCES
            for r in ehr.search(rtype, {"_lastUpdated": f"ge{since}", "_count": 500})
            if (r.get("status"), r.get("intent")) == ("active", "order")
        }
    state = f"sqlite:///{tmp_path}/backfill.db"
    # small pages: the kill lands between them; the killed run's export workspace stays in the test's folder
    env = {**_env(state), "IMR_SERVICE__WORKER_PAGE_SIZE": "10", "TMPDIR": str(tmp_path)}
    command = [sys.executable, "-m", "adapter.cli", "sync", "--backfill", "--once", "--since", since]
    first = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    store = Store(state)
    _wait(lambda: store.search(count=1)[0] >= 12, seconds=120)
    first.send_signal(signal.SIGKILL)
    first.wait()
    done_before = store.search(count=1)[0]
    assert 0 < done_before < len(active)
    finished = subprocess.run(command, env=env, check=True, capture_output=True, text=True, timeout=300)
    assert f"{done_before} already done" in finished.stdout
    total, responses = store.search(count=1000)
    assert total == len(active)  # every exported request decided once
    requested = {e["valueReference"]["reference"] for r in responses for i in r["item"][:1] for e in i["extension"][:1]}
    assert requested == active
    forwarder = Forwarder(store, payer_client(payer.base_url, load_settings().auth("payer"), 30), lease=LEASE)
    _wait(lambda: forwarder.drain() >= 0 and store.outbox_pending() == 0, seconds=30)
    assert all(_on_payer(payer, r["id"]) == 1 for r in responses)
    cursor = store.cursor(cursor_name("ServiceRequest"))
    assert cursor is not None and cursor > since  # polling takes over from the export's transactionTime


def test_two_replicas_share_postgres_state(payer_url: str, payer: FHIRClient) -> None:
    url = load_settings().sandbox.postgres_url
    try:
        first, second = Store(url), Store(url)
    except Exception as exc:  # noqa: BLE001
        pytest.fail(f"no PostgreSQL at {url} ({exc}); scripts/test starts one with `imr-adapter sandbox up --postgres`")
    ids = []
    for n in range(12):
        decided = decide(_pas(f"CM96-{uuid.uuid4().int % 10**7:07d}"), policy=DEFAULT_POLICY)
        record(first if n % 2 else second, decided, forward=True)
        ids.append(decided.response["id"])
    auth = load_settings().auth("payer")
    forwarders = [Forwarder(store, payer_client(payer_url, auth, 30.0)) for store in (first, second)]
    threads = [threading.Thread(target=f.drain) for f in forwarders]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert first.outbox_pending() == 0
    assert [_on_payer(payer, rid) for rid in ids] == [1] * 12  # each delivered once, by one replica or the other


def test_two_reviewers_racing_on_one_task_on_postgres() -> None:
    """Two replicas complete the same review Task at once on PostgreSQL: the row lock lets one decision in;
    the other is refused as already completed, and the ClaimResponse has one new version."""
    from concurrent.futures import ThreadPoolExecutor

    from adapter.errors import ReviewClosedError
    from adapter.review import apply_decision, read_decision

    url = load_settings().sandbox.postgres_url
    first, second = Store(url), Store(url)
    decided = decide(_pas_letter("2014-variant.txt", f"CM95-{uuid.uuid4().int % 10**7:07d}"), policy=DEFAULT_POLICY)
    record(first, decided, forward=False)
    task = decided.reviews[0].resource
    owner = {"identifier": {"system": "http://hl7.org/fhir/sid/us-npi", "value": "1234567893"}}

    def complete(store: Store, code: str) -> str:
        sent = {**task, "status": "completed", "owner": owner, "output": [
            {"type": {"text": "decision"}, "valueCodeableConcept": {"coding": [{"code": code}]}},
            {"type": {"text": "rationale"}, "valueString": "Reviewed."}]}  # fmt: skip
        try:
            store.complete_review(task["id"], lambda t, r: apply_decision(t, r, read_decision(sent, t)),
                                  forward=None, who=f"reviewer-{code}")  # fmt: skip
        except ReviewClosedError:
            return "refused"
        return code

    with ThreadPoolExecutor(2) as pool:
        outcomes = sorted(pool.map(complete, (first, second), ("A1", "A3")))
    assert outcomes in (["A1", "refused"], ["A3", "refused"])
    final = first.claim_response(decided.response["id"])
    assert final is not None and final["meta"]["versionId"] == "2"


def test_replicas_racing_on_identical_requests_store_one_answer_each(tmp_path: Path) -> None:
    """1,000 requests, each of 50 distinct ones sent 20 times at once, spread over two service processes on
    one PostgreSQL: no errors, and every copy of a request gets the same ClaimResponse."""
    from concurrent.futures import ThreadPoolExecutor

    url = load_settings().sandbox.postgres_url
    env = {**_env(url), "IMR_SERVICE__RATE_LIMIT": "100000", "IMR_SERVICE__FORWARD": "false"}
    ports = [free_port(), free_port()]
    replicas = [sandbox.start_service(env, port) for port in ports]
    run = uuid.uuid4().hex[:8]
    subject = {"reference": f"Patient/race-{run}"}
    bodies = [
        json.dumps(
            {"resourceType": "ServiceRequest", "status": "active", "intent": "order", "subject": subject,
             "code": {"text": f"Physical therapy, {n + 1} visits ({run})"}}
        )
        for n in range(50)
    ]  # fmt: skip

    def send(n: int) -> tuple[int, int, str]:
        port = ports[n % 2]
        body = bodies[(n // 2) % 50]
        answer = httpx.post(f"http://127.0.0.1:{port}/fhir/ServiceRequest", content=body, headers=FHIR, timeout=60)
        return (n // 2) % 50, answer.status_code, answer.json().get("id", "")

    try:
        with ThreadPoolExecutor(32) as pool:
            results = list(pool.map(send, range(1000)))
    finally:
        for replica in replicas:
            replica.send_signal(signal.SIGINT)
            replica.wait(timeout=15)
    assert [status for _, status, _ in results if status not in (200, 201)] == []
    answers: dict[int, set[str]] = {}
    for body, _, rid in results:
        answers.setdefault(body, set()).add(rid)
    assert all(len(ids) == 1 for ids in answers.values()) and len(answers) == 50
    assert sum(status == 201 for _, status, _ in results) == 50
    total, _ = Store(url).search(patient=f"Patient/race-{run}", count=100)
    assert total == 50


def test_state_database_outage_answers_503_and_loses_nothing(payer: FHIRClient) -> None:
    """PostgreSQL stops under a running service: requests (reads and failed logins too) get 503 with an
    OperationOutcome and Retry-After, /metadata still answers, the forwarder waits; PostgreSQL comes back:
    the service answers again without a restart and every recorded answer reaches the payer once."""
    settings = load_settings()
    if settings.payer_url is not None:
        pytest.skip("stops and starts the sandbox PostgreSQL")
    url = settings.sandbox.postgres_url
    port = free_port()
    process = sandbox.start_service({**_env(url), "IMR_SERVICE__RATE_LIMIT": "100000"}, port)
    base = f"http://127.0.0.1:{port}/fhir"
    try:
        before = httpx.post(f"{base}/Claim/$submit", content=json.dumps(_pas(f"CM95-{uuid.uuid4().int % 10**7:07d}")),
                            headers=FHIR, timeout=30)  # fmt: skip
        assert before.status_code == 200
        sandbox.postgres_down(settings.sandbox)
        try:
            for answer in (
                httpx.post(f"{base}/Claim/$submit", content=json.dumps(_pas("CM95-0000001")), headers=FHIR, timeout=30),
                httpx.get(f"{base}/ClaimResponse", headers=FHIR, timeout=30),
                httpx.get(f"{base}/ClaimResponse", headers={"Authorization": "Bearer wrong"}, timeout=30),
            ):
                assert answer.status_code == 503 and answer.headers["retry-after"]
                assert answer.json()["resourceType"] == "OperationOutcome"
            assert httpx.get(f"{base}/metadata", timeout=5).status_code == 200
        finally:
            sandbox.postgres_up(settings.sandbox, fresh=False)
        after = httpx.post(f"{base}/Claim/$submit", content=json.dumps(_pas(f"CM95-{uuid.uuid4().int % 10**7:07d}")),
                           headers=FHIR, timeout=30)  # fmt: skip
        assert after.status_code == 200
        ids = [r.json()["entry"][0]["resource"]["id"] for r in (before, after)]
        _wait(lambda: all(_on_payer(payer, rid) == 1 for rid in ids), seconds=60)
    finally:
        process.send_signal(signal.SIGINT)
        process.wait(timeout=15)


def test_sigterm_finishes_the_request_in_flight_and_stops(tmp_path: Path) -> None:
    port = free_port()
    process = sandbox.start_service({**_env(f"sqlite:///{tmp_path}/s.db"), "IMR_SERVICE__FORWARD": "false"}, port)
    note = {"text": "Low back pain radiating to the left leg with numbness in the L5 dermatome. " * 600}
    body = json.dumps(
        {"resourceType": "ServiceRequest", "status": "active", "intent": "order",
         "subject": {"reference": "Patient/p1"}, "code": {"text": "MRI of the lumbar spine"}, "note": [note] * 3}
    )  # fmt: skip
    answers: list[int] = []
    url = f"http://127.0.0.1:{port}/fhir/ServiceRequest"
    sender = threading.Thread(
        target=lambda: answers.append(httpx.post(url, content=body, headers=FHIR, timeout=60).status_code)
    )
    sender.start()
    time.sleep(0.3)  # the request is being decided
    process.send_signal(signal.SIGTERM)
    sender.join(60)
    assert answers == [201]
    assert process.wait(timeout=30) in (0, -signal.SIGTERM)  # uvicorn re-raises the signal once it has stopped


def test_dead_letters_replay_and_tasks_back_to_the_ehr(tmp_path: Path, ehr_url: str, payer: FHIRClient) -> None:
    from adapter.service import wire
    from adapter.service.worker import cursor_name
    from adapter.tables import mappings

    task_system = mappings().tables.identifier_system("task")

    settings = load_settings()
    service = settings.service.model_copy(update={"state_url": f"sqlite:///{tmp_path}/w.db", "ehr_task": True})
    wiring = wire(settings.model_copy(update={"service": service, "payer_url": settings.payer_url or SANDBOX}))
    for rtype in REQUEST_RESOURCES:  # only what this test writes
        wiring.store.set_cursor(cursor_name(rtype), time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() - 1)))
    worker = wiring.worker()
    with FHIRClient(ehr_url) as ehr:
        patient = ehr.create({"resourceType": "Patient", "gender": "female"}).id
        subject = {"reference": f"Patient/{patient}"}
        good = ehr.create(
            {
                "resourceType": "ServiceRequest",
                "status": "active",
                "intent": "order",
                "subject": subject,
                "code": {"text": "Infrared heat to the low back"},
            }
        )
        bad = ehr.create(
            {
                "resourceType": "ServiceRequest",
                "status": "active",
                "intent": "order",
                "subject": subject,
                "code": {"coding": [{"system": "urn:nowhere", "code": "x"}]},
            }
        )
        report = worker.run_once()
        assert (report.decided, report.dead) == (1, 1)
        (letter,) = wiring.store.dead_letters()
        assert letter.payload == {"reference": f"ServiceRequest/{bad.id}"} and "no code text" in letter.reason
        (response,) = wiring.store.search()[1]
        tasks = list(ehr.search("Task", {"identifier": f"{task_system}|{response['id']}"}))
        assert (
            len(tasks) == 1
            and tasks[0]["status"] == "on-hold"  # an adverse recommendation waits for a physician
            and tasks[0]["focus"]["reference"].endswith(good.id or "")
        )
        # a physician decides the pended request: the next pass brings the EHR Task up to date, once
        (review,) = [t for t in wiring.store.search_tasks(count=100)[1] if response_of(t) == response["id"]]
        outputs = [{"type": {"text": "decision"}, "valueCodeableConcept": {"coding": [{"code": "A3"}]}},
                   {"type": {"text": "rationale"}, "valueString": "Passive heat alone is not supported."}]  # fmt: skip
        decision = {**review, "status": "completed", "owner": {"identifier": {"system": "urn:lic", "value": "A1"}},
                    "output": outputs}  # fmt: skip
        wiring.store.complete_review(review["id"], lambda t, r: apply_decision(t, r, read_decision(decision, t)),
                                     forward=for_payer, who="test")  # fmt: skip
        assert worker.report_reviews() == 1 and worker.report_reviews() == 0
        (final,) = ehr.search("Task", {"identifier": f"{task_system}|{response['id']}"})
        assert (final["status"], final["businessStatus"]["coding"][0]["code"]) == ("completed", "A3")
        assert "Passive heat alone is not supported." in final["description"]
        fixed = ehr.read("ServiceRequest", bad.id or "")
        fixed["code"]["text"] = "Ultrasound to the low back"
        ehr.update(fixed)
        replayed = worker.replay()
        assert (replayed.decided, replayed.errors) == (1, [])
        assert wiring.store.dead_letters() == []
        assert worker.run_once().decided == 1  # the new version of the request is decided in its turn
    assert wiring.store.outbox_pending() == 0
    assert all(_on_payer(payer, r["id"]) == 1 for r in wiring.store.search()[1])
