"""Integration tests run against real FHIR servers: by default the local sandbox servers that
``scripts/test`` starts (``imr-adapter sandbox up``); any other server by ``IMR_EHR_URL`` / ``IMR_PAYER_URL``.
Set ``IMR_SKIP_INTEGRATION=1`` to skip them when no server can be had."""

from __future__ import annotations

import os

import httpx
import pytest

from adapter.config import load_settings


def _require(url: str) -> str:
    if os.environ.get("IMR_SKIP_INTEGRATION") == "1":
        pytest.skip("IMR_SKIP_INTEGRATION=1")
    try:
        answer = httpx.get(f"{url}/metadata", timeout=5.0)
    except httpx.HTTPError as exc:
        pytest.fail(f"no FHIR server answers at {url} ({exc}); start the sandbox: imr-adapter sandbox up")
    if answer.status_code != 200:
        pytest.fail(f"{url}/metadata answered {answer.status_code}")
    return url


@pytest.fixture(scope="session")
def ehr_url() -> str:
    return _require(load_settings().ehr)


@pytest.fixture(scope="session")
def payer_url() -> str:
    return _require(load_settings().payer)
