"""A small OpenID Connect provider on loopback, for the sign-in tests: discovery, the keys its ID tokens are
signed with (RS256), an authorization endpoint that signs in whoever the test names (no page to fill in),
and a token endpoint that checks what a real provider checks: the client's secret, the code (once), the
redirect URI and the PKCE verifier against the S256 challenge. A test may make it refuse, or make its ID
token wrong in one way, to see the service refuse the sign-in."""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, unquote_plus, urlencode, urlsplit

import jwt
from cryptography.hazmat.primitives.asymmetric import rsa

CLIENT_ID, CLIENT_SECRET = "imr-review", "the client secret the provider issued"


def _s256(verifier: str) -> str:
    return base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()


def _client(authorization: str) -> tuple[str, str] | None:
    """HTTP Basic client credentials, each form-decoded (RFC 6749 2.3.1)."""
    scheme, _, encoded = authorization.partition(" ")
    if scheme != "Basic":
        return None
    client, _, secret = base64.b64decode(encoded).decode().partition(":")
    return unquote_plus(client), unquote_plus(secret)


@dataclass
class _Grant:
    challenge: str
    nonce: str
    redirect_uri: str
    claims: dict[str, Any]


@dataclass
class Provider:
    """The provider; ``user`` is who signs in next (the ID token's claims, ``sub`` among them)."""

    user: dict[str, Any] = field(default_factory=lambda: {"sub": "ada-sub", "name": "Dr. Ada Reyes"})
    #: Set: the authorization endpoint answers with this OAuth error instead of a code.
    refuse: str | None = None
    #: Claims to change in the next ID tokens (a wrong ``aud``, ``nonce``, ``exp``, ...).
    tamper: dict[str, Any] = field(default_factory=dict)
    #: "HS256": ID tokens signed with the client secret, which no relying party should accept.
    algorithm: str = "RS256"
    #: What the token endpoint saw: (grant_type, whether the PKCE verifier matched its challenge).
    exchanges: list[tuple[str, bool]] = field(default_factory=list)
    authorizations: list[dict[str, str]] = field(default_factory=list)
    #: The host its issuer names ("localhost": another site than a service on 127.0.0.1, as a real provider is).
    host: str = "127.0.0.1"

    def __post_init__(self) -> None:
        self.key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.grants: dict[str, _Grant] = {}
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def issuer(self) -> str:
        return f"http://{self.host}:{self.server.server_address[1]}"

    def start(self) -> Provider:
        self.thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=10)

    # --- what it answers ----------------------------------------------------------------------------------

    def discovery(self) -> dict[str, Any]:
        return {
            "issuer": self.issuer,
            "authorization_endpoint": f"{self.issuer}/authorize",
            "token_endpoint": f"{self.issuer}/token",
            "jwks_uri": f"{self.issuer}/jwks",
            "response_types_supported": ["code"],
            "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": ["RS256"],
            "code_challenge_methods_supported": ["S256"],
        }

    def jwks(self) -> dict[str, Any]:
        public = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(self.key.public_key()))
        return {"keys": [{**public, "kid": "k1", "use": "sig", "alg": "RS256"}]}

    def authorize(self, query: dict[str, str]) -> str:
        """The redirect back to the client: a code, or the error the test asked for."""
        self.authorizations.append(query)
        back = query["redirect_uri"]
        if self.refuse:
            return f"{back}?{urlencode({'error': self.refuse, 'state': query.get('state', '')})}"
        if query.get("client_id") != CLIENT_ID or query.get("code_challenge_method") != "S256":
            return f"{back}?{urlencode({'error': 'invalid_request', 'state': query.get('state', '')})}"
        code = secrets.token_urlsafe(16)
        self.grants[code] = _Grant(query["code_challenge"], query.get("nonce", ""), back, dict(self.user))
        return f"{back}?{urlencode({'code': code, 'state': query['state']})}"

    def token(self, form: dict[str, str], authorization: str) -> tuple[int, dict[str, Any]]:
        grant = self.grants.pop(form.get("code", ""), None)  # a code is used once
        verified = grant is not None and _s256(form.get("code_verifier", "")) == grant.challenge
        self.exchanges.append((form.get("grant_type", ""), verified))
        if _client(authorization) != (CLIENT_ID, CLIENT_SECRET):
            return 401, {"error": "invalid_client"}
        if grant is None or not verified or form.get("redirect_uri") != grant.redirect_uri:
            return 400, {"error": "invalid_grant"}
        moment = int(time.time())
        claims = {"iss": self.issuer, "aud": CLIENT_ID, "iat": moment, "exp": moment + 300, "nonce": grant.nonce,
                  **grant.claims, **self.tamper}  # fmt: skip
        if self.algorithm == "HS256":
            id_token = jwt.encode(claims, CLIENT_SECRET, algorithm="HS256", headers={"kid": "k1"})
        else:
            id_token = jwt.encode(claims, self.key, algorithm="RS256", headers={"kid": "k1"})
        return 200, {"access_token": secrets.token_urlsafe(16), "token_type": "Bearer", "expires_in": 300,
                     "id_token": id_token}  # fmt: skip

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        provider = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *_: Any) -> None:
                pass

            def _json(self, status: int, body: dict[str, Any]) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self) -> None:  # noqa: N802 - http.server's name
                parts = urlsplit(self.path)
                query = {k: v[0] for k, v in parse_qs(parts.query).items()}
                if parts.path == "/.well-known/openid-configuration":
                    self._json(200, provider.discovery())
                elif parts.path == "/jwks":
                    self._json(200, provider.jwks())
                elif parts.path == "/authorize":
                    self.send_response(302)
                    self.send_header("Location", provider.authorize(query))
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                else:
                    self._json(404, {"error": "not_found"})

            def do_POST(self) -> None:  # noqa: N802 - http.server's name
                length = int(self.headers.get("Content-Length", "0"))
                form = {k: v[0] for k, v in parse_qs(self.rfile.read(length).decode()).items()}
                if urlsplit(self.path).path != "/token":
                    self._json(404, {"error": "not_found"})
                    return
                self._json(*provider.token(form, self.headers.get("Authorization", "")))

        return Handler
