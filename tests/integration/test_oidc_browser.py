"""Signing in through OpenID Connect in a real browser (Debian's chromium driven by Playwright): the service on
127.0.0.1 and the provider (``tests/oidc_provider.py``) on localhost, another site, as a real provider is. The
sign-in state cookie is SameSite=Lax so that it comes back on the provider's cross-site redirect, and the
session cookie, SameSite=Strict, is used from the page the callback answers with (a browser does not send a
Strict cookie on a redirect chain that began at another site)."""

from __future__ import annotations

import json
import os
import signal
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from adapter import sandbox
from adapter.sandbox import free_port
from adapter.service.reviewers import Reviewers
from adapter.service.state import Store
from tests.oidc_provider import CLIENT_ID, CLIENT_SECRET, Provider
from tests.test_reviewers import ADA


@pytest.fixture
def provider() -> Iterator[Provider]:
    running = Provider(host="localhost").start()
    yield running
    running.stop()


@pytest.fixture
def service(tmp_path: Path, provider: Provider) -> Iterator[str]:
    port = free_port()
    store = Store(f"sqlite:///{tmp_path}/state.db")
    Reviewers(store).add(npi=ADA, name="Dr. Ada Reyes", subject="ada-sub")
    store.close()
    oidc = {"issuer": provider.issuer, "client_id": CLIENT_ID, "client_secret": CLIENT_SECRET,
            "label": "Sign in with Example Health"}  # fmt: skip
    env = {**os.environ, "IMR_SERVICE__STATE_URL": f"sqlite:///{tmp_path}/state.db", "IMR_SERVICE__FORWARD": "false",
           "IMR_SERVICE__OIDC": json.dumps(oidc)}  # fmt: skip
    process = sandbox.start_service(env, port)
    yield f"http://127.0.0.1:{port}"
    process.send_signal(signal.SIGINT)
    process.wait(timeout=15)


def test_a_reviewer_signs_in_through_the_provider_in_the_browser(service: str, provider: Provider, page: Page) -> None:
    page.goto(f"{service}/review")
    page.get_by_role("link", name="Sign in with Example Health").click()
    expect(page.get_by_text("Signed in as Dr. Ada Reyes")).to_be_visible()
    expect(page).to_have_url(f"{service}/review")
    assert provider.exchanges == [("authorization_code", True)]

    page.get_by_role("button", name="Sign out").click()
    expect(page.get_by_role("heading", name="Sign in to review")).to_be_visible()
    provider.user = {"sub": "someone-else", "name": "Dr. Nobody"}
    page.get_by_role("link", name="Sign in with Example Health").click()
    expect(page.get_by_role("alert")).to_contain_text("no reviewer is recorded for this account")
