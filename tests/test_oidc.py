"""Signing in through OpenID Connect, against a small provider on loopback (``tests/oidc_provider.py``): the
authorization code flow with PKCE and a nonce ends in a session for the reviewer the provider names, and
every way the answer can be wrong (another state, a replayed code, an ID token for someone else, signed with
the wrong key or algorithm, expired) ends on the sign-in page with words a reviewer understands."""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import jwt
import pytest
from fastapi.testclient import TestClient

from adapter.config import load_settings
from adapter.service import wire
from adapter.service.reviewers import Reviewers
from adapter.service.routes.pages import SESSION_COOKIE
from adapter.service.routes.signin import OIDC_COOKIE
from adapter.service.state import Store
from tests.oidc_provider import CLIENT_ID, CLIENT_SECRET, Provider
from tests.test_reviewers import ADA, BEN

CALLBACK = "http://testserver/review/login/oidc/callback"


@pytest.fixture
def provider() -> Iterator[Provider]:
    running = Provider().start()
    yield running
    running.stop()


def _service(tmp_path: Path, provider: Provider, **oidc: Any) -> tuple[TestClient, Store]:
    settings = load_settings(service={
        "state_url": f"sqlite:///{tmp_path}/state.db", "forward": False, "base_url": "http://testserver/fhir",
        "oidc": {"issuer": provider.issuer, "client_id": CLIENT_ID, "client_secret": CLIENT_SECRET,
                 "label": "Sign in with Example Health", **oidc},
    })  # fmt: skip
    wiring = wire(settings)
    return TestClient(wiring.app()), wiring.store


@pytest.fixture
def service(tmp_path: Path, provider: Provider) -> Iterator[tuple[TestClient, Store]]:
    client, store = _service(tmp_path, provider)
    Reviewers(store).add(npi=ADA, name="Dr. Ada Reyes", subject="ada-sub")
    with client:
        yield client, store


def _round_trip(client: TestClient) -> httpx.Response:
    """Off to the provider and back, as a browser goes: the service's redirect, the provider's, the callback."""
    off = client.get("/review/login/oidc", follow_redirects=False)
    assert off.status_code == 303, off.text
    back = httpx.get(off.headers["location"], follow_redirects=False)
    assert back.status_code == 302 and back.headers["location"].startswith(CALLBACK)
    return client.get(back.headers["location"].removeprefix("http://testserver"), follow_redirects=False)


def test_a_reviewer_signs_in_through_the_provider(service: tuple[TestClient, Store], provider: Provider) -> None:
    client, store = service
    assert 'href="/review/login/oidc">Sign in with Example Health' in client.get("/review/login").text
    off = client.get("/review/login/oidc", follow_redirects=False)
    asked = {k: v[0] for k, v in parse_qs(urlsplit(off.headers["location"]).query).items()}
    assert off.headers["location"].startswith(f"{provider.issuer}/authorize?")
    assert (asked["response_type"], asked["client_id"], asked["redirect_uri"]) == ("code", CLIENT_ID, CALLBACK)
    assert asked["code_challenge_method"] == "S256" and len(asked["code_challenge"]) == 43
    assert "openid" in asked["scope"].split() and asked["state"] and asked["nonce"]
    carried = off.headers["set-cookie"]
    assert f"{OIDC_COOKIE}=" in carried and "HttpOnly" in carried and "SameSite=lax" in carried

    back = httpx.get(off.headers["location"], follow_redirects=False).headers["location"]
    done = client.get(back.removeprefix("http://testserver"), follow_redirects=False)
    assert done.status_code == 200 and 'http-equiv="refresh"' in done.text and 'href="/review"' in done.text
    assert provider.exchanges == [("authorization_code", True)]  # the verifier matched the challenge
    session = jwt.decode(client.cookies[SESSION_COOKIE], options={"verify_signature": False})
    assert session["amr"] == "oidc"
    queue = client.get("/review")
    assert queue.status_code == 200 and "Dr. Ada Reyes" in queue.text and f"NPI {ADA}" in queue.text
    assert any(w.startswith(f"NPI {ADA}") for _, w, a, _, _ in store.audit_log() if "callback" in a)


def test_the_code_challenge_is_the_verifier_s_s256(service: tuple[TestClient, Store]) -> None:
    """The challenge sent to the provider is the S256 of the verifier kept for the exchange (RFC 7636), and the
    verifier itself never travels in the browser's URL."""
    client, _ = service
    off = client.get("/review/login/oidc", follow_redirects=False)
    asked = {k: v[0] for k, v in parse_qs(urlsplit(off.headers["location"]).query).items()}
    carried = jwt.decode(off.cookies[OIDC_COOKIE], options={"verify_signature": False})
    digest = base64.urlsafe_b64encode(hashlib.sha256(carried["verifier"].encode()).digest()).rstrip(b"=").decode()
    assert digest == asked["code_challenge"] and carried["verifier"] not in off.headers["location"]


@pytest.mark.parametrize(
    ("change", "words"),
    [
        ({"tamper": {"nonce": "another sign-in's"}}, "for another sign-in"),
        ({"tamper": {"aud": "another-client"}}, "does not hold"),
        ({"tamper": {"iss": "https://elsewhere.example"}}, "does not hold"),
        ({"tamper": {"exp": 1_000_000_000, "iat": 999_999_000}}, "does not hold"),
        ({"algorithm": "HS256"}, "does not hold"),
        ({"refuse": "access_denied"}, "did not sign you in (access_denied)"),
        ({"refuse": "Your account is locked, call 555-0100"}, "did not sign you in (an error)"),
        ({"user": {"sub": "someone-else", "name": "Dr. Nobody"}}, "no reviewer is recorded"),
    ],
)
def test_a_wrong_answer_from_the_provider_signs_nobody_in(
    service: tuple[TestClient, Store], provider: Provider, change: dict[str, Any], words: str
) -> None:
    client, _ = service
    for name, value in change.items():
        setattr(provider, name, value)
    answer = _round_trip(client)
    assert answer.status_code == 200 and words in answer.text and 'role="alert"' in answer.text
    assert SESSION_COOKIE not in client.cookies and client.get("/review", follow_redirects=False).status_code == 303


def test_a_callback_without_its_state_or_replayed_signs_nobody_in(service: tuple[TestClient, Store]) -> None:
    client, _ = service
    off = client.get("/review/login/oidc", follow_redirects=False)
    back = (
        httpx.get(off.headers["location"], follow_redirects=False).headers["location"].removeprefix("http://testserver")
    )
    code = parse_qs(urlsplit(back).query)["code"][0]
    forged = client.get(f"/review/login/oidc/callback?code={code}&state=guessed")
    assert "another state" in forged.text and SESSION_COOKIE not in client.cookies
    elsewhere = TestClient(client.app)  # another browser, without the sign-in cookie
    assert "began elsewhere" in elsewhere.get(back).text
    assert client.get(back).status_code == 200 and SESSION_COOKIE in client.cookies  # the right state, once
    client.cookies.clear()
    client.cookies.set(OIDC_COOKIE, off.cookies[OIDC_COOKIE])
    replayed = client.get(back)
    assert "refused the sign-in code (invalid_grant)" in replayed.text and SESSION_COOKIE not in client.cookies


def test_a_disabled_reviewer_cannot_sign_in_through_the_provider(service: tuple[TestClient, Store]) -> None:
    client, store = service
    Reviewers(store).disable(ADA)
    answer = _round_trip(client)
    assert "this reviewer is disabled" in answer.text and SESSION_COOKIE not in client.cookies


def test_an_npi_claim_records_the_reviewer_on_first_sign_in(tmp_path: Path, provider: Provider) -> None:
    """With ``npi_claim``, a new account asserting a valid NPI becomes a reviewer (its name from the name claim);
    an existing reviewer of that NPI is linked to the account; an NPI failing its check digit is refused."""
    client, store = _service(tmp_path, provider, npi_claim="npi")
    Reviewers(store).add(npi=BEN, name="Dr. Ben Okafor", password="correct horse battery staple")
    with client:
        provider.user = {"sub": "new-sub", "name": "Dr. Cal Nguyen", "npi": "1003000126"}
        assert _round_trip(client).status_code == 200 and SESSION_COOKIE in client.cookies
        cal = Reviewers(store).by_subject("new-sub")
        assert cal is not None and (cal.npi, cal.name) == ("1003000126", "Dr. Cal Nguyen")

        client.cookies.clear()
        provider.user = {"sub": "ben-sub", "name": "Ben", "npi": BEN}
        assert SESSION_COOKIE in _round_trip(client).cookies
        ben = Reviewers(store).by_npi(BEN)
        assert ben is not None and ben.subject == "ben-sub" and ben.name == "Dr. Ben Okafor"

        client.cookies.clear()
        provider.user = {"sub": "typo-sub", "name": "Dr. Typo", "npi": "1234567890"}
        assert "check digit" in _round_trip(client).text and Reviewers(store).by_subject("typo-sub") is None

        client.cookies.clear()
        provider.user = {"sub": "ben-sub", "name": "Ben", "npi": ADA}  # the account now claims another NPI
        assert "NPI for this account is not the reviewer record" in _round_trip(client).text


def test_no_provider_configured_is_a_404(tmp_path: Path) -> None:
    settings = load_settings(service={"state_url": f"sqlite:///{tmp_path}/state.db", "forward": False})
    with TestClient(wire(settings).app()) as client:
        assert client.get("/review/login/oidc").status_code == 404
        assert "/review/login/oidc" not in client.get("/review/login").text


def test_an_unreachable_provider_is_said_on_the_sign_in_page(tmp_path: Path, provider: Provider) -> None:
    client, _ = _service(tmp_path, provider)
    provider.stop()
    with client:
        answer = client.get("/review/login/oidc", follow_redirects=False)
    assert answer.status_code == 200 and "could not be reached" in answer.text
