"""Who may do what: SMART v1 and v2 scopes read to the letter, JWT claims checked to the spec, and failed
authentication that cannot be used to flood the service or its audit log."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from fastapi.testclient import TestClient

from adapter.config import load_settings
from adapter.errors import AuthConfigError
from adapter.service import wire
from adapter.service.admission import Principal, Scope

AUDIENCE, ISSUER = "http://adapter.test/fhir", "https://auth.adapter.test"
SR = {"resourceType": "ServiceRequest", "status": "active", "intent": "order",
      "subject": {"reference": "Patient/p1"}, "code": {"text": "MRI of the lumbar spine"}}  # fmt: skip


@pytest.mark.parametrize(
    ("scopes", "resource", "letter", "params", "allowed"),
    [
        ("system/ServiceRequest.write", "ServiceRequest", "c", None, True),
        ("system/ServiceRequest.read", "ServiceRequest", "c", None, False),
        ("system/ServiceRequest.cud", "ServiceRequest", "c", None, True),
        ("system/ServiceRequest.rs", "ServiceRequest", "c", None, False),
        ("system/ServiceRequest.rs?category=x", "ServiceRequest", "c", None, False),
        ("system/*.rs?category=x", "Claim", "c", None, False),
        ("system/*.search", "Claim", "c", None, False),  # neither v1 nor v2: grants nothing
        ("system/*.*", "Claim", "c", None, True),
        ("system/*.read", "ClaimResponse", "s", {}, True),
        ("system/*.cruds", "ClaimResponse", "r", None, True),
        ("system/*.sc", "ClaimResponse", "s", {}, False),  # v2 letters out of order: not a scope
        ("system/*.rr", "ClaimResponse", "r", None, False),
        ("patient/*.read", "ClaimResponse", "r", None, False),  # not a patient-facing service
        ("user/ClaimResponse.r", "ClaimResponse", "r", None, True),
        ("system/ClaimResponse.rs?outcome=complete", "ClaimResponse", "s", {"outcome": ["complete"]}, True),
        ("system/ClaimResponse.rs?outcome=complete", "ClaimResponse", "s", {"outcome": ["partial"]}, False),
        ("system/ClaimResponse.rs?outcome=complete", "ClaimResponse", "s", {}, False),
        ("system/ClaimResponse.rs?outcome=complete", "ClaimResponse", "s", {"outcome": ["complete", "partial"]}, False),
        ("system/ClaimResponse.rs?outcome=complete", "ClaimResponse", "r", None, False),
        ("openid fhirUser launch/patient", "ClaimResponse", "r", None, False),
        ("system/claimresponse.read", "ClaimResponse", "r", None, False),
        ("system/ClaimResponse.write system/Claim.read", "ClaimResponse", "r", None, False),
    ],
)
def test_scopes(scopes: str, resource: str, letter: str, params: dict[str, list[str]] | None, allowed: bool) -> None:
    assert Principal.with_scopes("t", scopes).allows(resource, letter, params) is allowed


def test_scope_parse_keeps_the_restriction() -> None:
    scope = Scope.parse("system/Observation.rs?category=laboratory&status=final")
    assert scope == Scope("system", "Observation", "rs", (("category", "laboratory"), ("status", "final")))
    assert Scope.parse("system/Observation.rs?") == Scope("system", "Observation", "rs")
    assert Scope.parse("bogus") is None and Scope.parse("system/.read") is None


def _client(tmp_path: Path, jwks: Path, **service: Any) -> TestClient:
    settings = load_settings(
        service={
            "jwks": str(jwks),
            "audience": AUDIENCE,
            "issuer": [ISSUER, "https://other-issuer.test"],
            "state_url": f"sqlite:///{tmp_path}/state.db",
            "forward": False,
            **service,
        }
    )
    return TestClient(wire(settings).app())


def _claims(**changes: Any) -> dict[str, Any]:
    moment = int(time.time())
    claims = {"iss": ISSUER, "sub": "ehr-1", "aud": AUDIENCE, "iat": moment, "exp": moment + 300,
              "scope": "system/ServiceRequest.c"}  # fmt: skip
    claims.update(changes)
    return {k: v for k, v in claims.items() if v is not None}


@pytest.mark.parametrize(
    ("changes", "status"),
    [
        ({}, 201),
        ({"iss": "https://other-issuer.test"}, 201),
        ({"iss": "https://evil.test"}, 401),
        ({"iss": None}, 401),
        ({"aud": "http://elsewhere.test/fhir"}, 401),
        ({"aud": None}, 401),
        ({"iat": None}, 401),
        ({"exp": None}, 401),
        ({"exp": int(time.time()) + 100 * 365 * 86400}, 401),  # a century ahead: longer than allowed
        ({"iat": int(time.time()) + 3600, "exp": int(time.time()) + 3900}, 401),  # issued in the future
        ({"scope": "system/ServiceRequest.rs?category=x"}, 403),
    ],
)
def test_jwt_claims(tmp_path: Path, key: tuple[rsa.RSAPrivateKey, Path], changes: dict[str, Any], status: int) -> None:
    token = jwt.encode(_claims(**changes), key[0], algorithm="RS384", headers={"kid": "k1"})
    with _client(tmp_path, key[1]) as client:
        answer = client.post("/fhir/ServiceRequest", content=json.dumps(SR), headers={
            "Content-Type": "application/fhir+json", "Authorization": f"Bearer {token}"})  # fmt: skip
    assert answer.status_code == status, answer.text


def test_jwks_without_issuer_or_audience_does_not_start(tmp_path: Path, key: tuple[rsa.RSAPrivateKey, Path]) -> None:
    with pytest.raises(AuthConfigError, match="issuer"):
        _client(tmp_path, key[1], issuer=None)


def test_failed_authentication_is_rate_limited_and_not_audited_past_the_limit(
    tmp_path: Path, key: tuple[rsa.RSAPrivateKey, Path]
) -> None:
    settings = load_settings(
        service={"state_url": f"sqlite:///{tmp_path}/s.db", "forward": False, "auth_failure_rate": 2}
    )
    wiring = wire(settings)
    with TestClient(wiring.app()) as client:
        statuses = [
            client.get("/fhir/ClaimResponse", headers={"Authorization": f"Bearer guess-{n}"}).status_code
            for n in range(30)
        ]
    assert statuses[:4] == [401] * 4 and statuses[-1] == 429
    audited = [row for row in wiring.store.audit_log(1000) if row[4] == "401"]
    assert len(audited) == statuses.count(401) < 10
