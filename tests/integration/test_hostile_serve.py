"""A hostile client against ``imr-adapter serve`` itself (uvicorn in front of the app): what only a real
server shows."""

from __future__ import annotations

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
