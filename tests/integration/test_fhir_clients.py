"""What a FHIR client library sees of `imr-adapter serve`: fhirpy's ``count()`` and paging over the answers,
and PAS answers still found seven months on by ``$inquire`` and ClaimResponse search (spec-73: a pended
authorization stays available for query at least six months after the services), the stored times moved back
seven months rather than waited for."""

from __future__ import annotations

import json
import os
import signal
import subprocess
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from fhirpy import SyncFHIRClient
from sqlalchemy import create_engine, text

from adapter import sandbox
from adapter.sandbox import free_port
from tests.conftest import FHIR, LETTERS
from tests.test_service import _inquiry, _pas, _returned, with_npi

TOKEN = "clients-token"
SEVEN_MONTHS = timedelta(days=213)


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[str, str]]:
    """The service in its own process on a state of its own, forwarding nothing: (base URL, state URL)."""
    state = f"sqlite:///{tmp_path}/state.db"
    env = {**os.environ, "IMR_SERVICE__TOKENS": json.dumps({TOKEN: "system/*.*"}), "IMR_SERVICE__STATE_URL": state,
           "IMR_SERVICE__FORWARD": "false", "IMR_SERVICE__NOTIFY": "false"}  # fmt: skip
    port = free_port()
    process = sandbox.start_service(env, port, timeout=120)
    try:
        yield f"http://127.0.0.1:{port}/fhir", state
    finally:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _submit(base: str, request: dict[str, Any]) -> dict[str, Any]:
    headers = {**FHIR, "Authorization": f"Bearer {TOKEN}"}
    answer = httpx.post(f"{base}/Claim/$submit", content=json.dumps(request), headers=headers, timeout=60)
    assert answer.status_code == 200, answer.text
    return dict(answer.json()["entry"][0]["resource"])


def _moved_back(state: str, by: timedelta) -> None:
    """Every stored ClaimResponse (and each of its versions) made ``by`` earlier: created and lastUpdated, in
    the resource and in the columns searches read."""

    def earlier(instant: str) -> str:
        return (datetime.fromisoformat(instant.replace("Z", "+00:00")) - by).isoformat(timespec="milliseconds")

    def moved(raw: str) -> str:
        resource = orjson.loads(raw)
        resource["created"] = earlier(resource["created"])
        resource["meta"]["lastUpdated"] = earlier(resource["meta"]["lastUpdated"])
        return orjson.dumps(resource).decode()

    engine = create_engine(f"sqlite:///{state.removeprefix('sqlite:///')}")
    with engine.begin() as db:
        for rid, raw in db.execute(text("SELECT id, resource FROM claim_responses")).all():
            resource = moved(raw)
            updated = orjson.loads(resource)["meta"]["lastUpdated"]
            micros = int(datetime.fromisoformat(updated).timestamp() * 1_000_000)
            db.execute(text("UPDATE claim_responses SET resource = :r, last_updated = :u, updated_us = :us "
                            "WHERE id = :id"), {"r": resource, "u": updated, "us": micros, "id": rid})  # fmt: skip
        for rid, version, raw in db.execute(text("SELECT id, version, resource FROM claim_response_versions")).all():
            db.execute(text("UPDATE claim_response_versions SET resource = :r WHERE id = :id AND version = :v"),
                       {"r": moved(raw), "id": rid, "v": version})  # fmt: skip
    engine.dispose()


def test_fhirpy_counts_and_pages_the_answers(served: tuple[str, str]) -> None:
    base, _ = served
    made = {_submit(base, _pas(path.name))["id"] for path in sorted(LETTERS.glob("*.txt"))}
    client = SyncFHIRClient(base, authorization=f"Bearer {TOKEN}")
    answers = client.resources("ClaimResponse")
    assert answers.count() == len(made) > 2
    assert answers.search(outcome="complete").count() + answers.search(outcome="partial").count() == len(made)
    paged = answers.limit(2).fetch_all()  # three pages and more, by the next links
    assert sorted(r["id"] for r in paged) == sorted(made)


def test_pas_answers_are_found_seven_months_on(served: tuple[str, str]) -> None:
    base, state = served
    request = with_npi(_pas("case-number-multi.txt"))
    response = _submit(base, request)
    _moved_back(state, SEVEN_MONTHS)
    six_months_ago = (datetime.now(UTC) - timedelta(days=183)).date().isoformat()
    inquired = httpx.post(f"{base}/Claim/$inquire", content=json.dumps(_inquiry(request)),
                          headers={**FHIR, "Authorization": f"Bearer {TOKEN}"}, timeout=60)  # fmt: skip
    (bundle,) = _returned(inquired)
    found = bundle["entry"][0]["resource"]
    assert found["id"] == response["id"] and found["meta"]["lastUpdated"] < six_months_ago
    answers = SyncFHIRClient(base, authorization=f"Bearer {TOKEN}").resources("ClaimResponse")
    assert [r["id"] for r in answers.search(_lastUpdated=f"lt{six_months_ago}").fetch_all()] == [response["id"]]
    assert answers.search(_lastUpdated=f"ge{six_months_ago}").count() == 0
    assert answers.search(patient=response["patient"]["reference"]).count() == 1
