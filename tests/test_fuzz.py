"""Fuzzing the FHIR readers and the HTTP edge: mutated inputs (bench/fuzz.py's mutator, seeds drawn by
hypothesis so a failure shrinks to one seed) give an answer or an ``AdapterError``, and over HTTP a 4xx
OperationOutcome, never a 500 or another exception. ``bench/fuzz.py`` runs the same at 100,000 a reader."""

from __future__ import annotations

import json
import random
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from adapter.config import load_settings
from adapter.errors import AdapterError
from adapter.fhir import bundle_to_case
from adapter.fhir.request_facts import requested_services
from adapter.service import wire
from bench.fuzz import bases, mutate

BASES = bases()
seeds = st.integers(min_value=0, max_value=2**32)


@pytest.mark.parametrize(
    ("name", "reader"), [("requested_services", requested_services), ("bundle_to_case", bundle_to_case)]
)
@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(seed=seeds)
def test_readers_raise_only_adapter_errors(name: str, reader: Any, seed: int) -> None:
    rng = random.Random(seed)
    data = mutate(rng.choice(BASES[name]), rng)
    try:
        reader(data)
    except AdapterError:
        pass


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    state = tmp_path_factory.mktemp("fuzz") / "state.db"
    service = {"tokens": {"t": "system/*.*"}, "state_url": f"sqlite:///{state}", "forward": False, "rate_limit": 1e6}
    with TestClient(wire(load_settings(service=service)).app()) as test_client:
        yield test_client


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(seed=seeds)
@example(seed=34094437)  # an entry repeated, fullUrl and all: once a 503 from the store, now a 422 at the edge
def test_the_http_edge_answers_every_mutation_with_a_fhir_answer_or_a_4xx(client: TestClient, seed: int) -> None:
    rng = random.Random(seed)
    data = mutate(rng.choice(BASES["requested_services"]), rng)
    path = "/fhir/Claim/$submit" if rng.random() < 0.4 else "/fhir/ServiceRequest"
    answer = client.post(path, content=json.dumps(data), headers={
        "Content-Type": "application/fhir+json", "Authorization": "Bearer t"})  # fmt: skip
    assert answer.status_code < 500, answer.text[:300]
    assert answer.json()["resourceType"] in ("ClaimResponse", "Bundle", "OperationOutcome")


def test_the_mutator_is_not_a_no_op() -> None:
    rng = random.Random(0)
    base = BASES["requested_services"][0]
    assert sum(mutate(base, rng) != base for _ in range(50)) >= 45
