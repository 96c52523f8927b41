"""The HTTP service in-process (FastAPI TestClient): auth and scopes, every error as an OperationOutcome
with its status and nothing stored, idempotent retries, PAS $submit, ClaimResponse read and search."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from fastapi.testclient import TestClient

from adapter import parse_letter
from adapter.config import load_settings
from adapter.fhir import case_to_bundle
from adapter.fhir.build import pas_bundle, request_side
from adapter.fhir.conformance import response_faults
from adapter.review.policy import DEFAULT_POLICY
from adapter.service import wire
from tests.conftest import FHIR, LETTERS, auth

WRITER, READER = "writer-token", "reader-token"
ISSUER = "https://auth.adapter.test"


def _bundle(name: str = "case-number-multi.txt") -> dict[str, Any]:
    full = case_to_bundle(parse_letter((LETTERS / name).read_bytes()))
    return {"resourceType": "Bundle", "type": "collection", "entry": request_side(full)}


def _pas(name: str = "case-number-modified.txt") -> dict[str, Any]:
    return pas_bundle(parse_letter((LETTERS / name).read_bytes()))


@pytest.fixture
def service(tmp_path: Path, key: tuple[rsa.RSAPrivateKey, Path]) -> Iterator[tuple[TestClient, Any]]:
    settings = load_settings(
        service={
            "tokens": {
                WRITER: "system/ServiceRequest.write system/Claim.write system/ClaimResponse.read",
                READER: "system/*.read",
            },
            "jwks": str(key[1]),
            "audience": "http://adapter.test/fhir",
            "issuer": ISSUER,
            "state_url": f"sqlite:///{tmp_path}/state.db",
            "forward": False,
            "max_body": 200_000,
            "rate_limit": 1000,
        }
    )
    wiring = wire(settings)
    with TestClient(wiring.app()) as client:
        yield client, wiring.store


def _issue(response: Any) -> dict[str, Any]:
    assert response.headers["content-type"].startswith("application/fhir+json")
    body = response.json()
    assert body["resourceType"] == "OperationOutcome"
    return dict(body["issue"][0])


def test_metadata_is_honest(service: tuple[TestClient, Any]) -> None:
    client, _ = service
    statement = client.get("/fhir/metadata").json()
    resources = {r["type"]: r for r in statement["rest"][0]["resource"]}
    assert set(resources) == {"ServiceRequest", "Claim", "ClaimResponse", "Task", "StructureDefinition",
                              "Subscription", "Questionnaire"}  # fmt: skip
    assert [i["code"] for i in resources["Task"]["interaction"]] == ["read", "update", "search-type"]
    assert [i["code"] for i in resources["ServiceRequest"]["interaction"]] == ["create"]
    assert resources["Claim"]["operation"][0]["name"] == "submit"


def test_what_the_statement_offers_is_routed(service: tuple[TestClient, Any]) -> None:
    """Each module of routes says beside its routes what it offers: every interaction and operation the
    CapabilityStatement names is a route of the app, and each resource type is described once."""
    client, _ = service
    rest = client.get("/fhir/metadata").json()["rest"][0]
    paths = client.get("/openapi.json").json()["paths"]
    routes = {f"{method.upper()} {path}" for path, methods in paths.items() for method in methods}
    types = [resource["type"] for resource in rest["resource"]]
    assert len(types) == len(set(types))
    shapes = {"create": "POST /fhir/{t}", "search-type": "GET /fhir/{t}", "read": r"GET /fhir/{t}/\{\w+\}",
              "update": r"PUT /fhir/{t}/\{\w+\}", "delete": r"DELETE /fhir/{t}/\{\w+\}"}  # fmt: skip
    offered = [shapes[i["code"]].replace("{t}", r["type"]) for r in rest["resource"] for i in r.get("interaction", [])]
    offered += [rf"POST /fhir/{r['type']}(/\{{\w+\}})?/\${o['name']}|GET /fhir/{r['type']}/\{{\w+\}}/\${o['name']}"
                for r in rest["resource"] for o in r.get("operation", [])]  # fmt: skip
    offered += [rf"POST /fhir/\${o['name']}" for o in rest["operation"]]
    for shape in offered:
        assert any(re.fullmatch(shape, route) for route in routes), shape


def test_service_request_decided_recorded_and_retried_safely(service: tuple[TestClient, Any]) -> None:
    client, store = service
    first = client.post("/fhir/ServiceRequest", content=json.dumps(_bundle()), headers=auth(WRITER))
    assert first.status_code == 201 and first.headers["location"].endswith(f"/fhir/ClaimResponse/{first.json()['id']}")
    response = first.json()
    # the context's MedicationRequest is a drug taken, not a request: three ServiceRequests are answered
    assert response["use"] == "preauthorization" and len(response["item"]) == 3
    again = client.post("/fhir/ServiceRequest", content=json.dumps(_bundle()), headers=auth(WRITER))
    assert again.status_code == 200 and again.json()["id"] == response["id"]
    assert store.search()[0] == 1
    read = client.get(f"/fhir/ClaimResponse/{response['id']}", headers=auth(READER))
    assert read.status_code == 200 and read.json() == response and read.headers["etag"] == 'W/"1"'
    # the Bundle's resources are kept: the patient and the requests the answer names resolve on the service
    named = [response["patient"]["reference"]] + [e["valueReference"]["reference"].split("/fhir/", 1)[-1]
             for i in response["item"] for e in i["extension"] if "valueReference" in e]  # fmt: skip
    assert all(client.get(f"/fhir/{ref}", headers=auth(READER)).status_code == 200 for ref in named), named


def test_pas_submit(service: tuple[TestClient, Any]) -> None:
    client, _ = service
    request = _pas("case-number-multi.txt")
    claim = request["entry"][0]["resource"]
    for n, item in enumerate(claim["item"], start=1):
        item["sequence"] = 10 * n  # a Claim numbers its items as it likes; the answer echoes them
    answer = client.post("/fhir/Claim/$submit", content=json.dumps(request), headers=auth(WRITER))
    assert answer.status_code == 200
    bundle = answer.json()
    assert [str(f) for f in response_faults(bundle, claim)] == []
    response = bundle["entry"][0]["resource"]
    assert [i["itemSequence"] for i in response["item"]] == [10, 20, 30, 40]
    # what the answer names is in the Bundle and served: the stored Claim, its patient, insurer and requestor
    base = bundle["entry"][0]["fullUrl"].rsplit("/ClaimResponse/", 1)[0]
    by_url = {e["fullUrl"]: e["resource"] for e in request["entry"]}
    for party, submitted in (("request", claim), ("patient", by_url[claim["patient"]["reference"]]),
                             ("insurer", by_url[claim["insurer"]["reference"]]),
                             ("requestor", by_url[claim["provider"]["reference"]])):  # fmt: skip
        reference = response[party]["reference"]
        assert f"{base}/{reference}" in {e["fullUrl"] for e in bundle["entry"]}
        served = client.get(f"/fhir/{reference}", headers=auth(READER))
        assert served.status_code == 200, reference
        kept = ("resourceType", "identifier", "name", "gender")
        assert {k: v for k, v in served.json().items() if k in kept} == {
            k: v for k, v in submitted.items() if k in kept
        }
    assert client.get("/fhir/Patient/no-such-patient", headers=auth(READER)).status_code == 404
    # the same request again: the same answer, naming the same stored resources
    again = client.post("/fhir/Claim/$submit", content=json.dumps(request), headers=auth(WRITER))
    assert again.status_code == 200 and again.json() == bundle


def test_submit_refuses_what_is_not_a_pas_request_naming_the_rule(service: tuple[TestClient, Any]) -> None:
    client, store = service
    request = _pas()
    del request["identifier"]
    request["entry"][1]["request"] = {"method": "POST", "url": "Patient"}
    refused = client.post("/fhir/Claim/$submit", content=json.dumps(request), headers=auth(WRITER))
    assert refused.status_code == 400
    issues = refused.json()["issue"]
    assert [i["expression"][0] for i in issues] == ["Bundle.identifier", "Bundle.entry[1].request"]
    assert "Bundle.fsh:7" in issues[0]["diagnostics"] and "Bundle.fsh:15" in issues[1]["diagnostics"]
    assert store.search()[0] == 0


#: The requesting provider's NPI: the letters redact the provider, so tests give the requestor one, as an EHR does.
PROVIDER_NPI = "1234567893"
NPI = "http://hl7.org/fhir/sid/us-npi"


def _by_url(bundle: dict[str, Any], reference: dict[str, Any]) -> dict[str, Any]:
    found: dict[str, Any] = next(e["resource"] for e in bundle["entry"] if e["fullUrl"] == reference["reference"])
    return found


def _member_id(bundle: dict[str, Any]) -> dict[str, Any]:
    """The member identifier (type MB) of a PAS request's Coverage."""
    coverage = _by_url(bundle, bundle["entry"][0]["resource"]["insurance"][0]["coverage"])
    found: dict[str, Any] = next(i for i in coverage["identifier"] if "MB" in json.dumps(i.get("type")))
    return found


def with_npi(bundle: dict[str, Any], npi: str = PROVIDER_NPI) -> dict[str, Any]:
    """A PAS request whose requesting provider carries an NPI (what a PAS inquiry matches on, spec-53)."""
    requestor = _by_url(bundle, bundle["entry"][0]["resource"]["provider"])
    requestor["identifier"] = [*requestor.get("identifier", []), {"system": NPI, "value": npi}]
    return bundle


def _inquiry(submitted: dict[str, Any], *, npi: str = PROVIDER_NPI, member: str | None = None) -> dict[str, Any]:
    """A PAS inquiry about a submission: its own identifier and timestamp (not the submitted Claim's), the
    Patient with the member id (type MB) its Coverage gave (``member`` in its place when given), the insurer,
    the Coverage, and the requestor with an NPI."""
    claim = submitted["entry"][0]["resource"]
    patient = json.loads(json.dumps(_by_url(submitted, claim["patient"])))
    coverage = json.loads(json.dumps(_by_url(submitted, claim["insurance"][0]["coverage"])))
    members = [i for i in coverage["identifier"] if "MB" in json.dumps(i.get("type"))]
    if member is not None:
        members = [{**members[0], "value": member}]
        coverage["identifier"] = members
    patient["identifier"] = patient.get("identifier", []) + members
    requestor = json.loads(json.dumps(_by_url(submitted, claim["provider"])))
    requestor["identifier"] = [i for i in requestor.get("identifier", []) if i.get("system") != NPI]
    requestor["identifier"].append({"system": NPI, "value": npi})
    inquiry = {
        "resourceType": "Claim", "status": "active", "use": "preauthorization", "type": claim["type"],
        "identifier": [{"system": "urn:trnorg:inquirer", "value": "inquiry-1"}], "patient": claim["patient"],
        "created": "2026-11-27", "insurer": claim["insurer"], "provider": claim["provider"],
        "priority": claim["priority"], "insurance": claim["insurance"],
    }  # fmt: skip
    return {
        "resourceType": "Bundle", "type": "collection", "timestamp": "2026-11-27T10:00:00Z",
        "identifier": {"system": "urn:trnorg:inquirer", "value": "inquiry-bundle-1"},
        "entry": [
            {"fullUrl": "urn:uuid:6a4c8f1e-0000-4000-8000-000000000001", "resource": inquiry},
            {"fullUrl": claim["patient"]["reference"], "resource": patient},
            {"fullUrl": claim["insurer"]["reference"], "resource": _by_url(submitted, claim["insurer"])},
            {"fullUrl": claim["provider"]["reference"], "resource": requestor},
            {"fullUrl": claim["insurance"][0]["coverage"]["reference"], "resource": coverage},
        ],
    }  # fmt: skip


def _returned(answer: Any) -> list[dict[str, Any]]:
    """The inquiry response Bundles of a $inquire answer (a Parameters, one ``return`` each)."""
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["resourceType"] == "Parameters"
    return [p["resource"] for p in body.get("parameter", []) if p["name"] == "return"]


def test_inquire_finds_submitted_claims_by_member_id_and_npi(service: tuple[TestClient, Any]) -> None:
    client, _ = service
    request = with_npi(_pas("case-number-multi.txt"))
    submitted = client.post("/fhir/Claim/$submit", content=json.dumps(request), headers=auth(WRITER)).json()
    response = submitted["entry"][0]["resource"]
    (bundle,) = _returned(client.post("/fhir/Claim/$inquire", content=json.dumps(_inquiry(request)),
                                      headers=auth(READER)))  # fmt: skip
    assert response_faults(bundle, inquiry=True) == []
    answer = bundle["entry"][0]["resource"]
    assert (answer["id"], answer["meta"]["versionId"]) == (response["id"], response["meta"]["versionId"])
    assert [i["adjudication"] for i in answer["item"]] == [i["adjudication"] for i in response["item"]]
    held = {e["fullUrl"] for e in bundle["entry"]}
    assert {answer["patient"]["reference"], answer["insurer"]["reference"], answer["requestor"]["reference"]} <= held
    # the Claim it answers resolves on the service (spec-44), as the requests do
    named = [answer["request"]["reference"]] + [e["valueReference"]["reference"] for i in answer["item"]
                                                for e in i["extension"] if "valueReference" in e]  # fmt: skip
    base = bundle["entry"][0]["fullUrl"].rsplit("/fhir/", 1)[0]
    assert all(client.get(ref.removeprefix(base), headers=auth(READER)).status_code == 200 for ref in named), named
    # a second Claim for the same patient and provider is found too; another provider's is not
    second = with_npi(_pas("case-number-modified.txt"))
    _member_id(second)["value"] = _member_id(request)["value"]
    assert client.post("/fhir/Claim/$submit", content=json.dumps(second), headers=auth(WRITER)).status_code == 200
    other = with_npi(_pas("maximus-notice.txt"), "1245319599")
    assert client.post("/fhir/Claim/$submit", content=json.dumps(other), headers=auth(WRITER)).status_code == 200
    found = _returned(client.post("/fhir/Claim/$inquire", content=json.dumps(_inquiry(request)),
                                  headers=auth(READER)))  # fmt: skip
    assert len(found) == 2 and response["id"] in {b["entry"][0]["resource"]["id"] for b in found}


def test_inquire_needs_the_member_id_and_the_npi_and_finds_nothing_without_an_error(
    service: tuple[TestClient, Any],
) -> None:
    client, _ = service
    request = with_npi(_pas("case-number-multi.txt"))
    assert client.post("/fhir/Claim/$submit", content=json.dumps(request), headers=auth(WRITER)).status_code == 200
    for inquiry in (_inquiry(request, member="someone-else"), _inquiry(request, npi="1245319599")):
        answer = client.post("/fhir/Claim/$inquire", content=json.dumps(inquiry), headers=auth(READER))
        assert _returned(answer) == [] and answer.json() == {"resourceType": "Parameters"}
    # the submitted Claim's own identifier finds nothing either: an inquiry's identifier names the inquiry
    named = _inquiry(request, member="someone-else")
    named["entry"][0]["resource"]["identifier"] = request["entry"][0]["resource"]["identifier"][:1]
    assert _returned(client.post("/fhir/Claim/$inquire", content=json.dumps(named), headers=auth(READER))) == []
    not_a_bundle = client.post("/fhir/Claim/$inquire", content=json.dumps(request["entry"][0]["resource"]),
                               headers=auth(READER))  # fmt: skip
    assert not_a_bundle.status_code == 400


def test_search_and_paging(service: tuple[TestClient, Any]) -> None:
    client, _ = service
    for name in ("case-number-multi.txt", "case-number-crlf.txt", "maximus-notice.txt"):
        assert (
            client.post("/fhir/ServiceRequest", content=json.dumps(_bundle(name)), headers=auth(WRITER)).status_code
            == 201
        )
    page = client.get("/fhir/ClaimResponse", params={"_count": 2}, headers=auth(READER)).json()
    assert page["total"] == 3 and len(page["entry"]) == 2
    following = next(link["url"] for link in page["link"] if link["relation"] == "next")
    rest = client.get(following, headers=auth(READER)).json()
    assert len(rest["entry"]) == 1 and not [link for link in rest["link"] if link["relation"] == "next"]
    patient = page["entry"][0]["resource"]["patient"]["reference"]
    assert client.get("/fhir/ClaimResponse", params={"patient": patient}, headers=auth(READER)).json()["total"] == 1
    assert (
        client.get("/fhir/ClaimResponse", params={"_lastUpdated": "ge2999-01-01"}, headers=auth(READER)).json()["total"]
        == 0
    )
    assert client.get("/fhir/ClaimResponse", params={"outcome": "partial"}, headers=auth(READER)).json()["total"] >= 1


def test_search_result_parameters_and_unknown_ones(service: tuple[TestClient, Any]) -> None:
    """_summary=count and _count=0 give the total alone; _total=none drops it; _elements keeps the named
    elements (tagged SUBSETTED); an unknown parameter is refused, or ignored and named under handling=lenient."""
    client, _ = service
    for name in ("case-number-multi.txt", "maximus-notice.txt"):
        assert client.post("/fhir/ServiceRequest", content=json.dumps(_bundle(name)), headers=auth(WRITER)).is_success

    def search(params: dict[str, Any], prefer: str | None = None) -> Any:
        headers = {**auth(READER), **({"Prefer": prefer} if prefer else {})}
        return client.get("/fhir/ClaimResponse", params=params, headers=headers)

    for counting in ({"_summary": "count"}, {"_count": 0}, {"_count": 0, "_totalMethod": "count"}):  # the last: fhirpy
        counted = search(counting).json()
        assert (counted["total"], counted["entry"]) == (2, []) and all(k["relation"] == "self" for k in counted["link"])
    assert "total" not in search({"_total": "none"}).json()
    subset = search({"_elements": "outcome,patient"}).json()["entry"][0]["resource"]
    assert set(subset) == {"resourceType", "id", "meta", "outcome", "patient"}
    assert {"system": "http://terminology.hl7.org/CodeSystem/v3-ObservationValue", "code": "SUBSETTED"} in subset[
        "meta"]["tag"]  # fmt: skip
    for strict in (None, "handling=strict"):
        refused = search({"colour": "blue"}, strict)
        assert refused.status_code == 400 and "colour" in _issue(refused)["details"]["text"]
    lenient = search({"colour": "blue", "outcome": "partial"}, "return=representation; handling=lenient").json()
    matches = [e for e in lenient["entry"] if e["search"]["mode"] == "match"]
    (outcome,) = [e["resource"] for e in lenient["entry"] if e["search"]["mode"] == "outcome"]
    assert lenient["total"] == len(matches) >= 1 and "colour" in outcome["issue"][0]["diagnostics"]
    for bad in ({"_summary": "true"}, {"_total": "exact"}, {"_format": "xml"}, {"_elements": "a.b"}):
        assert search(bad).status_code == 400, bad
    statement = client.get("/fhir/metadata").json()
    assert "handling=lenient" in statement["rest"][0]["documentation"]


def test_smart_backend_jwt(service: tuple[TestClient, Any], key: tuple[rsa.RSAPrivateKey, Path]) -> None:
    client, _ = service
    claims = {
        "iss": ISSUER,
        "sub": "ehr-1",
        "client_id": "ehr-1",
        "aud": "http://adapter.test/fhir",
        "iat": int(time.time()),
        "exp": int(time.time()) + 60,
        "scope": "system/ServiceRequest.write",
    }
    token = jwt.encode(claims, key[0], algorithm="RS384", headers={"kid": "k1"})
    assert client.post("/fhir/ServiceRequest", content=json.dumps(_bundle()), headers=auth(token)).status_code == 201
    expired = jwt.encode({**claims, "exp": int(time.time()) - 120}, key[0], algorithm="RS384", headers={"kid": "k1"})
    refused = client.post("/fhir/ServiceRequest", content=json.dumps(_bundle()), headers=auth(expired))
    assert refused.status_code == 401 and _issue(refused)["code"] == "login"
    other = rsa.generate_private_key(65537, 2048)
    forged = jwt.encode(claims, other, algorithm="RS384", headers={"kid": "k1"})
    assert client.post("/fhir/ServiceRequest", content=json.dumps(_bundle()), headers=auth(forged)).status_code == 401
    reader = jwt.encode(
        {**claims, "scope": "system/ClaimResponse.read"}, key[0], algorithm="RS384", headers={"kid": "k1"}
    )
    assert client.post("/fhir/ServiceRequest", content=json.dumps(_bundle()), headers=auth(reader)).status_code == 403


@pytest.mark.parametrize(
    ("headers", "content", "status", "code"),
    [
        ({**FHIR}, "{}", 401, "auth-required"),
        (auth("wrong"), "{}", 401, "auth-invalid"),
        (auth(READER), "{}", 403, "auth-scope"),
        ({**auth(WRITER), "Content-Type": "text/plain"}, "{}", 415, "unsupported-media-type"),
        (auth(WRITER), "x" * 300_000, 413, "too-large"),
        (auth(WRITER), "{not json", 400, "malformed-json"),
        (auth(WRITER), '{"resourceType": "Patient"}', 400, "wrong-type"),
        (auth(WRITER), '{"resourceType": "ServiceRequest", "status": "active"}', 422, "mapping"),
        ({**auth(WRITER), "If-Match": 'W/"1"'}, "{}", 412, "precondition"),
    ],
)
def test_bad_requests_are_operation_outcomes_and_store_nothing(
    service: tuple[TestClient, Any], headers: dict[str, str], content: str, status: int, code: str
) -> None:
    client, store = service
    response = client.post("/fhir/ServiceRequest", content=content, headers=headers)
    assert response.status_code == status
    assert _issue(response)["details"]["coding"][0]["code"] == code
    assert store.search()[0] == 0 and store.outbox_pending() == 0


def test_unknown_claim_response_and_search_parameter(service: tuple[TestClient, Any]) -> None:
    client, _ = service
    assert client.get("/fhir/ClaimResponse/none", headers=auth(READER)).status_code == 404
    assert client.get("/fhir/ClaimResponse", params={"status": "x"}, headers=auth(READER)).status_code == 400


def test_rate_limit(tmp_path: Path) -> None:
    settings = load_settings(
        service={
            "tokens": {READER: "system/*.read"},
            "state_url": f"sqlite:///{tmp_path}/s.db",
            "forward": False,
            "rate_limit": 1,
        }
    )
    with TestClient(wire(settings).app()) as client:
        statuses = [client.get("/fhir/ClaimResponse", headers=auth(READER)).status_code for _ in range(4)]
        limited = client.get("/fhir/ClaimResponse", headers=auth(READER))
    assert 429 in statuses + [limited.status_code]
    assert limited.status_code == 429 and int(limited.headers["retry-after"]) >= 1


def test_audit_holds_no_clinical_text(service: tuple[TestClient, Any]) -> None:
    client, store = service
    client.post("/fhir/ServiceRequest", content=json.dumps(_bundle()), headers=auth(WRITER))
    client.get("/fhir/ClaimResponse", headers=auth("nope"))
    rows = store.audit_log()
    assert [(r[2], r[4]) for r in rows[:2]] == [
        ("GET /fhir/ClaimResponse", "401"),
        ("POST /fhir/ServiceRequest", "201"),
    ]
    text = json.dumps(rows)
    assert "lumbar" not in text and "MRI" not in text and WRITER not in text


def test_a_new_answer_is_audited_with_it_once(service: tuple[TestClient, Any]) -> None:
    """A new answer's exchange is audited in the transaction that keeps the answer (who, the route, the
    ClaimResponse, the status it is sent with), not again after it; the same request sent again is audited as
    any exchange is; a PAS $submit, and a ServiceRequest."""
    client, store = service
    for path, body, status in (("/fhir/Claim/$submit", _pas(), "200"), ("/fhir/ServiceRequest", _bundle(), "201")):
        first = client.post(path, content=json.dumps(body), headers=auth(WRITER))
        again = client.post(path, content=json.dumps(body), headers=auth(WRITER))
        answer = first.json()["entry"][0]["resource"] if path.endswith("$submit") else first.json()
        rows = [
            (who, target, outcome) for _, who, action, target, outcome in store.audit_log() if action == f"POST {path}"
        ]
        assert rows[1:] == [(rows[0][0], f"ClaimResponse/{answer['id']}", status)]  # the first, oldest last
        assert rows[0][1:] == (f"ClaimResponse/{answer['id']}", str(again.status_code))


def test_outbox_retries_in_order_after_a_failure(tmp_path: Path) -> None:
    from adapter.service.schema import outbox
    from adapter.service.state import Recording, Store

    store = Store(f"sqlite:///{tmp_path}/s.db")
    for n in (1, 2):
        response = {"id": f"r{n}", "outcome": "complete", "meta": {"lastUpdated": f"2026-01-0{n}"}}
        store.record_all([Recording(response, patient=None, request=None, forward={"n": n})])
    (head,) = store.next_outbox_batch(1)
    assert head.claim_response_id == "r1"
    assert store.next_outbox_batch(5) == []  # leased: no second sender, and the next item waits its turn
    store.delivery_failed(head.seq, "payer down", delay=0.0)
    (again, following) = store.next_outbox_batch(5)
    assert again.claim_response_id == "r1" and again.attempts == 1
    store.release(following.seq)
    store.delivery_failed(again.seq, "payer down", delay=60.0)
    assert store.next_outbox_batch(5) == []  # the head waits its delay, and so does what follows it
    with store.transaction() as db:
        db.execute(outbox.update().values(next_attempt=0))
    again, following = store.next_outbox_batch(5)
    store.delivered(again.seq)
    store.release(following.seq)
    (following,) = store.next_outbox_batch(5)
    assert following is not None and following.claim_response_id == "r2"


def test_resubmitted_claim_with_other_content_is_a_conflict(service: tuple[TestClient, Any]) -> None:
    client, store = service
    first = _pas()
    assert client.post("/fhir/Claim/$submit", content=json.dumps(first), headers=auth(WRITER)).status_code == 200
    changed = json.loads(json.dumps(first))
    changed["entry"][0]["resource"]["created"] = "2030-01-01"
    conflict = client.post("/fhir/Claim/$submit", content=json.dumps(changed), headers=auth(WRITER))
    assert conflict.status_code == 409 and _issue(conflict)["code"] == "conflict"
    assert client.post("/fhir/Claim/$submit", content=json.dumps(first), headers=auth(WRITER)).status_code == 200
    assert store.search()[0] == 1


def test_worker_reads_the_whole_context_clinical_notes_included(tmp_path: Path) -> None:
    """The worker's context for a request: its Patient, and the patient's Conditions, Procedures,
    MedicationRequests, completed ServiceRequests and clinical notes, which the determination reads."""
    import base64

    import httpx

    from adapter.exchange import FHIRClient
    from adapter.service.state import Store
    from adapter.service.worker import SyncWorker

    note = "The patient has had 6 sessions of chiropractic care with improvement in neck rotation."
    searched: list[str] = []

    def ehr(request: httpx.Request) -> httpx.Response:
        rtype = request.url.path.rsplit("/", 1)[-1]
        if rtype == "metadata":  # no batch: one search per type
            return httpx.Response(200, json={"resourceType": "CapabilityStatement", "rest": [{"resource": []}]})
        searched.append(rtype)
        entries: list[dict[str, Any]] = []
        if rtype == "Patient" and request.url.params["_id"] == "p1":
            entries = [{"resource": {"resourceType": "Patient", "id": "p1", "gender": "male"}}]
        if rtype == "DocumentReference" and request.url.params["subject"] == "Patient/p1":
            data = base64.b64encode(note.encode()).decode()
            entries = [
                {
                    "resource": {
                        "resourceType": "DocumentReference",
                        "id": "d1",
                        "status": "current",
                        "subject": {"reference": "Patient/p1"},
                        "type": {"text": "Progress note"},
                        "content": [{"attachment": {"contentType": "text/plain", "data": data}}],
                    }
                }
            ]
        return httpx.Response(200, json={"resourceType": "Bundle", "type": "searchset", "entry": entries})

    request = {
        "resourceType": "ServiceRequest",
        "id": "sr1",
        "status": "active",
        "intent": "order",
        "subject": {"reference": "Patient/p1"},
        "code": {"text": "Chiropractic manipulation, 6 sessions"},
    }
    client = FHIRClient("http://ehr.test/fhir", transport=httpx.MockTransport(ehr))
    worker = SyncWorker(Store(f"sqlite:///{tmp_path}/w.db"), client, None, forward=False, policy=DEFAULT_POLICY)
    bundle = worker.context(request)
    assert sorted(searched) == [
        "Condition",
        "DocumentReference",
        "MedicationRequest",
        "Patient",
        "Procedure",
        "ServiceRequest",
    ]
    assert bundle["entry"][1]["resource"]["resourceType"] == "Patient"
    from adapter.fhir.request_facts import requested_services

    (found,) = requested_services(bundle)
    assert found.facts.functional_improvement == "present" and found.facts.prior_same_therapy == "present"


def test_worker_stops_on_an_unavailable_ehr_instead_of_dead_lettering(tmp_path: Path) -> None:
    import httpx

    from adapter.config import RetrySettings
    from adapter.errors import RetryableError
    from adapter.exchange import FHIRClient
    from adapter.service.state import Store
    from adapter.service.worker import SyncWorker, cursor_name

    request = {
        "resourceType": "ServiceRequest",
        "id": "sr1",
        "status": "active",
        "intent": "order",
        "meta": {"versionId": "1", "lastUpdated": "2026-01-02T00:00:00Z"},
        "subject": {"reference": "Patient/p1"},
        "code": {"text": "MRI of the lumbar spine"},
    }

    def ehr(http_request: httpx.Request) -> httpx.Response:
        if http_request.url.path.endswith("/ServiceRequest") and "status=active" in str(http_request.url):
            return httpx.Response(
                200, json={"resourceType": "Bundle", "type": "searchset", "entry": [{"resource": request}]}
            )
        return httpx.Response(503)  # the context cannot be read now

    store = Store(f"sqlite:///{tmp_path}/w.db")
    client = FHIRClient("http://ehr.test/fhir", transport=httpx.MockTransport(ehr), retry=RetrySettings(attempts=1))
    with pytest.raises(RetryableError):
        SyncWorker(store, client, None, forward=False, policy=DEFAULT_POLICY).run_once()
    assert store.dead_letters() == [] and store.cursor(cursor_name("ServiceRequest")) is None and store.search()[0] == 0


def test_worker_dead_letters_what_the_ehr_sends_malformed(tmp_path: Path) -> None:
    import httpx

    from adapter.exchange import FHIRClient
    from adapter.service.state import Store
    from adapter.service.worker import SyncWorker

    malformed = [
        {"resourceType": "ServiceRequest", "status": "active", "intent": "order", "code": {"text": 5}, "id": "a"},
        {"resourceType": "ServiceRequest", "status": "active", "intent": "order",
         "subject": {"reference": "Patient/p1"}, "code": {"text": "MRI of the lumbar spine"}},  # no id
    ]  # fmt: skip

    def ehr(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/metadata"):  # an EHR that cannot search DeviceRequests by status
            params = [{"name": "status", "type": "token"}, {"name": "intent", "type": "token"}]
            resources = [{"type": t, "searchParam": params} for t in ("ServiceRequest", "MedicationRequest")]
            return httpx.Response(200, json={"resourceType": "CapabilityStatement", "rest": [{"resource": resources}]})
        asked = request.url.path.endswith("/ServiceRequest") and "status=active" in str(request.url)
        stopped = {"resourceType": "DeviceRequest", "status": "completed", "intent": "order", "id": "d"}
        found = malformed if asked else [stopped] if request.url.path.endswith("/DeviceRequest") else []
        entries = [{"resource": r} for r in found]
        return httpx.Response(200, json={"resourceType": "Bundle", "type": "searchset", "entry": entries})

    store = Store(f"sqlite:///{tmp_path}/w.db")
    client = FHIRClient("http://ehr.test/fhir", transport=httpx.MockTransport(ehr))
    report = SyncWorker(store, client, None, forward=False, policy=DEFAULT_POLICY).run_once()
    assert (report.seen, report.dead, report.decided) == (2, 2, 0)  # the completed DeviceRequest filtered out
    assert [letter.reason.split("]")[0] for letter in store.dead_letters()] == ["[mapping", "[mapping"]
