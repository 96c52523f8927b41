"""The service as a hostile client and a fault injector meet it: every malformed, oversized, mixed-patient
or wrongly typed request is refused with an OperationOutcome naming the problem and stores nothing; search
follows FHIR's date semantics; a failing state database answers 503; operators can read /metrics."""

from __future__ import annotations

import copy
import json
import sqlite3
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import create_engine

from adapter import parse_letter
from adapter.config import load_settings
from adapter.errors import StateError
from adapter.fhir.build import pas_bundle
from adapter.service import Forwarder, wire
from adapter.service.state import Recording, Store, micros
from tests.conftest import LETTERS

TOKEN = "edge-token"
HEADERS = {"Content-Type": "application/fhir+json", "Authorization": f"Bearer {TOKEN}"}
SR: dict[str, Any] = {
    "resourceType": "ServiceRequest",
    "status": "active",
    "intent": "order",
    "subject": {"reference": "Patient/p1"},
    "code": {"text": "Physical therapy 2x4 for the low back"},
}


def _pas() -> dict[str, Any]:
    return pas_bundle(parse_letter((LETTERS / "case-number-modified.txt").read_bytes()))


@pytest.fixture
def service(tmp_path: Path) -> Iterator[tuple[TestClient, Store]]:
    settings = load_settings(
        service={
            "tokens": {TOKEN: "system/*.*"},
            "state_url": f"sqlite:///{tmp_path}/state.db",
            "forward": False,
            "base_url": "https://adapter.example/fhir",
            "rate_limit": 10_000,
        }
    )
    wiring = wire(settings)
    with TestClient(wiring.app()) as client:
        yield client, wiring.store


def _with(path: str, value: Any, base: dict[str, Any] | None = None) -> dict[str, Any]:
    data = copy.deepcopy(base or SR)
    *parents, last = path.split(".")
    node = data
    for part in parents:
        node = node[int(part)] if isinstance(node, list) else node[part]
    if isinstance(node, list):
        node[int(last)] = value
    else:
        node[last] = value
    return data


def _context(*resources: dict[str, Any]) -> dict[str, Any]:
    return {"resourceType": "Bundle", "type": "collection", "entry": [{"resource": r} for r in (SR, *resources)]}


def _entries(value: Any) -> dict[str, Any]:
    return {"resourceType": "Bundle", "type": "collection", "entry": value}


def _deep(levels: int) -> str:
    return '{"resourceType": "ServiceRequest", "x": ' + "[" * levels + "]" * levels + "}"


HOSTILE: list[tuple[str, str, Any, int, str]] = [
    ("nested 300 deep", "/fhir/ServiceRequest", _deep(300), 413, "input-limit"),
    ("nested past the parser", "/fhir/ServiceRequest", _deep(100_000), 400, "malformed-json"),
    ("entry a string", "/fhir/ServiceRequest", _entries("x"), 422, "mapping"),
    ("entry an object", "/fhir/ServiceRequest", _entries({}), 422, "mapping"),
    ("entry [1]", "/fhir/ServiceRequest", _entries([1]), 422, "mapping"),
    ("resource a string", "/fhir/ServiceRequest", _entries([{"resource": "x"}]), 422, "mapping"),
    ("code a string", "/fhir/ServiceRequest", _with("code", "MRI"), 422, "mapping"),
    ("code.text a number", "/fhir/ServiceRequest", _with("code", {"text": 5}), 422, "mapping"),
    ("note a string", "/fhir/ServiceRequest", _with("note", "x"), 422, "mapping"),
    ("subject a list", "/fhir/ServiceRequest", _with("subject", ["Patient/p1"]), 422, "mapping"),
    ("quantity a string", "/fhir/ServiceRequest", _with("quantityQuantity", "12"), 422, "mapping"),
    ("meta [1]", "/fhir/ServiceRequest", _with("meta", [1]), 422, "mapping"),
    ("extension an object", "/fhir/ServiceRequest", _with("extension", {"url": "x"}), 422, "mapping"),
    ("unknown element", "/fhir/ServiceRequest", _with("colour", "red"), 422, "mapping"),
    ("NUL in a string", "/fhir/ServiceRequest", _with("code", {"text": "MRI\u0000lumbar"}), 422, "mapping"),
    ("resourceType twice", "/fhir/ServiceRequest",
     '{"resourceType": "ServiceRequest", "resourceType": "Patient", "status": "active"}', 400, "malformed-json"),
    ("a quantity beyond 64 bits", "/fhir/Claim/$submit",
     _with("entry.0.resource.item.0.quantity", {"value": 10**30}, _pas()), 422, "mapping"),
    ("a quantity beyond a double", "/fhir/ServiceRequest",
     json.dumps(SR)[:-1] + ', "quantityQuantity": {"value": 1e400}}', 400, "malformed-json"),
    ("NaN", "/fhir/ServiceRequest", json.dumps(SR)[:-1] + ', "quantityQuantity": {"value": NaN}}', 400,
     "malformed-json"),
    ("a 420 KB request text", "/fhir/ServiceRequest", _with("code", {"text": "lumbar " * 60_000}), 413, "input-limit"),
    ("2,000 entries", "/fhir/ServiceRequest", _context(*[SR] * 2_000), 413, "input-limit"),
    ("200 KB of clinical notes", "/fhir/ServiceRequest", _with("note", [{"text": "Low back pain. " * 6_000}] * 2),
     413, "input-limit"),
    ("a transaction Bundle", "/fhir/ServiceRequest", {**_context(), "type": "transaction"}, 400, "bundle-type"),
    ("another patient's Condition", "/fhir/ServiceRequest",
     _context({"resourceType": "Condition", "subject": {"reference": "Patient/p2"}, "code": {"text": "Low back pain"}}),
     422, "mapping"),
    ("two Patients", "/fhir/ServiceRequest",
     _context({"resourceType": "Patient", "id": "p1"}, {"resourceType": "Patient", "id": "p2"}), 422, "mapping"),
    ("$submit a transaction", "/fhir/Claim/$submit", {**_pas(), "type": "transaction"}, 400, "pas-conformance"),
    ("$submit a searchset", "/fhir/Claim/$submit", {**_pas(), "type": "searchset"}, 400, "pas-conformance"),
    ("$submit Claim.identifier an object", "/fhir/Claim/$submit",
     _with("entry.0.resource.identifier", {"value": "x"}, _pas()), 422, "mapping"),
    ("$submit Claim.patient another patient", "/fhir/Claim/$submit",
     _with("entry.0.resource.patient", {"reference": "Patient/someone-else"}, _pas()), 422, "mapping"),
]  # fmt: skip


@pytest.mark.parametrize(("path", "body", "status", "code"), [h[1:] for h in HOSTILE], ids=[h[0] for h in HOSTILE])
def test_hostile_requests_are_refused_and_store_nothing(
    service: tuple[TestClient, Store], path: str, body: Any, status: int, code: str
) -> None:
    client, store = service
    content = body if isinstance(body, str) else json.dumps(body)
    started = time.perf_counter()
    answer = client.post(path, content=content, headers=HEADERS)
    assert time.perf_counter() - started < 30  # a backstop against a hang, not a speed test
    assert answer.status_code == status, answer.text[:300]
    outcome = answer.json()
    assert outcome["resourceType"] == "OperationOutcome"
    assert outcome["issue"][0]["details"]["coding"][0]["code"] == code
    assert store.search()[0] == 0 and store.outbox_pending() == 0 and store.processed("x") is None


def test_the_problem_is_named(service: tuple[TestClient, Store]) -> None:
    client, _ = service
    answer = client.post("/fhir/ServiceRequest", content=json.dumps(_with("code", {"text": 5})), headers=HEADERS)
    issue = answer.json()["issue"][0]
    assert issue["expression"] == ["code.text"] and "ServiceRequest" in issue["details"]["text"]


def test_a_long_text_does_not_hold_up_other_requests(service: tuple[TestClient, Store]) -> None:
    """The determination runs in the thread pool: /metadata answers while a large request is decided."""
    client, _ = service
    big = _with("note", [{"text": "Pain in the lumbar spine with numbness. " * 1_150}] * 3)  # 3 notes of 46 KB
    finished: list[int] = []
    worker = threading.Thread(
        target=lambda: finished.append(
            client.post("/fhir/ServiceRequest", content=json.dumps(big), headers=HEADERS).status_code
        )
    )
    worker.start()
    metadata = client.get("/fhir/metadata")
    worker.join(60)
    assert metadata.status_code == 200 and finished == [201]


def test_unknown_routes_and_methods_are_operation_outcomes(service: tuple[TestClient, Store]) -> None:
    client, _ = service
    missing = client.get("/fhir/Nothing", headers=HEADERS)
    wrong = client.delete("/fhir/ClaimResponse", headers=HEADERS)
    assert missing.status_code == 404 and missing.json()["resourceType"] == "OperationOutcome"
    assert wrong.status_code == 405 and wrong.json()["resourceType"] == "OperationOutcome"


def _post(client: TestClient, n: int) -> dict[str, Any]:
    data = _with("code", {"text": f"Physical therapy {n} sessions for the low back"})
    answer = client.post("/fhir/ServiceRequest", content=json.dumps(data), headers=HEADERS)
    assert answer.status_code == 201
    return dict(answer.json())


def _total(client: TestClient, **params: Any) -> int:
    answer = client.get("/fhir/ClaimResponse", params=params, headers=HEADERS)
    assert answer.status_code == 200, answer.text
    return int(answer.json()["total"])


def test_search_dates_are_instants_with_fhir_prefixes(service: tuple[TestClient, Store]) -> None:
    client, _ = service
    first = _post(client, 1)
    stamp = first["meta"]["lastUpdated"]  # e.g. 2026-11-27T10:00:00.123+00:00
    instant = stamp.replace("+00:00", "Z")
    la = datetime.fromisoformat(stamp).astimezone(timezone(timedelta(hours=-8)))
    in_la = la.strftime("%Y-%m-%dT%H:%M:%S-08:00")  # the same second, written in Los Angeles
    assert _total(client, _lastUpdated=f"ge{instant}") == 1
    assert _total(client, _lastUpdated=f"gt{instant}") == 0  # gt is not ge
    assert _total(client, _lastUpdated=f"le{instant}") == 1
    assert _total(client, _lastUpdated=f"lt{instant}") == 0
    assert _total(client, _lastUpdated=f"eq{stamp[:10]}") == 1  # the whole day
    assert _total(client, _lastUpdated=stamp[:7]) == 1  # the whole month
    assert _total(client, _lastUpdated=f"gt{stamp[:10]}") == 0  # after that day
    assert _total(client, _lastUpdated=f"eq{in_la}") == 1  # the offset is honoured, not read as UTC
    assert _total(client, _lastUpdated=f"lt{in_la}") == 0 and _total(client, _lastUpdated=f"gt{in_la}") == 0
    assert _total(client, _lastUpdated=["ge2000-01-01", "lt2999-01-01"]) == 1


@pytest.mark.parametrize(
    "params",
    [
        {"_lastUpdated": "notadate"},
        {"_lastUpdated": "ge2026-13-45"},
        {"_lastUpdated": "sa2020"},
        {"_lastUpdated": "ge2026-01-01T10:00:00+25:00"},
        {"_offset": str(2**70)},
        {"_offset": "-1"},
        {"_count": "many"},
        {"colour": "red"},
    ],
)
def test_malformed_search_parameters_are_400(service: tuple[TestClient, Store], params: dict[str, str]) -> None:
    client, _ = service
    answer = client.get("/fhir/ClaimResponse", params=params, headers=HEADERS)
    assert answer.status_code == 400 and answer.json()["resourceType"] == "OperationOutcome"


def test_links_use_the_configured_base_not_the_host_header(service: tuple[TestClient, Store]) -> None:
    client, _ = service
    for n in range(3):
        _post(client, n)
    hostile = {**HEADERS, "Host": "evil.example"}
    page = client.get("/fhir/ClaimResponse", params={"_count": 2}, headers=hostile).json()
    urls = [link["url"] for link in page["link"]] + [e["fullUrl"] for e in page["entry"]]
    assert urls and all(url.startswith("https://adapter.example/fhir/ClaimResponse") for url in urls)
    created = client.post("/fhir/ServiceRequest", content=json.dumps(SR), headers=hostile)
    assert created.headers["location"].startswith("https://adapter.example/fhir/ClaimResponse/")


def test_a_failing_state_database_answers_503_and_recovers(service: tuple[TestClient, Store], tmp_path: Path) -> None:
    client, store = service
    working = store.engine
    store.engine = create_engine(f"sqlite:///{tmp_path}/missing-folder/none/x.db")  # cannot be opened
    try:
        for answer in (
            client.post("/fhir/ServiceRequest", content=json.dumps(SR), headers=HEADERS),
            client.get("/fhir/ClaimResponse", headers=HEADERS),
            client.get("/fhir/ClaimResponse", headers={"Authorization": "Bearer wrong"}),
        ):
            assert answer.status_code == 503 and answer.headers["retry-after"]
            assert answer.json()["issue"][0]["details"]["coding"][0]["code"] == "state-unavailable"
        assert client.get("/fhir/metadata").status_code == 200
        assert "imr_state_up 0.0" in client.get("/metrics").text
    finally:
        store.engine = working
    assert client.post("/fhir/ServiceRequest", content=json.dumps(SR), headers=HEADERS).status_code == 201


def test_the_forwarder_outlives_a_failing_state_database(tmp_path: Path) -> None:
    store = Store(f"sqlite:///{tmp_path}/s.db")
    response = {"id": "r1", "outcome": "complete", "meta": {"lastUpdated": "2026-01-01T00:00:00Z"}}
    store.record_all([Recording(response, patient=None, request=None, forward={"resourceType": "ClaimResponse"})])
    sent: list[dict[str, Any]] = []

    class Payer:
        def create(self, payload: dict[str, Any], *, if_none_exist: str) -> None:
            sent.append(payload)

    calls = {"n": 0}
    real = store.next_outbox_batch

    def flaky(limit: int, lease: float = 60.0) -> Any:
        calls["n"] += 1
        if calls["n"] <= 2:
            raise StateError("disk I/O error")
        return real(limit, lease)

    store.next_outbox_batch = flaky  # type: ignore[method-assign]
    forwarder = Forwarder(store, Payer(), max_delay=0.2, batch=1)  # type: ignore[arg-type]
    forwarder.start()
    deadline = time.monotonic() + 10
    while not sent and time.monotonic() < deadline:
        time.sleep(0.05)
    forwarder.stop()
    assert calls["n"] > 2 and sent == [{"resourceType": "ClaimResponse"}] and store.outbox_pending() == 0


def test_metrics(service: tuple[TestClient, Store]) -> None:
    client, _ = service
    _post(client, 1)
    client.get("/fhir/ClaimResponse", headers={"Authorization": "Bearer nope"})
    text = client.get("/metrics").text
    assert 'imr_http_requests_total{method="POST",route="/fhir/ServiceRequest",status="201"} 1.0' in text
    assert 'imr_http_requests_total{method="GET",route="/fhir/ClaimResponse",status="401"} 1.0' in text
    assert "imr_http_request_seconds_bucket" in text and "imr_outbox_depth 0.0" in text
    assert "imr_determinations_total" in text and "imr_dead_letters 0.0" in text
    assert "lumbar" not in text and "Patient/p1" not in text


def test_worker_lag_is_from_the_newest_change_of_any_request_type(service: tuple[TestClient, Store]) -> None:
    from adapter.service.worker import cursor_name

    client, store = service
    now = datetime.now(UTC)
    store.set_cursor(cursor_name("ServiceRequest"), (now - timedelta(hours=2)).isoformat())
    store.set_cursor(cursor_name("MedicationRequest"), (now - timedelta(minutes=5)).isoformat())
    line = next(x for x in client.get("/metrics").text.splitlines() if x.startswith("imr_worker_lag_seconds "))
    assert 290 < float(line.split()[1]) < 400


def test_serve_does_not_forward_to_the_sandbox_by_surprise(tmp_path: Path) -> None:
    state = {"state_url": f"sqlite:///{tmp_path}/s.db"}
    assert wire(load_settings(service=state)).forwarder is None
    assert wire(load_settings(service=state, payer_url="sandbox")).forwarder is not None
    assert wire(load_settings(service=state, payer_url="https://payer.example/fhir")).forwarder is not None
    assert wire(load_settings(service={**state, "forward": False}, payer_url="sandbox")).forwarder is None


LEGACY_SCHEMA = [
    """CREATE TABLE claim_responses (id TEXT PRIMARY KEY, patient TEXT, request TEXT, outcome TEXT,
       last_updated TEXT NOT NULL, resource TEXT NOT NULL)""",
    "CREATE INDEX claim_responses_updated ON claim_responses (last_updated)",
    """CREATE TABLE outbox (seq INTEGER PRIMARY KEY, claim_response_id TEXT NOT NULL, payload TEXT NOT NULL,
       attempts INTEGER NOT NULL DEFAULT 0, next_attempt DOUBLE PRECISION NOT NULL DEFAULT 0,
       lease_until DOUBLE PRECISION NOT NULL DEFAULT 0, delivered_at TEXT, last_error TEXT)""",
    """CREATE TABLE dead_letters (id INTEGER PRIMARY KEY, source TEXT NOT NULL, item_key TEXT NOT NULL,
       reason TEXT NOT NULL, payload TEXT, created TEXT NOT NULL, replayed_at TEXT)""",
    "CREATE TABLE cursors (name TEXT PRIMARY KEY, value TEXT NOT NULL)",
    "CREATE TABLE processed (item_key TEXT PRIMARY KEY, claim_response_id TEXT, created TEXT NOT NULL)",
    """CREATE TABLE audit (id INTEGER PRIMARY KEY, at TEXT NOT NULL, who TEXT NOT NULL, action TEXT NOT NULL,
       target TEXT, outcome TEXT NOT NULL)""",
]


def test_upgrade_from_the_schema_before_migrations(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    with sqlite3.connect(path) as db:
        for statement in LEGACY_SCHEMA:
            db.execute(statement)
        resource = {"id": "cr1", "outcome": "complete", "meta": {"lastUpdated": "2026-11-02T23:30:00-08:00"}}
        db.execute("INSERT INTO claim_responses VALUES ('cr1', 'Patient/p1', NULL, 'complete', ?, ?)",
                   (resource["meta"]["lastUpdated"], json.dumps(resource)))  # fmt: skip
        db.execute("INSERT INTO processed VALUES ('k1', 'cr1', '2026-11-02')")
        db.execute("INSERT INTO outbox (claim_response_id, payload) VALUES ('cr1', '{}')")
        db.execute(
            "INSERT INTO audit (at, who, action, target, outcome) VALUES ('t', 'w', 'a', ?, '200')", ("x" * 7000,)
        )
    old = Store(f"sqlite:///{path}", migrate=False)
    assert old.revision() is None
    with pytest.raises(StateError, match="db upgrade"):
        old.require_current()
    store = Store(f"sqlite:///{path}")
    assert store.revision() == store.head()
    assert store.processed("k1") == "cr1" and store.outbox_pending() == 1
    same = micros("2026-11-03T07:30:00Z")  # the record's instant, in UTC
    assert [store.search(updated=[(op, same)])[0] for op in ("ge", "le", "gt", "lt")] == [1, 1, 0, 0]
    assert len(store.audit_log()[0][3] or "") == 160
    store.upgrade()  # idempotent


def test_a_state_that_cannot_be_opened_is_one_clear_line(capsys: pytest.CaptureFixture[str]) -> None:
    from adapter.cli import main

    assert main(["db", "current", "--state", "postgresql://postgres@127.0.0.1:9/none"]) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: [state-unavailable] the state database cannot be opened") and "\n" not in err


def test_db_upgrade_command(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from adapter.cli import main

    state = f"sqlite:///{tmp_path}/fresh.db"
    assert main(["db", "current", "--state", state]) == 1 and "state schema: empty" in capsys.readouterr().out
    assert main(["db", "upgrade", "--state", state]) == 0
    assert (
        main(["db", "current", "--state", state]) == 0
        and f"state schema: {Store.head()} (newest: {Store.head()})" in capsys.readouterr().out
    )


def test_log_lines_are_json_without_clinical_text(service: tuple[TestClient, Store]) -> None:
    import io
    import logging

    from adapter.service import logs

    stream = io.StringIO()
    logs.configure("json")
    handler = logging.getLogger("adapter").handlers[0]
    handler.setStream(stream)  # type: ignore[attr-defined]
    client, _ = service
    _post(client, 3)
    lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    request = next(line for line in lines if line.get("route") == "/fhir/ServiceRequest")
    assert request["status"] == 201 and request["method"] == "POST" and request["who"].startswith("token:")
    assert "therapy" not in stream.getvalue() and TOKEN not in stream.getvalue()


def test_spans_when_tracing_is_configured(service: tuple[TestClient, Store]) -> None:
    from opentelemetry import trace
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    trace.set_tracer_provider(provider)  # the API's proxy tracer forwards to it from now on
    client, _ = service
    _post(client, 4)
    names = [span.name for span in exporter.get_finished_spans()]
    assert "determine" in names and "POST request" in names
