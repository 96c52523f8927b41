"""Bundles posted to a real FHIR server: accepted, idempotent, and readable back as the same case."""

from __future__ import annotations

import uuid
from collections import Counter
from typing import Any

import httpx
import orjson
import pytest

from adapter import parse_letter
from adapter.fhir import bundle_to_case, case_to_bundle
from adapter.model import IMRCase
from tests.conftest import CORPUS, LETTERS, SEED_LETTER

FHIR_JSON = "application/fhir+json"
LETTER_FILES = [
    *sorted(p for p in LETTERS.iterdir() if p.suffix in {".txt", ".pdf"}),
    SEED_LETTER,
    *sorted((CORPUS / "pdf").glob("*.pdf")),
]


def _counts(client: httpx.Client, types: set[str]) -> Counter[str]:
    counts: Counter[str] = Counter()
    for rtype in types:
        answer = client.get(f"/{rtype}", params={"_summary": "count"})
        answer.raise_for_status()
        counts[rtype] = answer.json()["total"]
    return counts


def _post(client: httpx.Client, bundle: dict[str, Any]) -> list[str]:
    answer = client.post("", content=orjson.dumps(bundle), headers={"Content-Type": FHIR_JSON})
    assert answer.status_code == 200, answer.text[:2000]
    return [e["response"]["status"] for e in answer.json()["entry"]]


def _read_case(client: httpx.Client, case: IMRCase, bundle: dict[str, Any]) -> IMRCase:
    """Fetch every resource of the case back from the server by its business identifier."""
    resources = []
    for entry in bundle["entry"]:
        query = entry["request"]["ifNoneExist"]
        name, _, value = query.partition("=")
        found = client.get(f"/{entry['resource']['resourceType']}", params={name: value}).json()
        assert found["total"] == 1, (entry["resource"]["resourceType"], query, found.get("total"))
        resources.append(found["entry"][0]["resource"])
    return bundle_to_case(resources)


@pytest.fixture(scope="module")
def client(ehr_url: str) -> httpx.Client:
    with httpx.Client(base_url=ehr_url, timeout=60.0, headers={"Accept": FHIR_JSON}) as client:
        yield client  # type: ignore[misc]


def test_every_bundle_is_accepted_once_and_only_once(client: httpx.Client) -> None:
    cases = [parse_letter(p.read_bytes()) for p in LETTER_FILES if p.exists()]
    bundles = [case_to_bundle(c) for c in cases]
    types = {e["resource"]["resourceType"] for b in bundles for e in b["entry"]}
    before = _counts(client, types)

    for bundle in bundles:
        _post(client, bundle)
    after_first = _counts(client, types)
    created = after_first - before
    expected: Counter[str] = Counter(e["resource"]["resourceType"] for b in bundles for e in b["entry"])
    expected["Organization"] -= len(bundles) - 1  # the IMR organisation is one resource shared by all cases
    if not any(before.values()):  # a fresh server (as scripts/test starts it): exactly one of each
        assert created == expected
    else:  # a server that already held some of these cases: fewer are new, never more
        assert all(created[t] <= expected[t] for t in types)

    for bundle in bundles:
        statuses = _post(client, bundle)
        assert all(s.startswith("200") for s in statuses), statuses
    assert _counts(client, types) == after_first

    for case, bundle in list(zip(cases, bundles, strict=True))[:: max(1, len(cases) // 12)]:
        assert _read_case(client, case, bundle) == case


def test_a_new_case_is_created_once_and_read_back(client: httpx.Client) -> None:
    # a case the server has never seen: every resource is created once, the shared organisation is not
    case = parse_letter((LETTERS / "case-number-multi.txt").read_bytes())
    case.case_number = f"CM99-{uuid.uuid4().int % 10_000_000:07d}"
    bundle = case_to_bundle(case)
    statuses = _post(client, bundle)
    assert statuses.count("201 Created") == len(bundle["entry"]) - 1
    assert _post(client, bundle) == ["200 OK"] * len(bundle["entry"])
    assert _read_case(client, case, bundle) == case
