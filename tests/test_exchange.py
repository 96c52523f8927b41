"""The FHIR client against faked HTTP (pytest-httpx): retries, faults, error mapping, paging, auth."""

from __future__ import annotations

import asyncio
import inspect
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path
from typing import get_args

import httpx
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from pytest_httpx import HTTPXMock

from adapter.config import AuthSettings, AuthType, RetrySettings
from adapter.errors import (
    AuthConfigError,
    AuthError,
    ConflictError,
    InvalidRequestError,
    MalformedResponseError,
    NotFoundError,
    PagingError,
    RetryableError,
    TransportError,
)
from adapter.exchange import AsyncFHIRClient, BearerAuth, FHIRClient, SMARTBackendAuth, auth_from_settings
from adapter.exchange._base import retry_after, translate_transport
from adapter.exchange.auth import FLOWS

BASE = "http://fhir.test/fhir"
PATIENT = {"resourceType": "Patient", "id": "p1", "meta": {"versionId": "1"}}
OUTCOME = {
    "resourceType": "OperationOutcome",
    "issue": [{"severity": "error", "code": "invalid", "diagnostics": "bad gender"}],
}
FAST = RetrySettings(attempts=4, backoff=0.0, backoff_max=0.0, total=30.0)


@pytest.fixture
def sleeps(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """Record retry waits instead of sleeping."""
    waited: list[float] = []
    monkeypatch.setattr("adapter.exchange.client.time.sleep", waited.append)

    async def no_wait(seconds: float) -> None:
        waited.append(seconds)

    monkeypatch.setattr("adapter.exchange.client.asyncio.sleep", no_wait)
    return waited


@pytest.fixture
def client() -> FHIRClient:
    with FHIRClient(BASE, retry=FAST) as client:
        yield client  # type: ignore[misc]


def conditional_bundle(conditional: bool = True) -> dict[str, object]:
    request = {"method": "POST", "url": "Patient"}
    if conditional:
        request["ifNoneExist"] = "identifier=urn:x|1"
    return {
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [{"resource": {"resourceType": "Patient"}, "request": request}],
    }


class TestRetries:
    def test_429_honours_retry_after(self, httpx_mock: HTTPXMock, client: FHIRClient, sleeps: list[float]) -> None:
        httpx_mock.add_response(url=f"{BASE}/Patient/p1", status_code=429, headers={"Retry-After": "7"})
        httpx_mock.add_response(url=f"{BASE}/Patient/p1", json=PATIENT)
        assert client.read("Patient", "p1") == PATIENT
        assert sleeps == [7.0]

    def test_retry_after_as_http_date(self) -> None:
        later = datetime.now(UTC) + timedelta(seconds=30)
        response = httpx.Response(503, headers={"Retry-After": format_datetime(later, usegmt=True)})
        assert 25 <= (retry_after(response) or 0) <= 31

    def test_503_storm_gives_up_after_the_attempt_cap(
        self, httpx_mock: HTTPXMock, client: FHIRClient, sleeps: list[float]
    ) -> None:
        httpx_mock.add_response(url=f"{BASE}/Patient/p1", status_code=503, is_reusable=True)
        with pytest.raises(RetryableError) as raised:
            client.read("Patient", "p1")
        assert raised.value.status == 503
        assert len(httpx_mock.get_requests()) == FAST.attempts
        assert len(sleeps) == FAST.attempts - 1

    def test_retry_after_beyond_the_time_budget_is_not_waited(self, httpx_mock: HTTPXMock, sleeps: list[float]) -> None:
        httpx_mock.add_response(status_code=503, headers={"Retry-After": "3600"})
        with FHIRClient(BASE, retry=RetrySettings(attempts=5, total=60)) as client, pytest.raises(RetryableError):
            client.read("Patient", "p1")
        assert sleeps == [] and len(httpx_mock.get_requests()) == 1

    def test_backoff_grows_with_jitter_under_its_cap(self, httpx_mock: HTTPXMock, sleeps: list[float]) -> None:
        httpx_mock.add_response(status_code=502, is_reusable=True)
        policy = RetrySettings(attempts=5, backoff=1.0, backoff_max=3.0, total=1000)
        with FHIRClient(BASE, retry=policy) as client, pytest.raises(RetryableError):
            client.read("Patient", "p1")
        assert len(sleeps) == 4
        assert all(0 <= s <= cap for s, cap in zip(sleeps, (1, 2, 3, 3), strict=True))

    def test_plain_create_is_never_repeated(
        self, httpx_mock: HTTPXMock, client: FHIRClient, sleeps: list[float]
    ) -> None:
        httpx_mock.add_response(method="POST", status_code=503)
        with pytest.raises(RetryableError):
            client.create({"resourceType": "Patient"})
        assert len(httpx_mock.get_requests()) == 1 and sleeps == []

    def test_conditional_create_is_repeated(
        self, httpx_mock: HTTPXMock, client: FHIRClient, sleeps: list[float]
    ) -> None:
        httpx_mock.add_response(method="POST", status_code=503)
        httpx_mock.add_response(
            method="POST", status_code=201, json=PATIENT, headers={"Location": f"{BASE}/Patient/p1/_history/1"}
        )
        result = client.create({"resourceType": "Patient"}, if_none_exist="identifier=urn:x|1")
        assert result.created and result.id == "p1"
        assert [r.headers["If-None-Exist"] for r in httpx_mock.get_requests()] == ["identifier=urn:x|1"] * 2

    def test_read_timeout_retried_for_get(self, httpx_mock: HTTPXMock, client: FHIRClient, sleeps: list[float]) -> None:
        httpx_mock.add_exception(httpx.ReadTimeout("slow"))
        httpx_mock.add_response(json=PATIENT)
        assert client.read("Patient", "p1") == PATIENT

    def test_read_timeout_on_plain_post_is_a_transport_error(self, httpx_mock: HTTPXMock, client: FHIRClient) -> None:
        httpx_mock.add_exception(httpx.ReadTimeout("slow"))
        with pytest.raises(TransportError, match="timed out"):
            client.create({"resourceType": "Patient"})
        assert len(httpx_mock.get_requests()) == 1

    def test_connect_error_retried_even_for_post(
        self, httpx_mock: HTTPXMock, client: FHIRClient, sleeps: list[float]
    ) -> None:
        httpx_mock.add_exception(httpx.ConnectError("refused"))
        httpx_mock.add_response(status_code=201, json=PATIENT)
        assert client.create({"resourceType": "Patient"}).created

    def test_dropped_connection_on_conditional_transaction(
        self, httpx_mock: HTTPXMock, client: FHIRClient, sleeps: list[float]
    ) -> None:
        httpx_mock.add_exception(httpx.RemoteProtocolError("peer closed"))
        answer = {
            "resourceType": "Bundle",
            "type": "transaction-response",
            "entry": [{"response": {"status": "201 Created", "location": "Patient/p1/_history/1"}}],
        }
        httpx_mock.add_response(json=answer)
        (result,) = client.transaction(conditional_bundle())
        assert result.created and result.id == "p1"
        assert len(httpx_mock.get_requests()) == 2

    def test_dropped_connection_on_plain_transaction_is_not_repeated(
        self, httpx_mock: HTTPXMock, client: FHIRClient
    ) -> None:
        httpx_mock.add_exception(httpx.RemoteProtocolError("peer closed"))
        with pytest.raises(TransportError, match="dropped"):
            client.transaction(conditional_bundle(conditional=False))
        assert len(httpx_mock.get_requests()) == 1

    def test_async_client_retries_the_same_way(self, httpx_mock: HTTPXMock, sleeps: list[float]) -> None:
        httpx_mock.add_response(status_code=429, headers={"Retry-After": "2"})
        httpx_mock.add_response(json=PATIENT)

        async def run() -> object:
            async with AsyncFHIRClient(BASE, retry=FAST) as client:
                return await client.read("Patient", "p1")

        assert asyncio.run(run()) == PATIENT
        assert sleeps == [2.0]


class TestErrors:
    @pytest.mark.parametrize(
        ("status", "error"),
        [
            (400, InvalidRequestError), (422, InvalidRequestError), (401, AuthError), (403, AuthError),
            (404, NotFoundError), (410, NotFoundError), (409, ConflictError), (412, ConflictError),
        ],
    )  # fmt: skip
    def test_status_mapping_keeps_the_operation_outcome(
        self, httpx_mock: HTTPXMock, client: FHIRClient, status: int, error: type
    ) -> None:
        httpx_mock.add_response(status_code=status, json=OUTCOME)
        with pytest.raises(error) as raised:
            client.read("Patient", "p1")
        assert raised.value.status == status
        assert raised.value.outcome == OUTCOME
        assert raised.value.to_operation_outcome() == OUTCOME
        assert "bad gender" in raised.value.message
        assert len(httpx_mock.get_requests()) == 1

    def test_malformed_json(self, httpx_mock: HTTPXMock, client: FHIRClient) -> None:
        httpx_mock.add_response(content=b"{not json", headers={"Content-Type": "application/fhir+json"})
        with pytest.raises(MalformedResponseError):
            client.read("Patient", "p1")

    def test_json_that_is_not_a_resource(self, httpx_mock: HTTPXMock, client: FHIRClient) -> None:
        httpx_mock.add_response(json=["a", "list"])
        with pytest.raises(MalformedResponseError):
            client.read("Patient", "p1")

    def test_error_body_that_is_not_json_still_maps_by_status(self, httpx_mock: HTTPXMock, client: FHIRClient) -> None:
        httpx_mock.add_response(status_code=404, text="<html>not here</html>")
        with pytest.raises(NotFoundError) as raised:
            client.read("Patient", "p1")
        assert raised.value.outcome is None

    def test_every_httpx_transport_error_is_translated(self) -> None:
        request = httpx.Request("GET", f"{BASE}/Patient", headers={"Authorization": "Bearer s3cret"})
        classes = [c for _, c in inspect.getmembers(httpx, inspect.isclass) if issubclass(c, httpx.TransportError)]
        assert len(classes) > 8
        for cls in classes:
            error = translate_transport(cls("boom"), request)
            assert isinstance(error, TransportError)
            assert "s3cret" not in str(error)
            assert error.message.split(" (")[0] != "transport error" or cls in (
                httpx.TransportError,
                httpx.NetworkError,
            )


class TestPaging:
    def test_follows_next_links(self, httpx_mock: HTTPXMock, client: FHIRClient) -> None:
        page = lambda n, nxt: {  # noqa: E731
            "resourceType": "Bundle", "type": "searchset",
            "link": [{"relation": "next", "url": nxt}] if nxt else [],
            "entry": [{"resource": {"resourceType": "Patient", "id": f"p{n}"}, "search": {"mode": "match"}},
                      {"resource": {"resourceType": "Organization", "id": "o"}, "search": {"mode": "include"}}],
        }  # fmt: skip
        httpx_mock.add_response(url=f"{BASE}/Patient?_count=1", json=page(1, f"{BASE}/Patient?_count=1&page=2"))
        httpx_mock.add_response(url=f"{BASE}/Patient?_count=1&page=2", json=page(2, None))
        assert [p["id"] for p in client.search("Patient", {"_count": 1})] == ["p1", "p2"]

    @pytest.mark.parametrize(
        "hostile",
        [
            "http://evil.test/fhir/Patient?page=2",
            "https://fhir.test/fhir/Patient?page=2",
            "http://fhir.test/other/Patient",
        ],
    )
    def test_refuses_a_next_link_off_the_base(self, httpx_mock: HTTPXMock, client: FHIRClient, hostile: str) -> None:
        link = [{"relation": "next", "url": hostile}]
        httpx_mock.add_response(
            json={"resourceType": "Bundle", "type": "searchset", "link": link, "entry": [{"resource": PATIENT}]}
        )
        found = client.search("Patient")
        assert next(found) == PATIENT
        with pytest.raises(PagingError):
            next(found)
        assert len(httpx_mock.get_requests()) == 1  # nothing was sent to the hostile link


def _key(tmp_path: Path, alg: str) -> Path:
    key = ec.generate_private_key(ec.SECP384R1()) if alg == "ES384" else rsa.generate_private_key(65537, 2048)
    path = tmp_path / f"{alg}.pem"
    path.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return path


class TestAuth:
    def test_bearer_and_basic(self, httpx_mock: HTTPXMock) -> None:
        httpx_mock.add_response(json=PATIENT, is_reusable=True)
        with FHIRClient(BASE, auth=BearerAuth("t0ken")) as client:
            client.read("Patient", "p1")
        settings = AuthSettings(type="basic", username="u", password="p")  # type: ignore[arg-type]
        with FHIRClient(BASE, auth=settings) as client:
            client.read("Patient", "p1")
        first, second = httpx_mock.get_requests()
        assert first.headers["Authorization"] == "Bearer t0ken"
        assert second.headers["Authorization"].startswith("Basic ")
        assert "t0ken" not in repr(BearerAuth("t0ken"))

    @pytest.mark.parametrize("alg", ["RS384", "ES384"])
    def test_smart_discovers_signs_caches_and_refreshes(self, httpx_mock: HTTPXMock, tmp_path: Path, alg: str) -> None:
        import jwt

        httpx_mock.add_response(
            url=f"{BASE}/.well-known/smart-configuration", json={"token_endpoint": "http://fhir.test/auth/token"}
        )
        httpx_mock.add_response(url="http://fhir.test/auth/token", json={"access_token": "A1", "expires_in": 300})
        httpx_mock.add_response(url=f"{BASE}/Patient/p1", json=PATIENT, is_reusable=True)
        auth = SMARTBackendAuth(fhir_base=BASE, client_id="c1", private_key=_key(tmp_path, alg), alg=alg)
        with FHIRClient(BASE, auth=auth) as client:
            client.read("Patient", "p1")
            client.read("Patient", "p1")
        assert auth.fetched == 1
        token_request = httpx_mock.get_request(url="http://fhir.test/auth/token")
        assert token_request is not None
        form = dict(x.split("=", 1) for x in token_request.content.decode().split("&"))
        assertion = jwt.decode(form["client_assertion"], options={"verify_signature": False})
        assert assertion["iss"] == assertion["sub"] == "c1" and assertion["aud"] == "http://fhir.test/auth/token"
        assert jwt.get_unverified_header(form["client_assertion"])["alg"] == alg
        reads = [r for r in httpx_mock.get_requests() if r.url.path.endswith("/p1")]
        assert all(r.headers["Authorization"] == "Bearer A1" for r in reads)
        assert "PRIVATE" not in repr(auth)

    def test_smart_refreshes_on_401(self, httpx_mock: HTTPXMock, tmp_path: Path) -> None:
        httpx_mock.add_response(url="http://fhir.test/auth/token", json={"access_token": "A1", "expires_in": 300})
        httpx_mock.add_response(url="http://fhir.test/auth/token", json={"access_token": "A2", "expires_in": 300})
        httpx_mock.add_response(url=f"{BASE}/Patient/p1", json=PATIENT)
        httpx_mock.add_response(url=f"{BASE}/Patient/p1", status_code=401)
        httpx_mock.add_response(url=f"{BASE}/Patient/p1", json=PATIENT)
        auth = SMARTBackendAuth(
            fhir_base=BASE, client_id="c1", private_key=_key(tmp_path, "RS384"), token_url="http://fhir.test/auth/token"
        )
        with FHIRClient(BASE, auth=auth) as client:
            client.read("Patient", "p1")
            client.read("Patient", "p1")
        assert auth.fetched == 2
        assert httpx_mock.get_requests()[-1].headers["Authorization"] == "Bearer A2"

    def test_token_endpoint_refusal_shows_no_secret(self, httpx_mock: HTTPXMock, tmp_path: Path) -> None:
        httpx_mock.add_response(url="http://fhir.test/auth/token", status_code=401,
                                json={"error": "invalid_client", "error_description": "unknown client"})  # fmt: skip
        key = _key(tmp_path, "RS384")
        auth = SMARTBackendAuth(
            fhir_base=BASE, client_id="c1", private_key=key, token_url="http://fhir.test/auth/token"
        )
        with FHIRClient(BASE, auth=auth) as client, pytest.raises(AuthError) as raised:
            client.read("Patient", "p1")
        assert "unknown client" in str(raised.value)
        assert "eyJ" not in str(raised.value) and "BEGIN" not in str(raised.value)

    def test_wrong_key_for_the_algorithm(self, tmp_path: Path) -> None:
        with pytest.raises(AuthConfigError, match="ES384 needs an EC P-384"):
            SMARTBackendAuth(fhir_base=BASE, client_id="c", private_key=_key(tmp_path, "RS384"), alg="ES384")
        with pytest.raises(AuthConfigError, match="cannot read"):
            SMARTBackendAuth(fhir_base=BASE, client_id="c", private_key=tmp_path / "missing.pem")

    def test_settings_never_print_secrets(self) -> None:
        settings = AuthSettings(type="bearer", token="t0ken")  # type: ignore[arg-type]
        assert "t0ken" not in repr(settings) and "t0ken" not in settings.model_dump_json()
        assert isinstance(auth_from_settings(settings, BASE), BearerAuth)
        with pytest.raises(AuthConfigError):
            auth_from_settings(AuthSettings(type="smart"), BASE)

    def test_every_auth_type_has_its_flow(self) -> None:
        """A new auth type is its name and settings in adapter.config and its flow in FLOWS (the CLI offers them)."""
        assert list(FLOWS) == list(get_args(AuthType))
        assert auth_from_settings(AuthSettings(), BASE) is None


def test_models_on_request(httpx_mock: HTTPXMock) -> None:
    httpx_mock.add_response(json={"resourceType": "Patient", "id": "p1", "gender": "female"})
    with FHIRClient(BASE, as_models=True) as client:
        patient = client.read("Patient", "p1")
    assert type(patient).__name__ == "Patient" and patient.gender == "female"


def test_bounded_concurrency() -> None:
    in_flight, peak = 0, 0

    async def handler(request: httpx.Request) -> httpx.Response:
        nonlocal in_flight, peak
        in_flight += 1
        peak = max(peak, in_flight)
        await asyncio.sleep(0.01)
        in_flight -= 1
        return httpx.Response(200, json={"resourceType": "Bundle", "type": "transaction-response",
                                         "entry": [{"response": {"status": "201 Created"}}]})  # fmt: skip

    async def run() -> list[object]:
        async with AsyncFHIRClient(BASE, concurrency=3, transport=httpx.MockTransport(handler)) as client:
            return await client.transactions([conditional_bundle()] * 20)

    results = asyncio.run(run())
    assert len(results) == 20 and peak == 3


def test_concurrent_push_creates_a_shared_resource_once() -> None:
    """A server whose conditional create is not atomic (check, then write) gets one IMR organisation."""
    from adapter.fhir import case_to_bundle
    from adapter.jobs.push import post_bundles
    from adapter.letters import parse_letter
    from tests.conftest import LETTERS

    stored: dict[str, int] = {}

    async def racy_server(request: httpx.Request) -> httpx.Response:
        import orjson

        bundle = orjson.loads(request.content)
        answers = []
        for entry in bundle["entry"]:
            key = entry["request"]["ifNoneExist"]
            exists = stored.get(key, 0) > 0
            await asyncio.sleep(0.005)  # the window in which another transaction checks too
            if exists:
                answers.append({"response": {"status": "200 OK"}})
            else:
                stored[key] = stored.get(key, 0) + 1
                answers.append({"response": {"status": "201 Created"}})
        return httpx.Response(200, json={"resourceType": "Bundle", "type": "transaction-response", "entry": answers})

    bundles = []
    for n in range(12):
        case = parse_letter((LETTERS / "case-number-crlf.txt").read_bytes())
        case.case_number = f"CM99-{n:07d}"
        bundles.append(case_to_bundle(case))

    async def run() -> list[object]:
        async with AsyncFHIRClient(BASE, concurrency=6, transport=httpx.MockTransport(racy_server)) as client:
            return await post_bundles(client, bundles)

    answers = asyncio.run(run())
    assert all(isinstance(a, list) for a in answers)
    assert max(stored.values()) == 1  # nothing created twice, the shared organisation included
    assert sum(1 for k in stored if "maximus-federal-services" in k) == 1


def test_settings_precedence(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from adapter.config import load_settings

    config = tmp_path / "imr.toml"
    config.write_text('ehr_url = "http://from-file/fhir"\ntimeout = 12.0\n[retry]\nattempts = 2\n')
    monkeypatch.setenv("IMR_CONFIG", str(config))
    settings = load_settings()
    assert (settings.ehr, settings.timeout, settings.retry.attempts) == ("http://from-file/fhir", 12.0, 2)
    monkeypatch.setenv("IMR_EHR_URL", "http://from-env/fhir")
    monkeypatch.setenv("IMR_RETRY__ATTEMPTS", "7")
    settings = load_settings()
    assert (settings.ehr, settings.retry.attempts) == ("http://from-env/fhir", 7)
    assert load_settings(timeout=3.0).timeout == 3.0  # a command-line flag wins
    assert load_settings().auth("payer").type == "smart"  # the sandbox payer's own credentials
