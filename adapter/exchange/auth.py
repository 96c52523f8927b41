"""Authentication for FHIR servers as httpx auth flows (one implementation serves sync and async clients):
none, a static bearer token, HTTP basic, and SMART Backend Services (client_credentials with a
private_key_jwt assertion signed RS384 or ES384; the token endpoint discovered from
``.well-known/smart-configuration``; the token cached and refreshed before it expires).

Secrets never appear in ``repr``, logs or error messages.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable, Generator
from pathlib import Path
from typing import Any

import httpx
import jwt
import orjson
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from adapter.config import AuthSettings, AuthType
from adapter.errors import AuthConfigError, AuthError

ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
#: Refresh a token when less than this many seconds (or a tenth of its lifetime) remain.
REFRESH_MARGIN = 60.0


class BearerAuth(httpx.Auth):
    """A static bearer token."""

    def __init__(self, token: str) -> None:
        self._token = token

    def __repr__(self) -> str:
        return "BearerAuth(token=***)"

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        request.headers["Authorization"] = f"Bearer {self._token}"
        yield request


def _load_key(path: Path, alg: str) -> Any:
    try:
        key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    except OSError as exc:
        raise AuthConfigError(f"cannot read the private key: {exc.strerror or exc}", location=str(path)) from exc
    except (ValueError, TypeError) as exc:
        raise AuthConfigError("the private key is not an unencrypted PEM key", location=str(path)) from exc
    if alg == "RS384" and not isinstance(key, rsa.RSAPrivateKey):
        raise AuthConfigError("RS384 needs an RSA private key", location=str(path))
    if alg == "ES384" and not (isinstance(key, ec.EllipticCurvePrivateKey) and key.curve.name == "secp384r1"):
        raise AuthConfigError("ES384 needs an EC P-384 private key", location=str(path))
    return key


class SMARTBackendAuth(httpx.Auth):
    """SMART Backend Services: a client assertion for an access token, cached until shortly before expiry."""

    requires_response_body = True

    def __init__(
        self,
        *,
        fhir_base: str,
        client_id: str,
        private_key: Path,
        alg: str = "RS384",
        kid: str | None = None,
        scope: str = "system/*.read system/*.write",
        token_url: str | None = None,
    ) -> None:
        if alg not in ("RS384", "ES384"):
            raise AuthConfigError(f"unsupported signing algorithm {alg}; use RS384 or ES384")
        self.fhir_base = fhir_base.rstrip("/")
        self.client_id = client_id
        self.alg = alg
        self.kid = kid
        self.scope = scope
        self.token_url = token_url
        self._key = _load_key(private_key, alg)
        self._token: str | None = None
        self._expires = 0.0
        self._lock = threading.Lock()
        #: Tokens fetched so far (for tests and metrics).
        self.fetched = 0

    def __repr__(self) -> str:
        return f"SMARTBackendAuth(client_id={self.client_id!r}, alg={self.alg!r}, key=***)"

    def _valid_token(self) -> str | None:
        with self._lock:
            if self._token is None:
                return None
            return self._token if time.time() < self._expires else None

    def assertion(self, token_url: str) -> str:
        now = int(time.time())
        claims = {"iss": self.client_id, "sub": self.client_id, "aud": token_url, "exp": now + 240,
                  "iat": now, "jti": uuid.uuid4().hex}  # fmt: skip
        headers = {"kid": self.kid} if self.kid else None
        return jwt.encode(claims, self._key, algorithm=self.alg, headers=headers)

    def _fetch(self) -> Generator[httpx.Request, httpx.Response, str]:
        token_url = self.token_url
        if token_url is None:
            config_url = f"{self.fhir_base}/.well-known/smart-configuration"
            answer = yield httpx.Request("GET", config_url, headers={"Accept": "application/json"})
            if answer.status_code != 200:
                raise AuthError(f"SMART discovery answered HTTP {answer.status_code}", status=answer.status_code,
                                url=config_url)  # fmt: skip
            try:
                token_url = str(orjson.loads(answer.content)["token_endpoint"])
            except (orjson.JSONDecodeError, KeyError, TypeError) as exc:
                raise AuthError("SMART discovery gave no token_endpoint", url=config_url) from exc
            self.token_url = token_url
        form = {"grant_type": "client_credentials", "scope": self.scope, "client_assertion_type": ASSERTION_TYPE,
                "client_assertion": self.assertion(token_url)}  # fmt: skip
        answer = yield httpx.Request("POST", token_url, data=form, headers={"Accept": "application/json"})
        try:
            body = orjson.loads(answer.content) if answer.content else {}
        except orjson.JSONDecodeError:
            body = {}
        if answer.status_code != 200 or "access_token" not in body:
            reason = body.get("error_description") or body.get("error") or "no access_token"
            raise AuthError(f"the token endpoint refused: {reason}", status=answer.status_code, url=token_url)
        lifetime = float(body.get("expires_in") or 300)
        with self._lock:
            self._token = str(body["access_token"])
            self._expires = time.time() + lifetime - min(REFRESH_MARGIN, lifetime / 10)
            self.fetched += 1
            return self._token

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        token = self._valid_token()
        fresh = token is None
        if token is None:
            token = yield from self._fetch()
        request.headers["Authorization"] = f"Bearer {token}"
        response = yield request
        if response.status_code == 401 and not fresh:  # revoked or expired early: one new token, one retry
            with self._lock:
                self._token = None
            token = yield from self._fetch()
            request.headers["Authorization"] = f"Bearer {token}"
            yield request


def _none(settings: AuthSettings, fhir_base: str) -> None:
    return None


def _bearer(settings: AuthSettings, fhir_base: str) -> BearerAuth:
    if settings.token is None:
        raise AuthConfigError("bearer auth needs a token")
    return BearerAuth(settings.token.get_secret_value())


def _basic(settings: AuthSettings, fhir_base: str) -> httpx.BasicAuth:
    if settings.username is None or settings.password is None:
        raise AuthConfigError("basic auth needs a username and a password")
    return httpx.BasicAuth(settings.username, settings.password.get_secret_value())


def _smart(settings: AuthSettings, fhir_base: str) -> SMARTBackendAuth:
    if settings.client_id is None or settings.private_key is None:
        raise AuthConfigError("SMART Backend Services needs a client id and a private key")
    return SMARTBackendAuth(
        fhir_base=fhir_base, client_id=settings.client_id, private_key=settings.private_key, alg=settings.alg,
        kid=settings.kid, scope=settings.scope, token_url=settings.token_url,
    )  # fmt: skip


#: The auth flow of each ``AuthType``, made from a server's settings and base URL. A new type is its name and
#: settings in ``adapter.config`` and its flow here (a test keeps the two in step).
FLOWS: dict[AuthType, Callable[[AuthSettings, str], httpx.Auth | None]] = {
    "none": _none,
    "bearer": _bearer,
    "basic": _basic,
    "smart": _smart,
}


def auth_from_settings(settings: AuthSettings, fhir_base: str) -> httpx.Auth | None:
    """The httpx auth for a server's settings; ``AuthConfigError`` when they cannot work."""
    return FLOWS[settings.type](settings, fhir_base)
