"""What only real servers show: a hostile client against ``imr-adapter serve`` itself (uvicorn in front of
the app), and sync workers racing for their leases on PostgreSQL."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid
from pathlib import Path

import httpx
import pytest
from sqlalchemy import create_engine, text

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


def test_three_sync_workers_on_one_postgres_decide_each_request_once_and_write_each_task_once(ehr_url: str) -> None:
    """Three `imr-adapter sync` processes at once, on the sandbox EHR and one PostgreSQL state (a database of
    its own): every new request decided once, and one EHR Task for each."""
    settings = load_settings()
    if settings.ehr_url is not None:
        pytest.skip("needs the sandbox EHR and PostgreSQL")
    admin = create_engine(settings.sandbox.postgres_url, isolation_level="AUTOCOMMIT")
    database = f"imr_workers_{uuid.uuid4().hex[:8]}"
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{database}"'))
    url = f"{settings.sandbox.postgres_url.rsplit('/', 1)[0]}/{database}"
    store = Store(url)
    try:
        since = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() - 1))
        for rtype in REQUEST_RESOURCES:  # only what this test writes (and whatever else arrives meanwhile)
            store.set_cursor(cursor_name(rtype), since)
        with FHIRClient(ehr_url) as ehr:
            subject = {"reference": f"Patient/{ehr.create({'resourceType': 'Patient', 'gender': 'male'}).id}"}
            ids = [ehr.create({"resourceType": "ServiceRequest", "status": "active", "intent": "order",
                               "subject": subject, "code": {"text": f"Physical therapy {n + 6} visits, neck"}}).id
                   for n in range(9)]  # fmt: skip
        env = {**os.environ, "IMR_SERVICE__STATE_URL": url, "IMR_SERVICE__EHR_TASK": "true",
               "IMR_SERVICE__WORKER_PROCESSES": "1", "IMR_SERVICE__WORKER_PAGE_SIZE": "3"}  # fmt: skip
        command = [sys.executable, "-m", "adapter.cli", "sync", "--once"]
        workers = [subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL) for _ in range(3)]
        assert [worker.wait(timeout=300) for worker in workers] == [0, 0, 0]
        assert [store.search(request=f"ServiceRequest/{rid}")[0] for rid in ids] == [1] * 9, store.search()  # once
        with FHIRClient(ehr_url) as ehr:
            assert [len(list(ehr.search("Task", {"focus": f"ServiceRequest/{rid}"}))) for rid in ids] == [1] * 9
    finally:
        store.engine.dispose()
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)'))
        admin.dispose()
