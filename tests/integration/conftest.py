"""Integration tests run against real FHIR servers: by default the local sandbox servers that
``scripts/test`` starts (``imr-adapter sandbox up``); any other server by ``IMR_EHR_URL`` / ``IMR_PAYER_URL``.
Set ``IMR_SKIP_INTEGRATION=1`` to skip them when no server can be had."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Page, sync_playwright

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


CHROMIUM = os.environ.get("IMR_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
#: Chromium as root in a closed network: no sandbox, no background connections, no GPU.
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
        "--disable-component-update", "--disable-sync"]  # fmt: skip


@pytest.fixture
def page() -> Iterator[Page]:
    """A page in Debian's chromium driven by Playwright (no browser download)."""
    if not Path(CHROMIUM).exists():
        pytest.fail(f"no chromium at {CHROMIUM}: scripts/test installs Debian's chromium (or set IMR_CHROMIUM)")
    with sync_playwright() as driver:
        browser = driver.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        context = browser.new_context(viewport={"width": 1366, "height": 900})
        yield context.new_page()
        browser.close()
