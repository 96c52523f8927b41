"""Reviewers signing in through an OpenID Connect provider: the authorization code flow with PKCE (RFC 7636,
S256) and a nonce: the authorization request and code challenge made by authlib's OAuth 2.0 pieces, the code
exchanged over httpx (authlib's own httpx client is deprecated for another HTTP library), the ID token
checked with PyJWT against the keys the provider publishes (an asymmetric signature, issuer, audience,
expiry, nonce).

The provider says who signed in (the subject and its claims); which reviewer of the reviewer table that is,
and whether they may review, is decided by the sign-in routes. Every failure is a ``ReviewerError`` whose
message a reviewer can act on; nothing here keeps a token.
"""

from __future__ import annotations

import hmac
import threading
from dataclasses import dataclass
from functools import lru_cache
from typing import Any
from urllib.parse import quote

import httpx
import jwt
from authlib.common.security import generate_token
from authlib.oauth2.rfc6749.parameters import prepare_grant_uri
from authlib.oauth2.rfc7636 import create_s256_code_challenge

from adapter.config import OIDCSettings
from adapter.errors import ReviewerError
from adapter.types import JSON

__all__ = ["Identity", "OIDCProvider", "Pending", "provider"]

#: ID token algorithms accepted: asymmetric only (never ``none``, never a secret shared with the client).
_ALGORITHMS = frozenset({"RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA"})
#: Seconds of clock difference allowed on an ID token's ``exp`` and ``iat``.
_LEEWAY = 60


@dataclass(frozen=True)
class Pending:
    """What the browser carries (in a signed cookie) between the redirect to the provider and its return."""

    state: str
    nonce: str
    verifier: str


@dataclass(frozen=True)
class Identity:
    """Who the provider says signed in: the subject and the ID token's claims."""

    subject: str
    claims: JSON


def _refused(what: str) -> ReviewerError:
    return ReviewerError(f"the sign-in provider {what}", location="oidc")


class OIDCProvider:
    """One configured provider: its discovery document and keys fetched when first needed (the keys again
    when a token names one not seen, as after a rotation)."""

    def __init__(self, settings: OIDCSettings, redirect_uri: str) -> None:
        self.settings = settings
        self.redirect_uri = redirect_uri
        self._lock = threading.RLock()  # the keys are fetched under it, and need the metadata
        self._metadata: JSON | None = None
        self._keys: dict[str, jwt.PyJWK] = {}

    def _get(self, url: str) -> JSON:
        try:
            answer = httpx.get(url, timeout=self.settings.timeout, follow_redirects=False)
            answer.raise_for_status()
            found = answer.json()
        except (httpx.HTTPError, ValueError) as exc:
            raise _refused(f"could not be reached or answered wrongly at {url} ({type(exc).__name__})") from exc
        if not isinstance(found, dict):
            raise _refused(f"answered {url} with something that is not a JSON object")
        return found

    def metadata(self) -> JSON:
        """The provider's discovery document, checked to be the configured issuer's."""
        with self._lock:
            if self._metadata is None:
                found = self._get(f"{self.settings.issuer}/.well-known/openid-configuration")
                if str(found.get("issuer", "")).rstrip("/") != self.settings.issuer:
                    raise _refused(f"names another issuer ({str(found.get('issuer'))[:100]!r})")
                missing = [k for k in ("authorization_endpoint", "token_endpoint", "jwks_uri") if not found.get(k)]
                if missing:
                    raise _refused(f"does not publish {', '.join(missing)}")
                self._metadata = found
            return self._metadata

    def start(self) -> tuple[str, Pending]:
        """The provider's authorization URL to send the browser to, and what to check on its return."""
        pending = Pending(state=generate_token(32), nonce=generate_token(32), verifier=generate_token(64))
        challenge: str = create_s256_code_challenge(pending.verifier)  # type: ignore[no-untyped-call]  # no stub
        url = prepare_grant_uri(
            self.metadata()["authorization_endpoint"], client_id=self.settings.client_id, response_type="code",
            redirect_uri=self.redirect_uri, scope=self.settings.scope, state=pending.state, nonce=pending.nonce,
            code_challenge=challenge, code_challenge_method="S256",
        )  # fmt: skip
        return str(url), pending

    def finish(self, code: str, state: str, pending: Pending) -> Identity:
        """The identity the provider's answer names: the code exchanged (with the PKCE verifier) for tokens,
        the ID token checked; ``ReviewerError`` when the state, the exchange or the token is wrong."""
        if not hmac.compare_digest(state.encode(), pending.state.encode()):
            raise ReviewerError("the sign-in came back with another state: start it again", location="oidc")
        token = self._exchange(code, pending.verifier)
        id_token = token.get("id_token")
        if not isinstance(id_token, str):
            raise _refused("sent no ID token (is 'openid' in the scope?)")
        claims = self._verify(id_token)
        if not hmac.compare_digest(str(claims.get("nonce", "")).encode(), pending.nonce.encode()):
            raise _refused("sent an ID token for another sign-in (nonce)")
        return Identity(str(claims["sub"]), claims)

    def _exchange(self, code: str, verifier: str) -> JSON:
        """The token endpoint's answer to the code (RFC 6749 4.1.3): the client authenticated with HTTP Basic
        (id and secret form-encoded first, 2.3.1) when it has a secret, else named as a public client."""
        form = {"grant_type": "authorization_code", "code": code, "redirect_uri": self.redirect_uri,
                "code_verifier": verifier}  # fmt: skip
        secret, auth = self.settings.client_secret, None
        if secret is None:
            form["client_id"] = self.settings.client_id
        else:
            auth = httpx.BasicAuth(quote(self.settings.client_id, safe=""), quote(secret.get_secret_value(), safe=""))
        try:
            answer = httpx.post(self.metadata()["token_endpoint"], data=form, auth=auth, timeout=self.settings.timeout,
                                headers={"Accept": "application/json"})  # fmt: skip
            token = answer.json()
        except (httpx.HTTPError, ValueError) as exc:
            raise _refused(f"could not exchange the sign-in code ({type(exc).__name__})") from exc
        if not isinstance(token, dict):
            raise _refused("answered the code exchange with something that is not a JSON object")
        if answer.status_code != 200 or "error" in token:
            raise _refused(f"refused the sign-in code ({str(token.get('error', answer.status_code))[:60]})")
        return token

    def _verify(self, id_token: str) -> JSON:
        try:
            header = jwt.get_unverified_header(id_token)
            algorithm = str(header.get("alg"))
            if algorithm not in _ALGORITHMS:
                raise jwt.InvalidAlgorithmError(f"{algorithm} is not accepted")
            key = self._key(header.get("kid"))
            claims: JSON = jwt.decode(
                id_token,
                key.key,
                algorithms=[algorithm],
                audience=self.settings.client_id,
                issuer=self.settings.issuer,
                leeway=_LEEWAY,
                options={"require": ["iss", "aud", "exp", "iat", "sub"]},
            )
        except jwt.PyJWTError as exc:
            raise _refused(f"sent an ID token that does not hold ({type(exc).__name__}: {exc})") from exc
        audiences = claims["aud"] if isinstance(claims["aud"], list) else [claims["aud"]]
        if len(audiences) > 1 and claims.get("azp") != self.settings.client_id:
            raise _refused("sent an ID token authorized for another client (azp)")
        return claims

    def _key(self, kid: Any) -> jwt.PyJWK:
        """The signing key by ``kid`` (the only key when the token names none); the keys are fetched again
        once when the kid is not known."""
        for fetch in (False, True):
            with self._lock:
                if fetch or not self._keys:
                    self._keys = self._fetch_keys()
                keys = self._keys
            if kid is None and len(keys) == 1:
                return next(iter(keys.values()))
            if isinstance(kid, str) and kid in keys:
                return keys[kid]
        raise jwt.InvalidKeyError(f"no published key has the id {str(kid)[:40]!r}")

    def _fetch_keys(self) -> dict[str, jwt.PyJWK]:
        found = self._get(self.metadata()["jwks_uri"]).get("keys")
        if not isinstance(found, list):
            raise _refused("publishes no keys (jwks_uri)")
        keys = {}
        for n, jwk in enumerate(found):
            if isinstance(jwk, dict) and jwk.get("use", "sig") == "sig":
                try:
                    keys[str(jwk.get("kid", n))] = jwt.PyJWK(jwk)
                except jwt.PyJWTError:
                    continue  # a key of a type this service cannot use (the others still can be)
        return keys


@lru_cache(maxsize=8)
def provider(settings: OIDCSettings, redirect_uri: str) -> OIDCProvider:
    """The provider of these settings, one per process (its discovery and keys fetched once)."""
    return OIDCProvider(settings, redirect_uri)
