"""The FHIR client, push, pull and check against the real sandbox servers (or any servers configured)."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from adapter.config import AuthSettings, load_settings
from adapter.errors import AuthError, ConflictError, InvalidRequestError, NotFoundError
from adapter.exchange import AsyncFHIRClient, FHIRClient, SMARTBackendAuth
from adapter.fhir import case_to_bundle
from adapter.jobs.check import ConformanceCheck
from adapter.jobs.pull import pull_cases
from adapter.jobs.push import push
from adapter.letters import parse_letter
from adapter.sandbox import SANDBOX_BASIC_USER
from tests.conftest import LETTERS

SYSTEM = "urn:imr-adapter:test"
LETTER_FILES = sorted(p for p in LETTERS.iterdir() if p.suffix in {".txt", ".pdf"})


def _patient(tag: str, n: int = 0) -> dict[str, object]:
    return {"resourceType": "Patient", "identifier": [{"system": SYSTEM, "value": f"{tag}-{n}"}],
            "meta": {"tag": [{"system": SYSTEM, "code": tag}]}, "gender": "female"}  # fmt: skip


@pytest.fixture
def ehr(ehr_url: str) -> Iterator[FHIRClient]:
    with FHIRClient(ehr_url, auth=load_settings().auth("ehr")) as client:
        yield client


@pytest.fixture
def payer(payer_url: str) -> Iterator[FHIRClient]:
    with FHIRClient(payer_url, auth=load_settings().auth("payer")) as client:
        yield client


def test_every_interaction(ehr: FHIRClient) -> None:
    tag = uuid.uuid4().hex[:10]
    assert ehr.capabilities()["fhirVersion"].startswith("4.0")
    created = ehr.create(_patient(tag), if_none_exist=f"identifier={SYSTEM}|{tag}-0")
    assert created.status == 201 and created.id
    again = ehr.create(_patient(tag), if_none_exist=f"identifier={SYSTEM}|{tag}-0")
    assert again.status == 200 and again.id == created.id
    rid = created.id
    patient = ehr.read("Patient", rid)
    assert ehr.vread("Patient", rid, patient["meta"]["versionId"])["id"] == rid

    patient["gender"] = "male"
    updated = ehr.update(patient, if_match=patient["meta"]["versionId"])
    assert updated.status == 200
    with pytest.raises(ConflictError):
        ehr.update(patient, if_match=patient["meta"]["versionId"])  # stale version
    patched = ehr.patch("Patient", rid, [{"op": "replace", "path": "/gender", "value": "other"}])
    assert patched.resource["gender"] == "other"
    conditional = ehr.conditional_update({**_patient(tag, 1), "gender": "unknown"}, {"identifier": f"{SYSTEM}|{tag}-1"})
    assert conditional.status == 201

    for n in range(2, 6):
        ehr.create(_patient(tag, n))
    since = (datetime.now(UTC) - timedelta(minutes=5)).isoformat(timespec="seconds")
    found = list(ehr.search("Patient", {"_tag": f"{SYSTEM}|{tag}", "_count": 2, "_lastUpdated": f"ge{since}"}))
    assert len(found) == 6
    assert sum(1 for _ in ehr.search_pages("Patient", {"_tag": f"{SYSTEM}|{tag}", "_count": 2})) == 3

    outcome = ehr.operation("validate", rtype="Patient", resource=_patient(tag, 9))
    assert outcome is not None and outcome["resourceType"] == "OperationOutcome"

    assert ehr.delete("Patient", rid).status in (200, 204)
    with pytest.raises(NotFoundError):
        ehr.read("Patient", rid)
    with pytest.raises(InvalidRequestError) as raised:
        ehr.create({"resourceType": "Patient", "birthDate": "yesterday"})
    assert raised.value.outcome is not None


def test_transaction_and_batch_give_per_entry_results(ehr: FHIRClient) -> None:
    tag = uuid.uuid4().hex[:10]
    batch = {"resourceType": "Bundle", "type": "batch", "entry": [
        {"resource": _patient(tag, 1), "request": {"method": "POST", "url": "Patient"}},
        {"request": {"method": "GET", "url": f"Patient/no-such-{tag}"}},
    ]}  # fmt: skip
    ok, missing = ehr.batch(batch)
    assert ok.status == 201 and missing.status == 404
    bundle = case_to_bundle(parse_letter((LETTERS / "case-number-crlf.txt").read_bytes()))
    results = ehr.transaction(bundle)
    assert len(results) == len(bundle["entry"]) and all(r.status in (200, 201) for r in results)


def test_async_client(ehr_url: str) -> None:
    async def run() -> tuple[int, int]:
        async with AsyncFHIRClient(ehr_url) as client:
            tag = uuid.uuid4().hex[:10]
            await client.create(_patient(tag))
            found = [p async for p in client.search("Patient", {"_tag": f"{SYSTEM}|{tag}"})]
            bundles = [case_to_bundle(parse_letter(p.read_bytes())) for p in LETTER_FILES]
            answers = await client.transactions(bundles)
            return len(found), sum(isinstance(a, list) for a in answers)

    assert asyncio.run(run()) == (1, len(LETTER_FILES))


class TestAuthAgainstTheSandbox:
    @pytest.fixture(autouse=True)
    def _sandbox_only(self, payer_url: str) -> None:
        if load_settings().payer_url is not None:
            pytest.skip("these use the sandbox's own credentials")

    @pytest.mark.parametrize(("client_id", "key", "alg"), [("imr-adapter", "client-rs384", "RS384"),
                                                           ("imr-adapter-es384", "client-es384", "ES384")])  # fmt: skip
    def test_smart_backend_services(self, payer_url: str, client_id: str, key: str, alg: str) -> None:
        keys = load_settings().sandbox.keys
        auth = SMARTBackendAuth(fhir_base=payer_url, client_id=client_id, private_key=keys / f"{key}.pem", alg=alg,
                                scope="system/*.read system/*.write")  # fmt: skip
        with FHIRClient(payer_url, auth=auth) as client:
            assert client.create(_patient(uuid.uuid4().hex[:8])).created
            assert list(client.search("Patient", {"_count": 1}))
        assert auth.fetched == 1
        assert auth.token_url is not None and auth.token_url.endswith("/auth/token")  # discovered

    def test_read_only_scope_cannot_write(self, payer_url: str) -> None:
        keys = load_settings().sandbox.keys
        key = keys / "client-reader-rs384.pem"
        auth = SMARTBackendAuth(
            fhir_base=payer_url, client_id="imr-adapter-reader", private_key=key, scope="system/*.read"
        )
        with FHIRClient(payer_url, auth=auth) as client:
            list(client.search("Patient", {"_count": 1}))
            with pytest.raises(AuthError) as raised:
                client.create(_patient("denied"))
        assert raised.value.status == 403

    def test_static_token_basic_and_none(self, payer_url: str) -> None:
        keys = load_settings().sandbox.keys
        token = AuthSettings(type="bearer", token=(keys / "payer-token").read_text().strip())  # type: ignore[arg-type]
        basic = AuthSettings(type="basic", username=SANDBOX_BASIC_USER,
                             password=(keys / "payer-password").read_text().strip())  # type: ignore[arg-type]  # fmt: skip
        for auth in (token, basic):
            with FHIRClient(payer_url, auth=auth) as client:
                assert list(client.search("Patient", {"_count": 1})) is not None
        with FHIRClient(payer_url) as client, pytest.raises(AuthError) as raised:
            client.read("Patient", "anything")
        assert raised.value.status == 401
        wrong = AuthSettings(type="bearer", token="not-the-token")  # type: ignore[arg-type]
        with FHIRClient(payer_url, auth=wrong) as client, pytest.raises(AuthError) as raised:
            client.read("Patient", "anything")
        assert "not-the-token" not in str(raised.value)


def test_push_twice_leaves_one_copy_of_each(payer_url: str, payer: FHIRClient) -> None:
    types = ("Patient", "Condition", "Procedure", "ServiceRequest", "Claim", "ClaimResponse", "Coverage",
             "Practitioner", "PractitionerRole", "DocumentReference", "Provenance", "Organization")  # fmt: skip

    def counts() -> dict[str, int]:
        return {t: payer.search_pages(t, {"_summary": "count"}).__next__()["total"] for t in types}

    settings = load_settings()
    paths = [*LETTER_FILES, LETTERS.parent / "invalid" / "not-a-letter.txt"]
    first = push(paths, AsyncFHIRClient(payer_url, auth=settings.auth("payer")))
    after_first = counts()
    second = push(paths, AsyncFHIRClient(payer_url, auth=settings.auth("payer")))
    assert counts() == after_first
    assert [r.status for r in second] == ["already present"] * len(LETTER_FILES) + ["failed"]
    assert first[-1].status == "failed" and first[-1].error is not None
    assert first[-1].error.code == "letter-layout"
    for path in LETTER_FILES:  # exactly one copy of each of the case's resources
        bundle = case_to_bundle(parse_letter(path.read_bytes()))
        for entry in bundle["entry"]:
            name, _, value = entry["request"]["ifNoneExist"].partition("=")
            page = next(payer.search_pages(entry["resource"]["resourceType"], {name: value, "_summary": "count"}))
            assert page["total"] == 1, (path.name, entry["request"]["ifNoneExist"])


def test_pull_gives_back_the_pushed_cases(payer_url: str, payer: FHIRClient) -> None:
    cases = {c.case_number: c for c in (parse_letter(p.read_bytes()) for p in LETTER_FILES)}
    push(LETTER_FILES, AsyncFHIRClient(payer_url, auth=load_settings().auth("payer")))
    pulled = [c for c in pull_cases(payer) if not isinstance(c, Exception)]
    by_number = {c.case_number: c for c in pulled}
    for number, case in cases.items():
        assert by_number[number] == case
    recent = list(pull_cases(payer, since=datetime.now(UTC) + timedelta(days=1)))
    assert recent == []


def test_conformance_check_passes_on_the_ehr_sandbox(ehr: FHIRClient, tmp_path: Path) -> None:
    results = ConformanceCheck(ehr).run()
    assert [(r.name, r.passed) for r in results if not r.passed] == []
    assert len(results) == 9 and "PAS Bundle" in results[-2].detail
