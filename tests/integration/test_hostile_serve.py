"""What only real servers show: a hostile client against ``imr-adapter serve`` itself (uvicorn in front of
the app), and sync workers racing for their leases on PostgreSQL."""

from __future__ import annotations

import uuid
from pathlib import Path

import httpx
import pytest

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

    from adapter.config import load_settings
    from adapter.service.state import Store

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
