"""What only real servers show: a hostile client against ``imr-adapter serve`` itself (uvicorn in front of
the app), and sync workers racing for their leases on PostgreSQL."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from adapter import sandbox
from adapter.config import load_settings
from adapter.exchange import FHIRClient
from adapter.fhir.pas import REQUEST_RESOURCES
from adapter.service.state import Store
from adapter.service.worker import cursor_name
from tests.integration.test_serve import start, stop


@pytest.mark.parametrize(("proxies", "throttled"), [("[]", True), ('["127.0.0.1"]', False)])
def test_failed_logins_are_limited_by_the_peer_unless_it_is_a_configured_proxy(
    tmp_path: Path, proxies: str, throttled: bool
) -> None:
    (tmp_path / "imr-adapter.toml").write_text(
        f'[service]\nstate_url = "sqlite:///state.db"\nauth_failure_rate = 2\ntrusted_proxies = {proxies}\n'
    )
    service = start([], cwd=tmp_path)
    try:
        statuses = [
            httpx.get(f"{service.base}/ClaimResponse",
                      headers={"Authorization": f"Bearer guess-{n}", "X-Forwarded-For": f"10.0.0.{n}"}).status_code
            for n in range(60)
        ]  # fmt: skip
    finally:
        stop(service)
    assert (429 in statuses) is throttled


def test_workers_racing_for_a_lease_on_postgres_one_wins() -> None:
    """Several sync workers on one PostgreSQL state race for a request type's lease: one holds it, the others
    wait, and once it is given up (or runs out) another takes it."""
    from concurrent.futures import ThreadPoolExecutor

    url = load_settings().sandbox.postgres_url
    stores = [Store(url) for _ in range(6)]
    name = f"lease:test:{uuid.uuid4()}"
    with ThreadPoolExecutor(6) as pool:
        won = list(pool.map(lambda n: stores[n].lease(name, f"worker-{n}", 60), range(6)))
    assert won.count(True) == 1
    holder = won.index(True)
    assert stores[holder].lease(name, f"worker-{holder}", 60)  # renewed by its holder
    other = (holder + 1) % 6
    assert not stores[other].lease(name, f"worker-{other}", 60)
    stores[holder].end_lease(name, f"worker-{holder}")
    assert stores[other].lease(name, f"worker-{other}", 60)


@pytest.fixture
def postgres_state() -> Iterator[str]:
    """A PostgreSQL state database of the test's own (on the sandbox PostgreSQL), dropped after."""
    settings = load_settings()
    if settings.ehr_url is not None:
        pytest.skip("needs the sandbox EHR and PostgreSQL")
    with sandbox.scratch_database(settings.sandbox) as url:
        yield url


def _new_requests(store: Store, ehr_url: str, count: int) -> list[str]:
    """``count`` new ServiceRequests on the EHR (one patient), the state's cursors just before them: only what
    the test writes (and whatever else arrives meanwhile) is read."""
    since = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() - 1))
    for rtype in REQUEST_RESOURCES:
        store.set_cursor(cursor_name(rtype), since)
    with FHIRClient(ehr_url) as ehr:
        subject = {"reference": f"Patient/{ehr.create({'resourceType': 'Patient', 'gender': 'male'}).id}"}
        return [ehr.create({"resourceType": "ServiceRequest", "status": "active", "intent": "order",
                            "subject": subject, "code": {"text": f"Physical therapy {n % 20 + 6} visits, neck"}}).id
                for n in range(count)]  # fmt: skip


def _decided_once_with_one_task_each(store: Store, ehr_url: str, ids: list[str]) -> None:
    assert [store.search(request=f"ServiceRequest/{rid}")[0] for rid in ids] == [1] * len(ids)  # decided once
    with FHIRClient(ehr_url) as ehr:
        assert [len(list(ehr.search("Task", {"focus": f"ServiceRequest/{rid}"}))) for rid in ids] == [1] * len(ids)


#: Three workers writing EHR Tasks on one state, in small pages (so that there are pages to share).
_WORKERS = {"IMR_SERVICE__EHR_TASK": "true", "IMR_SERVICE__WORKER_PROCESSES": "1", "IMR_SERVICE__WORKER_PAGE_SIZE": "3"}
_SYNC = [sys.executable, "-m", "adapter.cli", "sync", "--once"]


def test_three_sync_workers_on_one_postgres_decide_each_request_once_and_write_each_task_once(
    ehr_url: str, postgres_state: str
) -> None:
    """Three `imr-adapter sync` processes at once, on the sandbox EHR and one PostgreSQL state: every new
    request decided once, and one EHR Task for each."""
    store = Store(postgres_state)
    try:
        ids = _new_requests(store, ehr_url, 9)
        env = {**os.environ, **_WORKERS, "IMR_SERVICE__STATE_URL": postgres_state}
        workers = [subprocess.Popen(_SYNC, env=env, stdout=subprocess.DEVNULL) for _ in range(3)]
        assert [worker.wait(timeout=300) for worker in workers] == [0, 0, 0]
        _decided_once_with_one_task_each(store, ehr_url, ids)
    finally:
        store.engine.dispose()


def test_one_of_three_sync_workers_killed_mid_page_loses_nothing(ehr_url: str, postgres_state: str) -> None:
    """Three workers share the pages; one is killed with SIGKILL while it holds pages: the other two finish
    theirs, and once its leases run out the next pass decides what it held. Nothing is lost and nothing is
    decided twice or written to the EHR twice."""
    store = Store(postgres_state)
    try:
        ids = _new_requests(store, ehr_url, 30)
        env = {**os.environ, **_WORKERS, "IMR_SERVICE__STATE_URL": postgres_state, "IMR_SERVICE__WORKER_LEASE": "3"}
        workers = [subprocess.Popen(_SYNC, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
                   for _ in range(3)]  # fmt: skip
        try:
            deadline = time.monotonic() + 120
            while store.search()[0] < 6:  # every worker has started deciding
                assert time.monotonic() < deadline, "the workers decided nothing"
                time.sleep(0.1)
            victim = next(w for w in workers if w.poll() is None)
            victim.send_signal(signal.SIGKILL)
            assert sorted(worker.wait(timeout=300) for worker in workers) == sorted([0, 0, -signal.SIGKILL])
        finally:
            for worker in workers:
                worker.kill()
                worker.wait()
        time.sleep(3.5)  # its leases run out
        subprocess.run(_SYNC, env=env, check=True, stdout=subprocess.DEVNULL, timeout=300)
        _decided_once_with_one_task_each(store, ehr_url, ids)
    finally:
        store.engine.dispose()
