"""A hostile client against the service in-process: each attack of the second hardening round (issue 25)
kept as a test that it is refused or handled, and that nothing is stored from a refused request."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from adapter.config import load_settings
from adapter.service import wire
from adapter.service.state import Store
from tests.conftest import auth

WRITER, SCOPED, OUTCOMES = "writer-token", "scoped-token", "outcome-token"


@pytest.fixture
def service(tmp_path: Path) -> Iterator[tuple[TestClient, Store]]:
    settings = load_settings(
        service={
            "tokens": {
                WRITER: "system/*.*",
                SCOPED: "system/ClaimResponse.rs?patient=Patient/p1",
                OUTCOMES: "system/ClaimResponse.rs?outcome=complete",
            },
            "state_url": f"sqlite:///{tmp_path}/state.db",
            "forward": False,
            "rate_limit": 1000,
        }
    )
    wiring = wire(settings)
    with TestClient(wiring.app()) as client:
        yield client, wiring.store


def _request(patient: str, text: str = "Physical therapy 2 times a week for 4 weeks") -> dict[str, Any]:
    return {"resourceType": "ServiceRequest", "status": "active", "intent": "order",
            "subject": {"reference": f"Patient/{patient}"}, "code": {"text": text}}  # fmt: skip


def _post(client: TestClient, resource: dict[str, Any], path: str = "/fhir/ServiceRequest") -> Any:
    return client.post(path, content=json.dumps(resource), headers=auth(WRITER))


def _text(answer: Any) -> str:
    """The first issue's message of an OperationOutcome answer."""
    return str(answer.json()["issue"][0]["details"]["text"])


# --- 1. scopes hold for every value of a repeated parameter ----------------------------------------------


@pytest.mark.parametrize(
    ("token", "query"),
    [
        (SCOPED, "patient=Patient/p1&patient=Patient/p2"),
        (SCOPED, "patient=Patient/p2&patient=Patient/p1"),
        (SCOPED, "patient=Patient/p1,Patient/p2"),
        (OUTCOMES, "outcome=complete&outcome=partial"),
        (OUTCOMES, "outcome=partial&outcome=complete"),
    ],
)
def test_a_repeated_parameter_does_not_widen_a_restricted_scope(
    service: tuple[TestClient, Store], token: str, query: str
) -> None:
    client, _ = service
    assert _post(client, _request("p1")).status_code == 201
    assert _post(client, _request("p2")).status_code == 201
    answer = client.get(f"/fhir/ClaimResponse?{query}", headers=auth(token))
    assert answer.status_code == 403, answer.text
    assert client.get("/fhir/ClaimResponse?patient=Patient/p1", headers=auth(SCOPED)).json()["total"] == 1


@pytest.mark.parametrize(
    "query",
    [
        "patient=Patient/p1&patient=Patient/p2",
        "outcome=complete&outcome=partial",
        "request=ServiceRequest/a&request=ServiceRequest/b",
        "_count=1&_count=50",
    ],
)
def test_a_search_refuses_a_parameter_it_reads_once_given_twice(service: tuple[TestClient, Store], query: str) -> None:
    client, _ = service
    answer = client.get(f"/fhir/ClaimResponse?{query}", headers=auth(WRITER))
    assert answer.status_code == 400 and "more than once" in _text(answer)
