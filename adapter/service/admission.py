"""Who may do what, how often, and with which body: the checks every request passes before any work.

- **Tokens**: a bearer token is a configured static token (token -> scopes) or a SMART Backend Services
  access token, a JWT signed by a key in the configured JWKS whose ``iss`` is a configured issuer, whose
  ``aud`` is the service, and which carries ``exp`` and ``iat`` with a bounded lifetime.
- **Scopes** are read as SMART v1 (``system/Claim.write``: ``read``, ``write``, ``*``) and v2
  (``system/Claim.cu``: letters from ``cruds`` in that order, optionally ``?param=value``). A scope with a
  query grants only what it names: a search whose parameters carry those values, nothing else.
- **Rates**: a token bucket per client; failed authentication is limited per address, and past the limit
  is answered 429 without an audit row, so guessing costs the guesser, not the service.
- **Bodies**: FHIR JSON only, bounded in bytes, parsed once, duplicate keys and deep nesting refused.
"""

from __future__ import annotations

import hashlib
import json
import math
import threading
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl

import jwt
import orjson
from fastapi import Request

from adapter.config import ServiceSettings
from adapter.errors import AuthConfigError
from adapter.service.http import ACCEPTED_TYPES, ServiceError

#: SMART v1 permission words as v2 letters.
_V1 = {"read": "rs", "write": "cud", "*": "cruds"}
_V2_ORDER = "cruds"
_CONTEXTS = ("system", "user")
#: A search's parameters (name -> values), and the SMART contexts a check accepts.
Params = dict[str, list[str]] | None
Contexts = tuple[str, ...]
#: Review Tasks are a person's work: only ``user/`` scopes reach them (an EHR's or payer's ``system/*`` not).
USER_CONTEXT = ("user",)
_CHALLENGE = {"WWW-Authenticate": 'Bearer realm="imr-adapter"'}
_ALGORITHMS = ["RS384", "ES384", "RS256", "ES256"]


@dataclass(frozen=True)
class Scope:
    """One parsed SMART scope: context, resource type (or ``*``), permission letters, query restriction."""

    context: str
    resource: str
    permissions: str
    query: tuple[tuple[str, str], ...] = ()

    @classmethod
    def parse(cls, text: str) -> Scope | None:
        """A SMART v1 or v2 scope, or None for anything else (``openid``, ``launch``, malformed)."""
        context, slash, rest = text.partition("/")
        if not slash or context not in ("patient", "user", "system"):
            return None
        body, _, query = rest.partition("?")
        resource, dot, permissions = body.partition(".")
        if not dot or not (resource == "*" or (resource.isalpha() and resource[:1].isupper())):
            return None
        letters = _V1.get(permissions)
        if letters is None:
            letters = permissions if permissions and _in_order(permissions) else None
        if letters is None:
            return None
        restriction = tuple(parse_qsl(query, keep_blank_values=True, strict_parsing=False)) if query else ()
        if query and not restriction:
            return None
        return cls(context, resource, letters, restriction)

    def grants(self, resource: str, letter: str, params: Params = None, contexts: Contexts = _CONTEXTS) -> bool:
        if self.context not in contexts or self.resource not in ("*", resource) or letter not in self.permissions:
            return False
        if not self.query:
            return True
        # A restricted scope allows only a search that carries each of its parameters, every value sent for
        # it one the scope allows: ``?patient=X&patient=Y`` under ``?patient=X`` is not X's search alone.
        if letter != "s" or params is None:
            return False
        allowed: dict[str, set[str]] = {}
        for name, value in self.query:
            allowed.setdefault(name, set()).add(value)
        return all(params.get(name) and set(params[name]) <= values for name, values in allowed.items())


def _in_order(letters: str) -> bool:
    """SMART v2 permissions: distinct letters of ``cruds`` in that order."""
    position = -1
    for letter in letters:
        found = _V2_ORDER.find(letter)
        if found <= position:
            return False
        position = found
    return True


@dataclass
class Principal:
    """An authenticated client: a name for the audit log (never the token) and its scopes."""

    name: str
    scopes: list[Scope] = field(default_factory=list)

    @classmethod
    def with_scopes(cls, name: str, text: str) -> Principal:
        return cls(name, [s for s in (Scope.parse(t) for t in text.split()) if s is not None])

    def allows(self, resource: str, letter: str, params: Params = None, contexts: Contexts = _CONTEXTS) -> bool:
        return any(scope.grants(resource, letter, params, contexts) for scope in self.scopes)


class Buckets:
    """A token bucket per key: ``rate`` per second, bursts of twice that; memory bounded by ``max_keys``."""

    def __init__(self, rate: float, *, max_keys: int = 10_000) -> None:
        self.rate = rate
        self.max_keys = max_keys
        self.state: dict[str, tuple[float, float]] = {}
        self.lock = threading.Lock()

    def take(self, key: str) -> float:
        """0 when allowed, else the seconds to wait."""
        with self.lock:
            moment = time.monotonic()
            tokens, last = self.state.get(key, (self.rate * 2, moment))
            tokens = min(self.rate * 2, tokens + (moment - last) * self.rate)
            if len(self.state) >= self.max_keys and key not in self.state:
                self.state = {k: v for k, v in self.state.items() if moment - v[1] < 2 / self.rate}
            if tokens < 1:
                self.state[key] = (tokens, moment)
                return (1 - tokens) / self.rate
            self.state[key] = (tokens - 1, moment)
            return 0.0


def too_many(wait: float) -> ServiceError:
    return ServiceError(
        429,
        "too many requests",
        code="rate-limited",
        issue_type="throttled",
        headers={"Retry-After": str(max(1, round(wait)))},
    )


def _jwks(settings: ServiceSettings) -> dict[str, jwt.PyJWK]:
    if settings.jwks is None:
        return {}
    if not settings.audience or not settings.issuer:
        raise AuthConfigError("service.jwks needs service.audience and service.issuer: tokens are checked against both")
    where = f"service.jwks: {settings.jwks}"
    try:
        document = orjson.loads(settings.jwks.read_bytes())
    except OSError as exc:
        raise AuthConfigError(f"{where}: {exc.strerror or exc} (name the clients' JWKS file)") from exc
    except orjson.JSONDecodeError as exc:
        raise AuthConfigError(f'{where}: not JSON ({exc}); expected a JWKS, {{"keys": [...]}}') from exc
    keys = document.get("keys") if isinstance(document, dict) else None
    if not isinstance(keys, list) or not keys:
        raise AuthConfigError(f'{where}: no keys; expected a JWKS, {{"keys": [{{"kty": ..., "kid": ...}}, ...]}}')
    try:
        return {jwk.get("kid", str(n)): jwt.PyJWK(jwk) for n, jwk in enumerate(keys)}
    except (jwt.PyJWTError, AttributeError) as exc:
        raise AuthConfigError(f"{where}: a key that cannot be used ({exc}); expected RSA or EC public keys") from exc


class Admission:
    """Authentication, scopes and rates for one app, from the service settings."""

    def __init__(self, settings: ServiceSettings) -> None:
        self.settings = settings
        for scopes in settings.tokens.values():  # a scope that grants nothing is a typo: say so at start
            wrong = [f'"{s}"' for s in scopes.split() if Scope.parse(s) is None] or ([] if scopes.split() else ['""'])
            if wrong:
                raise AuthConfigError(
                    f"service.tokens: {wrong[0]} is not a SMART scope; expected space-separated scopes such as "
                    '"system/ClaimResponse.read user/Task.rs" (context/Resource.permissions)'
                )
        self.tokens = {
            token: Principal.with_scopes(_token_name(token), scopes) for token, scopes in settings.tokens.items()
        }
        self.keys = _jwks(settings)
        self.issuers = [settings.issuer] if isinstance(settings.issuer, str) else list(settings.issuer or [])
        self.buckets = Buckets(settings.rate_limit)
        self.failures = Buckets(settings.auth_failure_rate)
        self.proxies = frozenset(settings.trusted_proxies)

    def authenticate(self, request: Request, token: str | None = None) -> Principal:
        """The client behind the request's bearer token (or ``token``, given by a sign-in form); 401 (or 429
        for a client that keeps failing)."""
        scheme, _, sent = request.headers.get("authorization", "").partition(" ")
        if token is not None:
            scheme, sent = "bearer", token
        token = sent.strip()
        if scheme.lower() != "bearer" or not token:
            raise self._refuse(request, "a bearer token is required", "auth-required")
        if token in self.tokens:
            return self.tokens[token]
        if self.keys and token.count(".") == 2:
            try:
                return self._from_jwt(token)
            except jwt.PyJWTError as exc:
                raise self._refuse(request, f"invalid access token: {type(exc).__name__}", "auth-invalid") from exc
        raise self._refuse(request, "invalid access token", "auth-invalid")

    def _from_jwt(self, token: str) -> Principal:
        kid = jwt.get_unverified_header(token).get("kid")
        key = self.keys.get(kid) if kid else (next(iter(self.keys.values())) if len(self.keys) == 1 else None)
        if key is None:
            raise jwt.InvalidKeyError("unknown key id")
        claims = jwt.decode(
            token,
            key.key,
            algorithms=_ALGORITHMS,
            audience=self.settings.audience,
            issuer=self.issuers,
            leeway=self.settings.clock_skew,
            options={"require": ["iss", "aud", "exp", "iat"]},
        )
        issued, expires = claims["iat"], claims["exp"]
        if not isinstance(issued, int | float) or issued > time.time() + self.settings.clock_skew:
            raise jwt.ImmatureSignatureError("issued in the future")
        if expires - issued > self.settings.max_token_lifetime:
            raise jwt.InvalidTokenError("lifetime longer than service.max_token_lifetime")
        client = str(claims.get("client_id") or claims.get("sub") or "unknown")[:40]
        return Principal.with_scopes(f"smart:{client}", str(claims.get("scope", "")))

    def address(self, request: Request) -> str:
        """The client's address: the peer's, or behind a configured proxy (``service.trusted_proxies``) the
        nearest address in ``X-Forwarded-For`` that is not one of those proxies. Anyone else's header is
        ignored: a client must not choose the address it is throttled by."""
        peer = request.client.host if request.client else "unknown"
        if peer not in self.proxies:
            return peer
        hops = [hop.strip() for header in request.headers.getlist("x-forwarded-for") for hop in header.split(",")]
        return next((hop for hop in reversed(hops) if hop and hop not in self.proxies), peer)[:64]

    def _refuse(self, request: Request, message: str, code: str) -> ServiceError:
        wait = self.failures.take(self.address(request))
        if wait:
            request.state.quiet = True  # a client that keeps failing: answered, not audited
            return too_many(wait)
        return ServiceError(401, message, code=code, issue_type="login", headers=_CHALLENGE)

    def authorise(
        self,
        principal: Principal,
        resource: str,
        letter: str,
        params: Params,
        contexts: Contexts = _CONTEXTS,
    ) -> None:
        if not principal.allows(resource, letter, params, contexts):
            verb = {"c": "create", "r": "read", "u": "update", "d": "delete", "s": "search"}[letter]
            whose = "" if contexts == _CONTEXTS else f" ({' or '.join(contexts)} scopes)"
            raise ServiceError(
                403,
                f"the token's scopes do not allow {verb} on {resource}{whose}",
                code="auth-scope",
                issue_type="forbidden",
            )
        wait = self.buckets.take(principal.name)
        if wait:
            raise too_many(wait)

    def admit(
        self,
        request: Request,
        resource: str,
        letter: str,
        contexts: Contexts = _CONTEXTS,
        token: str | None = None,
    ) -> Principal:
        """Authenticate, remember who for the audit, check the scopes (of the given contexts) and the rate."""
        principal = self.authenticate(request, token)
        request.state.principal = principal.name
        params = {key: request.query_params.getlist(key) for key in request.query_params} if letter == "s" else None
        self.authorise(principal, resource, letter, params, contexts)
        return principal


def _token_name(token: str) -> str:
    return f"token:{hashlib.sha256(token.encode()).hexdigest()[:8]}"


def client_name(client: str) -> str:
    """The name a client configured by its static token or as ``smart:<client_id>`` authenticates under."""
    return client if client.startswith("smart:") else _token_name(client)


# --- bodies -----------------------------------------------------------------------------------------


async def read_body(request: Request, max_body: int, *, update: bool = False) -> bytes:
    """The raw body of a FHIR JSON request, bounded in bytes (415, 412, 413 before reading further);
    ``If-Match`` only on an ``update``."""
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type not in ACCEPTED_TYPES:
        raise ServiceError(
            415,
            f"content type {content_type[:60] or 'none'!r}; send application/fhir+json",
            code="unsupported-media-type",
            issue_type="not-supported",
        )
    if request.headers.get("if-match") and not update:
        raise ServiceError(412, "If-Match does not apply to a new request", code="precondition", issue_type="conflict")
    too_large = ServiceError(
        413, f"the body is larger than {max_body} bytes", code="too-large", issue_type="too-costly"
    )
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > max_body:
        raise too_large
    raw = bytearray()
    async for chunk in request.stream():
        raw += chunk
        if len(raw) > max_body:
            raise too_large
    return bytes(raw)


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    found: dict[str, Any] = {}
    for key, value in pairs:
        if key in found:
            raise ValueError(f"the key {key[:40]!r} appears twice in one object")
        found[key] = value
    return found


def _decimal(text: str) -> float:
    value = float(text)
    if math.isinf(value):
        raise ValueError("a number beyond what a double holds")
    return value


def _not_json(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


def parse_json(raw: bytes) -> dict[str, Any]:
    """A FHIR resource from JSON bytes: 400 for what is not JSON (NaN and Infinity included), a number beyond
    what a double holds, not an object with a resourceType, has a key twice in one object, or nests beyond what
    the parser allows."""
    try:
        data = json.loads(raw, object_pairs_hook=_no_duplicates, parse_float=_decimal, parse_constant=_not_json)
    except UnicodeDecodeError as exc:
        raise ServiceError(400, "the body is not UTF-8", code="malformed-json", issue_type="structure") from exc
    except RecursionError as exc:
        raise ServiceError(400, "the body nests too deeply", code="malformed-json", issue_type="structure") from exc
    except ValueError as exc:  # json.JSONDecodeError included
        raise ServiceError(
            400, f"the body is not JSON: {str(exc)[:120]}", code="malformed-json", issue_type="structure"
        ) from exc
    if not isinstance(data, dict) or not isinstance(data.get("resourceType"), str):
        raise ServiceError(400, "the body is not a FHIR resource", code="not-a-resource", issue_type="structure")
    return data
