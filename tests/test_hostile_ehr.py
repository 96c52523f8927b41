"""A hostile EHR against the sync worker and the backfill: resources nested past any parser's patience,
invalid requests sent again every pass, a 401, a next link off its host, a server that trickles its answer,
an export status that asks to be polled in an hour.
One bad resource never stops the worker: it goes to the dead letters once, and the rest is decided."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from argparse import Namespace
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import httpx
import pytest
from pytest_httpx import HTTPXMock

from adapter.cli import service as cli
from adapter.config import RetrySettings, load_settings
from adapter.errors import AuthError, MalformedResponseError, PagingError, TransportError
from adapter.exchange import AsyncFHIRClient, FHIRClient
from adapter.exchange.bulk import BulkExport
from adapter.review.policy import DEFAULT_POLICY
from adapter.service.state import Store
from adapter.service.worker import PassReport, SyncWorker
from tests.test_worker import EHR, FakeEHR, _export, _ndjson, _request


def _nested(levels: int) -> dict[str, Any]:
    """An extension holding an extension ... ``levels`` deep: valid FHIR shape, hostile depth."""
    extension: dict[str, Any] = {"url": "http://ehr.test/x", "valueString": "deep"}
    for _ in range(levels):
        extension = {"url": "http://ehr.test/x", "extension": [extension]}
    return extension


class HostileEHR(FakeEHR):
    """The fake EHR with what an attacker adds: extra requests, and an answer status for every call."""

    def __init__(self, *extra: dict[str, Any], status: int = 200, next_url: str | None = None) -> None:
        super().__init__()
        self.requests = [*self.requests, *extra]
        self.status, self.next_url = status, next_url

    def __call__(self, request: httpx.Request) -> httpx.Response:
        if self.status != 200 and not request.url.path.endswith("metadata"):
            return httpx.Response(self.status, json={"resourceType": "OperationOutcome", "issue": []})
        answer = super().__call__(request)
        if self.next_url and request.url.path.endswith("/ServiceRequest"):
            page = json.loads(answer.content)
            page["link"] = [{"relation": "next", "url": self.next_url}]
            return httpx.Response(200, json=page)
        return answer


def _worker(tmp_path: Path, ehr: FakeEHR) -> SyncWorker:
    client = FHIRClient(EHR, transport=httpx.MockTransport(ehr), retry=RetrySettings(attempts=1))
    return SyncWorker(Store(f"sqlite:///{tmp_path}/w.db"), client, None, forward=False, policy=DEFAULT_POLICY)


DEEP = {**_request("sr4", "b"), "extension": [_nested(300)]}
INVALID = {**_request("sr5", "a"), "code": "MRI"}  # code a string: not FHIR
HUGE = {**_request("sr6", "a"), "quantityQuantity": {"value": 10**30}}  # JSON allows it; nothing keeps it


@pytest.mark.parametrize("bad", [DEEP, INVALID, HUGE], ids=["nested 300 deep", "invalid", "an integer beyond 64 bits"])
def test_a_bad_request_goes_to_the_dead_letters_once_and_the_rest_is_decided(tmp_path: Path, bad: Any) -> None:
    worker = _worker(tmp_path, HostileEHR(bad))
    first = worker.run_once()
    assert (first.seen, first.decided, first.dead) == (4, 3, 1)
    second = worker.run_once()  # the EHR sends the same versions again (the cursor is inclusive)
    assert (second.decided, second.dead) == (0, 0)
    (letter,) = worker.store.dead_letters()
    assert letter.item_key == f"ehr:ServiceRequest/{bad['id']}/_history/1"
    assert letter.payload == {"reference": f"ServiceRequest/{bad['id']}"}


def test_a_deep_context_resource_stops_only_its_patients_requests(tmp_path: Path) -> None:
    ehr = HostileEHR()
    ehr.conditions.append({**ehr.conditions[0], "id": "deep", "extension": [_nested(300)]})  # patient a's
    worker = _worker(tmp_path, ehr)
    report = worker.run_once()
    assert (report.decided, report.dead) == (1, 2)
    assert worker.run_once().dead == 0 and len(worker.store.dead_letters()) == 2  # once, not every pass


def test_a_deep_export_line_is_a_dead_letter_once_however_often_the_backfill_restarts(
    httpx_mock: HTTPXMock, tmp_path: Path
) -> None:
    from adapter.service.backfill import backfill

    ehr = FakeEHR()
    levels = 450  # an object and a list each: 900 levels, parsed by orjson (up to 1024), written as text
    extension = '{"url": "x", "extension": [' * levels + '{"url": "x", "valueString": "deep"}' + "]}" * levels
    deep = json.dumps(_request("sr9", "b"))[:-1] + f', "extension": [{extension}]}}\n'
    files = {"ServiceRequest": _ndjson(*ehr.requests) + deep.encode(), "Patient": _ndjson(*ehr.patients.values())}
    store = Store(f"sqlite:///{tmp_path}/w.db")
    worker = SyncWorker(
        store, FHIRClient(EHR, retry=RetrySettings(attempts=1)), None, forward=False, policy=DEFAULT_POLICY
    )
    for decided in (3, 0):  # killed and started again: the export is read again
        _export(httpx_mock, files)
        report = backfill(worker, workspace=tmp_path)
        assert report.decided == decided
    (letter,) = store.dead_letters()
    assert letter.item_key == "ehr:ServiceRequest/sr9/_history/1" and "deeper" in letter.reason


@pytest.mark.parametrize(
    ("ehr", "error"),
    [
        (HostileEHR(status=401), AuthError),
        (HostileEHR(next_url="http://elsewhere.test/fhir/ServiceRequest?page=2"), PagingError),
    ],
    ids=["401", "next link off the host"],
)
def test_a_running_sync_backs_off_on_every_ehr_failure(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, ehr: HostileEHR, error: type[Exception]
) -> None:
    worker = _worker(tmp_path, ehr)
    sleeps: list[float] = []

    def sleep(seconds: float) -> None:
        sleeps.append(seconds)
        if len(sleeps) == 2:
            raise KeyboardInterrupt  # ends the test's loop

    monkeypatch.setattr(cli.time, "sleep", sleep)
    wiring = SimpleNamespace(settings=load_settings(service={"poll_seconds": 5}), store=worker.store)
    with pytest.raises(KeyboardInterrupt):
        cli._sync_loop(Namespace(once=False), wiring, worker, None)  # type: ignore[arg-type]
    assert sleeps == [10.0, 20.0]  # backing off, not exiting
    with pytest.raises(error):
        cli._sync_loop(Namespace(once=True), wiring, worker, None)  # type: ignore[arg-type]
    assert worker.store.dead_letters() == []  # the EHR failed, not the requests


# --- 5. a slow EHR ------------------------------------------------------------------------------------------


class Trickle:
    """A loopback HTTP server that answers every request a byte at a time, ``every`` seconds apart (a whole
    answer of ``len(ANSWER)`` bytes takes about 20 s): the status line and headers too when ``headers``."""

    BODY = b'{"resourceType": "Patient", "id": "a"}'

    def __init__(self, *, headers: bool, every: float = 0.5) -> None:
        self.headers, self.every = headers, every
        self.server = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.server.getsockname()[1]}/fhir"
        self.done = threading.Event()
        threading.Thread(target=self.serve, daemon=True).start()

    def serve(self) -> None:
        head = b"HTTP/1.1 200 OK\r\nContent-Type: application/fhir+json\r\nContent-Length: %d\r\n\r\n" % len(self.BODY)
        while not self.done.is_set():
            try:
                connection, _ = self.server.accept()
            except OSError:
                return
            with connection:
                connection.recv(65536)
                slow = head + self.BODY if self.headers else self.BODY
                if not self.headers:
                    connection.sendall(head)
                for n in range(len(slow)):
                    if self.done.wait(self.every):
                        return
                    try:
                        connection.sendall(slow[n : n + 1])
                    except OSError:
                        break

    def close(self) -> None:
        self.done.set()
        self.server.close()


@pytest.mark.parametrize("headers", [False, True], ids=["body", "status line and headers"])
def test_a_server_trickling_its_answer_times_out(headers: bool) -> None:
    server = Trickle(headers=headers)
    try:
        with FHIRClient(server.url, timeout=5, retry=RetrySettings(attempts=1, total=1.5)) as client:
            with pytest.raises(TransportError, match="timed out"):
                client.read("Patient", "a")
    finally:
        server.close()


def test_a_proxy_from_the_environment_is_used_and_bounded_too(monkeypatch: pytest.MonkeyPatch) -> None:
    server = Trickle(headers=False)  # the proxy trickles its answer
    for name in ("NO_PROXY", "no_proxy", "ALL_PROXY", "all_proxy"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HTTP_PROXY", server.url.removesuffix("/fhir"))
    try:
        with FHIRClient("http://ehr.invalid/fhir", timeout=5, retry=RetrySettings(attempts=1, total=1.5)) as client:
            with pytest.raises(TransportError, match="timed out"):  # not "could not connect": the proxy was used
                client.read("Patient", "a")
    finally:
        server.close()


def test_a_server_trickling_its_answer_to_the_async_client_times_out() -> None:
    server = Trickle(headers=False)

    async def read() -> None:
        async with AsyncFHIRClient(server.url, timeout=5, retry=RetrySettings(attempts=1, total=1.5)) as client:
            await client.read("Patient", "a")

    try:
        with pytest.raises(TransportError, match="timed out"):
            asyncio.run(read())
    finally:
        server.close()


def test_an_export_file_trickling_times_out(tmp_path: Path) -> None:
    server = Trickle(headers=False)
    try:
        with FHIRClient(server.url, timeout=5, retry=RetrySettings(attempts=1, total=1.5)) as client:
            with pytest.raises(TransportError, match="timed out"):
                list(BulkExport(client).lines(f"{server.url}/files/ServiceRequest.ndjson"))
    finally:
        server.close()


def test_an_export_status_asking_for_an_hour_is_polled_sooner(
    httpx_mock: HTTPXMock, monkeypatch: pytest.MonkeyPatch
) -> None:
    from adapter.exchange import bulk

    httpx_mock.add_response(url=f"{EHR}/bulk-status/1", status_code=202, headers={"Retry-After": "3600"})
    httpx_mock.add_response(url=f"{EHR}/bulk-status/1", json={"transactionTime": "2026-11-27T12:00:00Z", "output": []})
    sleeps: list[float] = []
    monkeypatch.setattr(bulk.time, "sleep", sleeps.append)
    client = FHIRClient(EHR, retry=RetrySettings(attempts=1, after_max=20))
    BulkExport(client).wait(f"{EHR}/bulk-status/1")
    assert sleeps == [20]


# --- a worker killed with SIGKILL ---------------------------------------------------------------------------

_POOL = """
import multiprocessing, sys, time
from adapter.service.worker import _pool
pool = _pool(2)
list(pool.map(abs, [1, 2, 3, 4]))
print(*[p.pid for p in multiprocessing.active_children()], flush=True)
time.sleep(600)
"""


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return Path(f"/proc/{pid}/stat").exists() and Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"


def test_a_killed_workers_determination_processes_end_with_it() -> None:
    parent = subprocess.Popen([sys.executable, "-c", _POOL], stdout=subprocess.PIPE, text=True)
    assert parent.stdout is not None
    children = [int(pid) for pid in parent.stdout.readline().split()]
    assert children and all(_alive(pid) for pid in children)
    parent.kill()
    parent.wait()
    deadline = time.monotonic() + 30  # a backstop: they notice within a second or two
    while any(_alive(pid) for pid in children) and time.monotonic() < deadline:
        time.sleep(0.1)
    left = [pid for pid in children if _alive(pid)]
    for pid in left:  # never leave them behind, even when the test fails
        os.kill(pid, signal.SIGKILL)
    assert left == []


# --- 10. export and next links that climb out of the base ----------------------------------------------------


@pytest.mark.parametrize(
    "link",
    [
        f"{EHR}/../admin/secrets",
        f"{EHR}/files/../../admin",
        f"{EHR}/%2e%2e/admin",
        f"{EHR}/..%2fadmin",
        f"{EHR}\\..\\admin",
        "http://ehr.test/fhirish/x",
        "http://ehr.test:8080/fhir/x",
        "https://ehr.test/fhir/x",
        "http://ehr.test@evil.test/fhir/x",
    ],
)
def test_a_link_off_the_ehrs_base_is_refused_before_the_token_goes_with_it(link: str) -> None:
    with pytest.raises(PagingError):
        FHIRClient(EHR).check_next(link)


def test_a_link_on_the_base_is_sent_as_httpx_normalises_it() -> None:
    client = FHIRClient(EHR)
    assert client.check_next("HTTP://EHR.test:80/fhir/files/a.ndjson") == "http://ehr.test:80/fhir/files/a.ndjson"
    assert client.check_next(f"{EHR}/files/./b/../c.ndjson") == f"{EHR}/files/c.ndjson"


def test_an_export_manifest_file_climbing_out_is_refused(httpx_mock: HTTPXMock, tmp_path: Path) -> None:
    from adapter.service.backfill import backfill

    _export(httpx_mock, {"ServiceRequest": b""}, where=f"{EHR}/files/..")  # files at {EHR}/files/../files/...
    httpx_mock.add_response(url=f"{EHR}/files/ServiceRequest.ndjson", content=b"", is_optional=True)
    worker = SyncWorker(
        Store(f"sqlite:///{tmp_path}/w.db"), FHIRClient(EHR), None, forward=False, policy=DEFAULT_POLICY
    )
    backfill(worker, workspace=tmp_path)  # inside the base after normalising: fetched where httpx sends it
    _export(httpx_mock, {"ServiceRequest": b""}, where=f"{EHR}/..")
    with pytest.raises(PagingError):
        backfill(worker, workspace=tmp_path)


# --- 8. several workers on one state ------------------------------------------------------------------------


class GatedEHR(FakeEHR):
    """The fake EHR where the workers that poll ServiceRequests together are let through together (or, alone,
    after a short wait): without leases every worker would read and decide the same page."""

    def __init__(self, workers: int) -> None:
        super().__init__()
        self.gate = threading.Barrier(workers)
        self.lock = threading.Lock()

    def __call__(self, request: httpx.Request) -> httpx.Response:
        if request.method == "GET" and request.url.path.endswith("/ServiceRequest"):
            try:
                self.gate.wait(timeout=2)
            except threading.BrokenBarrierError:
                pass
        if request.method == "PUT":
            with self.lock:
                self.asked.append(f"PUT {request.url.path.removeprefix('/fhir/')}")
            return httpx.Response(201, json={"resourceType": "Task", "id": str(len(self.asked))})
        with self.lock:
            return super().__call__(request)


def _workers(tmp_path: Path, ehr: FakeEHR, count: int, lease: float = 120.0) -> list[SyncWorker]:
    client = FHIRClient(EHR, transport=httpx.MockTransport(ehr), retry=RetrySettings(attempts=1))
    return [SyncWorker(Store(f"sqlite:///{tmp_path}/shared.db"), client, None, forward=False, policy=DEFAULT_POLICY,
                       tasks=True, lease=lease) for _ in range(count)]  # fmt: skip


def test_three_workers_on_one_state_decide_each_request_once_and_write_each_ehr_task_once(tmp_path: Path) -> None:
    ehr = GatedEHR(3)
    workers = _workers(tmp_path, ehr, 3)
    with ThreadPoolExecutor(3) as pool:
        reports = list(pool.map(SyncWorker.run_once, workers))
    assert sum(r.decided for r in reports) == 3
    assert workers[0].store.search()[0] == 3
    assert sorted(a for a in ehr.asked if a.startswith("PUT")) == ["PUT Task"] * 3


def test_a_dead_readers_lease_runs_out_and_another_reads_on(tmp_path: Path) -> None:
    dead, alive = _workers(tmp_path, FakeEHR(), 2, lease=0.5)
    assert dead.take("ehr:ServiceRequest")  # and is killed holding it, before it queued a page
    assert alive.run_once().decided == 3  # waits for the pages it would queue; once its lease runs out, reads them
    assert alive.store.search()[0] == 3


def test_a_page_whose_worker_died_is_decided_by_another_once_its_lease_runs_out(tmp_path: Path) -> None:
    ehr = FakeEHR()
    dead, alive = _workers(tmp_path, ehr, 2, lease=0.5)
    assert list(dead.read_pages(["ServiceRequest"], PassReport())) == [True]  # the page read and queued
    assert dead.store.take_page(dead.holder, 0.5) is not None  # taken, and the worker is killed holding it
    ehr.requests = []  # nothing changed on the EHR since
    assert alive.run_once().decided == 0  # the page is another's while its lease runs
    time.sleep(0.6)
    assert alive.run_once().decided == 3
    assert alive.run_once().decided == 0 and alive.store.search()[0] == 3  # and it leaves the queue


def test_the_ehr_tasks_of_a_worker_killed_after_recording_are_written_by_the_next_pass(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ehr = GatedEHR(1)
    first, second = _workers(tmp_path, ehr, 2, lease=0.5)

    def killed(self: SyncWorker, task: dict[str, Any], key: str) -> bool:
        raise KeyboardInterrupt  # the page is recorded; the worker dies before writing its first Task

    with monkeypatch.context() as patched:
        patched.setattr(SyncWorker, "pay", killed)
        with pytest.raises(KeyboardInterrupt):
            first.run_once()
    assert first.store.search()[0] == 3 and not [a for a in ehr.asked if a.startswith("PUT")]
    time.sleep(0.6)  # its leases run out
    assert second.run_once().decided == 0  # nothing decided twice
    assert sorted(a for a in ehr.asked if a.startswith("PUT")) == ["PUT Task"] * 3  # and no Task lost
    assert not [d for d in second.store.dead_letters() if d.source == "ehr-task"]  # all settled


@pytest.mark.parametrize(
    ("meta", "decided"),
    [([1], 3), ({"lastUpdated": "yesterday"}, 3), ("x", 3), ({"lastUpdated": 5}, 4)],  # 5: epoch seconds to R4B
)
def test_a_request_with_a_hostile_meta_never_stops_the_pass(tmp_path: Path, meta: Any, decided: int) -> None:
    worker = _worker(tmp_path, HostileEHR({**_request("sr7", "a"), "meta": meta}))
    report = worker.run_once()
    assert (report.decided, report.dead) == (decided, 4 - decided)
    assert worker.store.cursor("ehr:ServiceRequest") == "2026-11-03T10:00:00Z"  # moved by the valid ones


class JunkEHR(FakeEHR):
    """The fake EHR with junk among the entries of every search page it answers."""

    JUNK = ["x", 5, {"resource": "x"}, {"resource": {"id": "typeless"}}, {"search": [1], "resource": {
        "resourceType": "Condition", "id": "odd", "subject": ["Patient/a"], "code": {"text": "odd"}}}]  # fmt: skip

    def search(self, rtype: str, params: dict[str, list[str]]) -> dict[str, Any]:
        page = super().search(rtype, params)
        return {**page, "entry": [*page["entry"], *self.JUNK]}

    def __call__(self, request: httpx.Request) -> httpx.Response:
        answer = super().__call__(request)
        if request.url.path.endswith("/ServiceRequest"):
            page = json.loads(answer.content)
            return httpx.Response(200, json={**page, "entry": [*page["entry"], *self.JUNK]})
        return answer


def test_junk_among_a_pages_entries_never_stops_the_pass(tmp_path: Path) -> None:
    report = _worker(tmp_path, JunkEHR()).run_once()
    assert (report.seen, report.decided) == (3, 3)


def test_a_page_whose_entries_are_not_a_list_is_an_empty_page(tmp_path: Path) -> None:
    ehr = HostileEHR()
    ehr.search = lambda rtype, params: {"resourceType": "Bundle", "type": "searchset", "entry": {"x": 1}}  # type: ignore[method-assign]
    report = _worker(tmp_path, ehr).run_once()
    assert (report.seen, report.decided) == (3, 3)


@pytest.mark.parametrize(
    "rest",
    [
        "x",
        ["x", 5],
        [{"resource": "x", "interaction": {"code": "batch"}}],
        [{"resource": [5, {"type": "ServiceRequest", "searchParam": "status", "searchInclude": "ServiceRequest"}]}],
    ],
)
def test_a_hostile_capability_statement_is_read_as_offering_nothing(tmp_path: Path, rest: Any) -> None:
    ehr = FakeEHR()
    plain = ehr.__call__

    def answer(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/metadata"):
            return httpx.Response(200, json={"resourceType": "CapabilityStatement", "rest": rest})
        return plain(request)

    client = FHIRClient(EHR, transport=httpx.MockTransport(answer), retry=RetrySettings(attempts=1))
    worker = SyncWorker(Store(f"sqlite:///{tmp_path}/w.db"), client, None, forward=False, policy=DEFAULT_POLICY)
    assert worker.run_once().decided == 3  # no batch, no _include, filtering locally: still every request
    assert "Subscription" not in client.declared()


@pytest.mark.parametrize(
    "manifest",
    [{"output": {"a": 1}, "transactionTime": "2026-11-27T12:00:00Z"}, {"output": [], "transactionTime": 5}],
)
def test_a_hostile_export_manifest_is_refused(httpx_mock: HTTPXMock, manifest: dict[str, Any]) -> None:
    httpx_mock.add_response(url=f"{EHR}/bulk-status/1", json=manifest)
    with pytest.raises(MalformedResponseError):
        BulkExport(FHIRClient(EHR, retry=RetrySettings(attempts=1))).wait(f"{EHR}/bulk-status/1")


def test_an_export_manifest_is_read_for_the_files_it_names(httpx_mock: HTTPXMock) -> None:
    manifest = {"output": [1, "x", {"type": "Patient", "url": f"{EHR}/files/p.ndjson"}], "transactionTime": "2026"}
    httpx_mock.add_response(url=f"{EHR}/bulk-status/1", json=manifest)
    done = BulkExport(FHIRClient(EHR, retry=RetrySettings(attempts=1))).wait(f"{EHR}/bulk-status/1")
    assert done.outputs == [("Patient", f"{EHR}/files/p.ndjson")]
