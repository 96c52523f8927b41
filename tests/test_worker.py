"""The worker at scale, on fake EHR and payer servers: a page's context read in one batch (patients
grouped, next links followed), the same answers on several processes as on one, answers delivered to the
payer in transactions that keep the outbox's order."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from pytest_httpx import HTTPXMock

from adapter import parse_letter
from adapter.config import RetrySettings
from adapter.exchange import FHIRClient
from adapter.fhir import inbound
from adapter.fhir.build import request_bundle
from adapter.fhir.inbound import Limits
from adapter.fhir.pas import review_action_code
from adapter.letters import summary_text
from adapter.review.policy import DEFAULT_POLICY
from adapter.service.context import Capabilities, ContextReader
from adapter.service.forwarder import Forwarder
from adapter.service.pipeline import VERSION_TAG_SYSTEM
from adapter.service.state import Recording, Store
from adapter.service.worker import SyncWorker
from tests.conftest import LETTERS

EHR = "http://ehr.test/fhir"
PAYER = "http://payer.test/fhir"


def _request(rid: str, patient: str, text: str = "Physical therapy 2 times a week for 4 weeks") -> dict[str, Any]:
    return {"resourceType": "ServiceRequest", "id": rid, "status": "active", "intent": "order",
            "meta": {"versionId": "1", "lastUpdated": f"2026-11-0{rid[-1]}T10:00:00Z"},
            "subject": {"reference": f"Patient/{patient}"}, "code": {"text": text}}  # fmt: skip


def _note(rid: str, patient: str, text: str) -> dict[str, Any]:
    return {"resourceType": "Condition", "id": rid, "subject": {"reference": f"Patient/{patient}"},
            "code": {"text": text}}  # fmt: skip


class FakeEHR:
    """An EHR with two patients that offers batch and ``_include``; it counts what it is asked."""

    def __init__(self, *, batch: bool = True, page: int = 1000) -> None:
        self.batch, self.page = batch, page
        self.asked: list[str] = []
        self.requests = [_request("sr1", "a"), _request("sr2", "b"), _request("sr3", "a", "Acupuncture 6 visits")]
        self.patients = {p: {"resourceType": "Patient", "id": p, "gender": "female"} for p in ("a", "b")}
        self.conditions = [_note(f"c{n}", p, f"Condition {n} of {p}") for n, p in enumerate("aabab")]

    def search(self, rtype: str, params: dict[str, list[str]]) -> dict[str, Any]:
        found: list[dict[str, Any]] = []
        if rtype == "Patient":
            found = [self.patients[p] for p in params["_id"][0].split(",")]
        elif rtype == "Condition":
            wanted = set(params["subject"][0].split(","))
            found = [c for c in self.conditions if c["subject"]["reference"] in wanted]
        start = int(params.get("_offset", ["0"])[0])
        shown = found[start : start + self.page]
        bundle = {"resourceType": "Bundle", "type": "searchset",
                  "entry": [{"resource": r, "search": {"mode": "match"}} for r in shown]}  # fmt: skip
        if start + self.page < len(found):
            query = {k: v[0] for k, v in params.items()} | {"_offset": str(start + self.page)}
            bundle["link"] = [{"relation": "next", "url": f"{EHR}/{rtype}?{httpx.QueryParams(query)}"}]
        return bundle

    def __call__(self, request: httpx.Request) -> httpx.Response:
        path = request.url.path.removeprefix("/fhir").strip("/")
        self.asked.append(f"{request.method} {path}")
        if path == "metadata":
            params = [{"name": "status"}, {"name": "intent"}]
            resources = [{"type": "ServiceRequest", "searchInclude": ["ServiceRequest:subject"], "searchParam": params}]
            rest = {"resource": resources, "interaction": [{"code": "batch"}] if self.batch else []}
            return httpx.Response(200, json={"resourceType": "CapabilityStatement", "rest": [rest]})
        if request.method == "POST" and path == "":
            entries = []
            for entry in json.loads(request.content)["entry"]:
                url = urlsplit(entry["request"]["url"])
                result = self.search(url.path, parse_qs(url.query))
                entries.append({"resource": result, "response": {"status": "200 OK"}})
            return httpx.Response(200, json={"resourceType": "Bundle", "type": "batch-response", "entry": entries})
        params = parse_qs(request.url.query.decode())
        if path == "ServiceRequest" and "_lastUpdated" in params:
            matches = [{"resource": r, "search": {"mode": "match"}} for r in self.requests]
            included = [{"resource": p, "search": {"mode": "include"}} for p in self.patients.values()]
            entries = matches + included if "_include" in params else matches
            return httpx.Response(200, json={"resourceType": "Bundle", "type": "searchset", "entry": entries})
        return httpx.Response(200, json=self.search(path, params))


def _worker(tmp_path: Path, ehr: FakeEHR, processes: int = 1) -> SyncWorker:
    client = FHIRClient(EHR, transport=httpx.MockTransport(ehr), retry=RetrySettings(attempts=1))
    return SyncWorker(
        Store(f"sqlite:///{tmp_path}/w.db"), client, None, forward=False, policy=DEFAULT_POLICY, processes=processes
    )


def test_a_page_is_read_in_two_round_trips_and_each_patient_once(tmp_path: Path) -> None:
    ehr = FakeEHR()
    worker = _worker(tmp_path, ehr)
    report = worker.run_once()
    assert (report.seen, report.decided) == (3, 3)
    # the pages of each request type (Patients included) queued first, then the context of the whole page in one
    # batch
    assert ehr.asked == ["GET metadata", "GET ServiceRequest", "GET MedicationRequest", "GET DeviceRequest", "POST "]


def test_a_page_validates_each_resource_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Patient a's two requests share its Patient and Conditions: each is validated once in the page, and each
    request once, on admission."""
    validated: list[str] = []
    check = inbound.check_resource

    def counted(resource: Any, *args: Any, **kwargs: Any) -> None:
        if resource.get("id"):  # a Bundle's shell has none
            validated.append(f"{resource['resourceType']}/{resource['id']}")
        check(resource, *args, **kwargs)

    monkeypatch.setattr(inbound, "check_resource", counted)
    monkeypatch.setattr("adapter.service.worker.check_resource", counted)
    ehr = FakeEHR()
    assert _worker(tmp_path, ehr).run_once().decided == 3
    held = [f"ServiceRequest/{r['id']}" for r in ehr.requests] + [f"Patient/{p}" for p in ehr.patients]
    held += [f"Condition/{c['id']}" for c in ehr.conditions]
    assert sorted(validated) == sorted(held)


def test_the_worker_applies_the_configured_limits(tmp_path: Path) -> None:
    ehr = FakeEHR()
    ehr.conditions[0]["note"] = [{"text": "Low back pain radiating to the left leg. " * 10}]  # patient a's
    client = FHIRClient(EHR, transport=httpx.MockTransport(ehr), retry=RetrySettings(attempts=1))
    worker = SyncWorker(Store(f"sqlite:///{tmp_path}/w.db"), client, None, forward=False, policy=DEFAULT_POLICY,
                        limits=Limits(max_clinical_text=200))  # fmt: skip
    report = worker.run_once()
    assert (report.decided, report.dead) == (1, 2)  # patient b's request; patient a's two exceed the limit
    assert {d.reason.split("]")[0] for d in worker.store.dead_letters()} == {"[input-limit"}


def test_context_is_grouped_by_patient_and_next_links_are_followed(tmp_path: Path) -> None:
    ehr = FakeEHR(page=1)  # one Condition per page: the batch's answers have next links
    client = FHIRClient(EHR, transport=httpx.MockTransport(ehr))
    reader = ContextReader(client, Capabilities.of(client))
    found = reader.read(ehr.requests, ehr.patients.values())
    conditions = {ref: [e["fullUrl"] for e in entries if e["fullUrl"].startswith("Condition")]
                  for ref, entries in found.items()}  # fmt: skip
    assert conditions == {"Patient/a": ["Condition/c0", "Condition/c1", "Condition/c3"],
                          "Patient/b": ["Condition/c2", "Condition/c4"]}  # fmt: skip
    assert [e["fullUrl"] for e in found["Patient/a"]][:1] == ["Patient/a"]
    assert sum(a.startswith("GET Condition") for a in ehr.asked) == 4  # five, one a page: the batch had the first


def test_without_batch_one_search_per_type_per_page(tmp_path: Path) -> None:
    ehr = FakeEHR(batch=False)
    _worker(tmp_path, ehr).run_once()
    searches = [a for a in ehr.asked if a.startswith("GET") and "metadata" not in a]
    kinds = sorted(a.split()[1] for a in searches)
    # three request types polled, and five context searches for the one page that had requests
    assert kinds == ["Condition", "DeviceRequest", "DocumentReference", "MedicationRequest", "MedicationRequest",
                     "Procedure", "ServiceRequest", "ServiceRequest"]  # fmt: skip


def _letter_bundles() -> list[dict[str, Any]]:
    bundles = []
    for path in sorted(LETTERS.glob("*.txt")):
        case = parse_letter(path.read_bytes())
        assert case.source is not None
        bundle = request_bundle(case, summary_text(case.source.text, case.layout))
        requests = [e for e in bundle["entry"] if e["resource"]["resourceType"] == "ServiceRequest"]
        rest = [e for e in bundle["entry"] if e not in requests]
        bundles += [{"resourceType": "Bundle", "type": "collection", "entry": [r, *rest]} for r in requests]
    return bundles


def test_several_processes_answer_as_one_does(tmp_path: Path) -> None:
    bundles: list[Any] = _letter_bundles()
    bundles.insert(2, {"resourceType": "Bundle", "type": "collection", "entry": []})  # nothing to determine
    one = _worker(tmp_path, FakeEHR(), processes=1)
    many = _worker(tmp_path / "m", FakeEHR(), processes=2)
    try:
        serial, parallel = list(one.determine(bundles)), list(many.determine(bundles))
    finally:
        many.close()
    assert many._pool is None and len(serial) == len(parallel) == len(bundles)
    assert isinstance(parallel[2], Exception) and "no request" in str(parallel[2])

    def shape(outcome: Any) -> Any:
        if isinstance(outcome, Exception):
            return str(outcome)
        return [(review_action_code(i["adjudication"]), i["noteNumber"]) for i in outcome.response["item"]]

    assert [shape(o) for o in serial] == [shape(o) for o in parallel]


# --- delivery -------------------------------------------------------------------------------------------


def _store(tmp_path: Path, versions: list[int]) -> Store:
    store = Store(f"sqlite:///{tmp_path}/s.db")
    for n, version in enumerate(versions):
        payload = {"resourceType": "ClaimResponse", "meta": {"tag": [{"system": VERSION_TAG_SYSTEM,
                                                                      "code": str(version)}]}}  # fmt: skip
        response = {"id": f"r{n}", "outcome": "complete", "meta": {"lastUpdated": "2026-01-01T00:00:00Z"}}
        store.record_all([Recording(response, patient=None, request=None, forward=payload)])
    return store


def _capabilities(httpx_mock: HTTPXMock) -> None:
    statement = {"resourceType": "CapabilityStatement", "rest": [{"interaction": [{"code": "transaction"}]}]}
    httpx_mock.add_response(method="GET", url=f"{PAYER}/metadata", json=statement)


def test_first_versions_go_in_one_transaction_in_order(httpx_mock: HTTPXMock, tmp_path: Path) -> None:
    store = _store(tmp_path, [1, 1, 1, 2])
    _capabilities(httpx_mock)
    answer = {"resourceType": "Bundle", "type": "transaction-response",
              "entry": [{"response": {"status": "201 Created"}}] * 3}  # fmt: skip
    httpx_mock.add_response(method="POST", url=PAYER, json=answer)
    httpx_mock.add_response(method="GET", json={"resourceType": "Bundle", "type": "searchset", "entry": []})
    httpx_mock.add_response(method="POST", url=f"{PAYER}/ClaimResponse", status_code=201, json={"id": "x"})
    forwarder = Forwarder(store, FHIRClient(PAYER, retry=RetrySettings(attempts=1)), batch=10)
    assert forwarder.drain() == 4 and store.outbox_pending() == 0
    posted = json.loads(httpx_mock.get_requests(method="POST", url=PAYER)[0].content)
    assert [e["request"]["ifNoneExist"].rsplit("|", 1)[1] for e in posted["entry"]] == ["r0", "r1", "r2"]


def test_a_failed_transaction_delivers_nothing_and_the_head_waits(httpx_mock: HTTPXMock, tmp_path: Path) -> None:
    store = _store(tmp_path, [1, 1, 1])
    _capabilities(httpx_mock)
    httpx_mock.add_response(method="POST", url=PAYER, status_code=500)
    forwarder = Forwarder(store, FHIRClient(PAYER, retry=RetrySettings(attempts=1)), batch=10)
    assert forwarder.drain() == 0 and store.outbox_pending() == 3
    assert store.next_outbox_batch(10) == []  # the head waits its backoff; nothing overtakes it


@pytest.mark.parametrize("batch", [1, 50])
def test_a_payer_without_transactions_gets_one_request_each(httpx_mock: HTTPXMock, tmp_path: Path, batch: int) -> None:
    store = _store(tmp_path, [1, 1])
    httpx_mock.add_response(method="GET", url=f"{PAYER}/metadata", is_optional=True,
                            json={"resourceType": "CapabilityStatement", "rest": [{"interaction": []}]})  # fmt: skip
    httpx_mock.add_response(method="POST", url=f"{PAYER}/ClaimResponse", status_code=201, json={"id": "x"},
                            is_reusable=True)  # fmt: skip
    forwarder = Forwarder(store, FHIRClient(PAYER, retry=RetrySettings(attempts=1)), batch=batch)
    assert forwarder.drain() == 2
    assert len(httpx_mock.get_requests(method="POST")) == 2


# --- Bulk Data backfill ---------------------------------------------------------------------------------


def _export(httpx_mock: HTTPXMock, files: dict[str, bytes], *, where: str = EHR) -> None:
    httpx_mock.add_response(method="GET", url=httpx.URL(f"{EHR}/$export", params={"_type": ANY_TYPES}),
                            status_code=202, headers={"Content-Location": f"{EHR}/bulk-status/1"})  # fmt: skip
    httpx_mock.add_response(url=f"{EHR}/bulk-status/1", status_code=202, headers={"Retry-After": "0"})
    manifest = {"transactionTime": "2026-11-27T12:00:00.000Z", "output": [
        {"type": rtype, "url": f"{where}/files/{rtype}.ndjson"} for rtype in files]}  # fmt: skip
    httpx_mock.add_response(url=f"{EHR}/bulk-status/1", json=manifest)
    for rtype, content in files.items():
        httpx_mock.add_response(url=f"{where}/files/{rtype}.ndjson", content=content, is_optional=True)


def _ndjson(*resources: dict[str, Any]) -> bytes:
    return b"\n".join(json.dumps(r).encode() for r in resources) + b"\n"


ANY_TYPES = "ServiceRequest,MedicationRequest,DeviceRequest,Patient,Condition,Procedure,DocumentReference"


def test_backfill_decides_an_export_and_hands_over_to_polling(httpx_mock: HTTPXMock, tmp_path: Path) -> None:
    from adapter.service.backfill import backfill
    from adapter.service.worker import cursor_name

    ehr = FakeEHR()
    files = {
        "ServiceRequest": _ndjson(*ehr.requests, {**_request("sr4", "b"), "status": "completed"}),
        "Patient": _ndjson(*ehr.patients.values()),
        "Condition": _ndjson(*ehr.conditions) + b"{not json\n",
    }
    _export(httpx_mock, files)
    store = Store(f"sqlite:///{tmp_path}/w.db")
    worker = SyncWorker(
        store, FHIRClient(EHR, retry=RetrySettings(attempts=1)), None, forward=False, policy=DEFAULT_POLICY, page_size=2
    )
    seen: list[tuple[int, int]] = []
    report = backfill(worker, progress=lambda done, total: seen.append((done, total)), workspace=tmp_path)
    assert (report.exported, report.seen, report.decided, report.dead) == (11, 3, 3, 1)
    assert seen == [(2, 4), (4, 4)]  # pages in patient order, the completed request read but not decided
    (letter,) = store.dead_letters()
    assert letter.reason.startswith("an export line is not JSON") and letter.payload == {
        "url": f"{EHR}/files/Condition.ndjson", "line": 6}  # fmt: skip
    assert {cursor_name(t): store.cursor(cursor_name(t)) for t in ("ServiceRequest", "DeviceRequest")} == {
        "ehr:ServiceRequest": "2026-11-27T12:00:00.000Z", "ehr:DeviceRequest": "2026-11-27T12:00:00.000Z"}  # fmt: skip
    assert list(tmp_path.glob("imr-backfill-*")) == []  # the workspace is gone


def test_backfill_context_is_what_polling_reads(httpx_mock: HTTPXMock, tmp_path: Path) -> None:
    from adapter.service.backfill import Workspace

    ehr = FakeEHR()
    client = FHIRClient(EHR, transport=httpx.MockTransport(ehr))
    polled = ContextReader(client, Capabilities.of(client)).read(ehr.requests)
    space = Workspace(tmp_path)
    for resource in [*ehr.requests, *ehr.patients.values(), *ehr.conditions]:
        space.add(resource)
    assert space.context(sorted(polled)) == polled


def test_export_files_elsewhere_are_refused(httpx_mock: HTTPXMock, tmp_path: Path) -> None:
    from adapter.errors import PagingError
    from adapter.service.backfill import backfill

    _export(httpx_mock, {"ServiceRequest": b""}, where="http://elsewhere.test/fhir")
    worker = SyncWorker(
        Store(f"sqlite:///{tmp_path}/w.db"), FHIRClient(EHR), None, forward=False, policy=DEFAULT_POLICY
    )
    with pytest.raises(PagingError, match="leaves the server"):
        backfill(worker, workspace=tmp_path)
    assert worker.store.cursor("ehr:ServiceRequest") is None  # nothing done: polling has not moved


def test_a_running_sync_outlives_an_unreachable_ehr(monkeypatch: pytest.MonkeyPatch) -> None:
    """`imr-adapter sync` waits (with backoff) and tries again when the EHR or the state fails; `--once` fails."""
    from argparse import Namespace
    from types import SimpleNamespace

    from adapter.cli import service as cli
    from adapter.config import load_settings
    from adapter.errors import TransportError

    passes: list[int] = []

    class Worker:
        def run_once(self) -> None:
            passes.append(1)
            if len(passes) < 3:
                raise TransportError("could not connect")
            raise KeyboardInterrupt  # ends the test's loop

        def close(self) -> None:
            pass

    sleeps: list[float] = []
    monkeypatch.setattr(cli.time, "sleep", sleeps.append)
    wiring = SimpleNamespace(settings=load_settings(service={"poll_seconds": 5}))
    with pytest.raises(KeyboardInterrupt):
        cli._sync_loop(Namespace(once=False), wiring, Worker(), None)  # type: ignore[arg-type]
    assert (len(passes), sleeps) == (3, [10.0, 20.0])
    passes.clear()
    with pytest.raises(TransportError):
        cli._sync_loop(Namespace(once=True), wiring, Worker(), None)  # type: ignore[arg-type]
