"""Physician review: due dates by California's clocks, review Tasks for pended items, the physician's
decision (API and page), who may see and decide, and the final ClaimResponse reaching $inquire and the
payer's queue."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from datetime import date, datetime
from pathlib import Path
from typing import Any

import orjson
import pytest
from fastapi.testclient import TestClient
from pytest_httpx import HTTPXMock

from adapter import parse_letter
from adapter.actions import ReviewAction
from adapter.config import RetrySettings, load_settings
from adapter.deadlines import Clock, clock_of, deadline_table, due, is_business_day
from adapter.errors import MappingTableError, ReviewClosedError, ReviewDecisionError
from adapter.exchange import FHIRClient
from adapter.fhir.build import pas_bundle
from adapter.fhir.pas import review_action_code
from adapter.review import apply_decision, read_decision
from adapter.review.policy import DEFAULT_POLICY
from adapter.review.tasks import decision_for, response_of
from adapter.service import wire
from adapter.service.forwarder import Forwarder
from adapter.service.pipeline import DETERMINATION_SYSTEM, VERSION_TAG_SYSTEM, decide, for_payer, record
from adapter.service.state import Store
from tests.conftest import FIXTURES, LETTERS, auth, replace_once
from tests.test_reviewers import ADA, add_reviewer, csrf_of, sign_in
from tests.test_service import _inquiry, _returned, with_npi

EHR, PAYER, REVIEWER = "ehr-token", "payer-token", "reviewer-token"
NPI = {"system": "http://hl7.org/fhir/sid/us-npi", "value": "1234567893"}
PACIFIC = "-08:00"
CALIFORNIA = DEFAULT_POLICY.deadlines


def _at(text: str) -> datetime:
    return datetime.fromisoformat(text)


# --- due dates ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("received", "clock", "expected"),
    [
        # Wednesday before Thanksgiving: Thursday is a holiday, the weekend does not count
        ("2026-11-25T10:00:00-08:00", Clock.STANDARD, "2026-12-03T23:59:59-08:00"),
        # the week of Christmas
        ("2026-12-22T10:00:00-08:00", Clock.STANDARD, "2026-12-30T23:59:59-08:00"),
        # 03:00 UTC on Saturday is still Friday evening in California: counting starts from Friday
        ("2026-11-28T03:00:00+00:00", Clock.STANDARD, "2026-12-04T23:59:59-08:00"),
        # received on a Saturday: the first business day after it is day 1
        ("2026-12-05T09:00:00-08:00", Clock.STANDARD, "2026-12-11T23:59:59-08:00"),
        # across the change from daylight saving time (Sunday 2026-11-01)
        ("2026-10-29T12:00:00-07:00", Clock.STANDARD, "2026-11-05T23:59:59-08:00"),
        # 72 hours, weekends included
        ("2026-11-27T10:00:00-08:00", Clock.EXPEDITED, "2026-11-30T10:00:00-08:00"),
        # 30 calendar days
        ("2026-12-22T10:00:00-08:00", Clock.RETROSPECTIVE, "2027-01-21T23:59:59-08:00"),
    ],
)
def test_due_dates(received: str, clock: Clock, expected: str) -> None:
    assert due(_at(received), clock, CALIFORNIA) == _at(expected)


@pytest.mark.parametrize(
    ("day", "business"),
    [
        (date(2026, 11, 26), False),  # Thanksgiving Day
        (date(2026, 11, 27), True),  # the day after is not a Government Code 6700 holiday
        (date(2027, 7, 5), False),  # July 4th 2027 is a Sunday: observed Monday
        (date(2028, 11, 10), False),  # Veterans Day 2028 is a Saturday: observed the Friday before
        (date(2026, 2, 17), False),  # Lunar New Year 2026
        (date(2026, 3, 31), False),  # Cesar Chavez Day
        (date(2026, 9, 25), False),  # Native American Day: fourth Friday in September
        (date(2026, 5, 25), False),  # Memorial Day: last Monday in May
        (date(2026, 12, 26), False),  # a Saturday
        (date(2026, 12, 28), True),
    ],
)
def test_business_days_skip_weekends_and_state_holidays(day: date, business: bool) -> None:
    assert is_business_day(day, CALIFORNIA) is business


def test_the_clock_a_request_runs_on() -> None:
    received = _at("2026-11-20T09:00:00-08:00")
    urgent = {"coding": [{"code": "stat"}]}
    assert clock_of({}, received, table=CALIFORNIA) is Clock.STANDARD
    assert clock_of({}, received, claim={"priority": urgent}, table=CALIFORNIA) is Clock.EXPEDITED
    assert clock_of({"priority": "urgent"}, received, table=CALIFORNIA) is Clock.EXPEDITED
    assert clock_of({"occurrenceDateTime": "2026-11-02"}, received, table=CALIFORNIA) is Clock.RETROSPECTIVE
    assert clock_of({}, received, item={"servicedDate": "2026-10-01"}, table=CALIFORNIA) is Clock.RETROSPECTIVE
    assert clock_of({"occurrenceDateTime": "2026-12-01"}, received, table=CALIFORNIA) is Clock.STANDARD  # planned care


def test_a_broken_holiday_table_fails_at_load(mappings_copy: Path) -> None:
    table = mappings_copy / "jurisdictions" / "california.yaml"
    replace_once(table, "month: 1, day: 1,", "month: 1, day: 1, weekday: monday,")
    with pytest.raises(MappingTableError, match=r"california.yaml:\d+"):
        deadline_table("california", mappings_copy)


# --- the decision, as data ------------------------------------------------------------------------------


def _lumbar() -> dict[str, Any]:
    return dict(json.loads((FIXTURES / "requests" / "lumbar-mri.json").read_text()))


def _decided() -> tuple[dict[str, Any], dict[str, Any]]:
    decided = decide(_lumbar(), policy=DEFAULT_POLICY)
    (review,) = decided.reviews
    return review.resource, decided.response


def _completed(task: dict[str, Any], code: str, rationale: str | None = "Not supported by the record.",
               quantity: float | None = None, owner: dict[str, Any] | None = None) -> dict[str, Any]:  # fmt: skip
    outputs: list[dict[str, Any]] = [
        {"type": {"text": "decision"}, "valueCodeableConcept": {"coding": [{"code": code}]}}
    ]
    if rationale is not None:
        outputs.append({"type": {"text": "rationale"}, "valueString": rationale})
    if quantity is not None:
        outputs.append({"type": {"text": "authorized-quantity"}, "valueQuantity": {"value": quantity}})
    return {**task, "status": "completed", "owner": owner or {"identifier": NPI, "display": "Dr. Ada Reyes"},
            "output": outputs}  # fmt: skip


def test_a_pended_item_becomes_a_requested_task() -> None:
    task, response = _decided()
    assert (task["status"], task["intent"]) == ("requested", "order")
    # FHIR Workflow: it fulfils the request it focuses, its output is the answer, its business status the action
    assert task["code"]["coding"][0]["code"] == "fulfill" and task["focus"] == {
        "reference": "ServiceRequest/lumbar-mri"
    }
    (output,) = task["output"]
    assert output["valueReference"] == {"reference": f"ClaimResponse/{response['id']}"}
    assert task["businessStatus"]["coding"][0]["code"] == "A4"
    assert task["for"] == {
        "reference": "Patient/example-worker",  # and whom it is about, for the reviewer
        "identifier": {"system": "urn:example:payer:member", "value": "WC-0000-1234"},
    }
    inputs = {i["type"]["text"]: i for i in task["input"]}
    assert inputs["recommendation"]["valueCodeableConcept"]["coding"][0]["code"] == "A3"
    assert inputs["rule"]["valueString"] == "spine-imaging-without-nerve-compromise"
    assert "MTUS ACOEM" in inputs["citation"]["valueString"]
    quotes = [i["valueString"] for i in task["input"] if i["type"]["text"] == "evidence"]
    assert any("Neurologic examination is normal" in q for q in quotes)
    assert _at(task["restriction"]["period"]["end"]) == due(_at(task["authoredOn"]), Clock.STANDARD, CALIFORNIA)


def test_a_task_says_of_its_item_what_the_claim_response_says() -> None:
    """The Task is built from the item's determination, not read back from the ClaimResponse: the same rules,
    recommendation, rationale and evidence (the findings the rules read, with their quotes and sources)."""
    task, response = _decided()
    (item,) = response["item"]
    said = {i["type"]["text"]: i for i in task["input"]}
    by_url = {e["url"].rsplit("/", 1)[-1]: e for e in item["extension"]}
    assert said["recommendation"]["valueCodeableConcept"] == by_url["recommendation"]["valueCodeableConcept"]
    assert said["rule"]["valueString"] == by_url["determination-rule"]["valueString"]
    (note,) = [n["text"] for n in response["processNote"] if n["number"] in item["noteNumber"]]
    assert said["rationale"]["valueString"] == note
    evidence = [{p["url"]: next(v for k, v in p.items() if k.startswith("value")) for p in e["extension"]}
                for e in item["extension"] if e["url"].endswith("/evidence")]  # fmt: skip
    quoted = [i["valueString"] for i in task["input"] if i["type"]["text"] == "evidence"]
    assert evidence and quoted == [f"{e['fact']} {e['status']}: \u201c{e['quote']}\u201d ({e['source']})"
                                   for e in evidence if e.get("quote")]  # fmt: skip


def test_certified_items_make_no_task() -> None:
    request = _lumbar()
    request["entry"][0]["resource"]["note"] = [{"text": "Progressive foot drop with EHL weakness 3/5 and "
                                                 "new urinary incontinence since yesterday."}]  # fmt: skip
    decided = decide(request, policy=DEFAULT_POLICY)
    assert review_action_code(decided.response["item"][0]["adjudication"]) != "A4"
    assert decided.reviews == []


def test_the_physician_modifies() -> None:
    task, response = _decided()
    done, final = apply_decision(task, response, read_decision(_completed(task, "A6", quantity=1), task))
    assert (done["status"], done["meta"]["versionId"], done["owner"]["identifier"]) == ("completed", "2", NPI)
    assert done["businessStatus"]["coding"][0]["code"] == "A6" and response_of(done) == response["id"]
    assert (final["meta"]["versionId"], final["outcome"], final["disposition"]) == ("2", "complete", "A6")
    assert review_action_code(final["item"][0]["adjudication"]) == "A6"
    assert final["addItem"][0]["quantity"] == {"value": 1.0}
    assert final["preAuthRef"] == response["id"]
    reviewer = next(e for e in final["extension"] if e["url"].endswith("extension-claimResponseReviewer"))
    assert {"url": "reviewerNPI", "valueIdentifier": NPI} in reviewer["extension"]
    note = final["processNote"][final["item"][0]["noteNumber"][-1] - 1]["text"]
    assert note.startswith("Physician reviewer Dr. Ada Reyes: Modified.")
    assert response["meta"]["versionId"] == "1" and task["status"] == "requested"  # inputs untouched


def test_the_physician_certifies_without_a_rationale() -> None:
    task, response = _decided()
    _, final = apply_decision(task, response, read_decision(_completed(task, "A1", rationale=None), task))
    assert (final["outcome"], final["disposition"]) == ("complete", "A1")
    assert final["item"][0]["adjudication"][0]["extension"][0]["extension"][1] == {
        "url": "number",
        "valueString": f"{response['id']}-1",
    }


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda t: _completed(t, "A4"), "A1 .certify., A3"),
        (lambda t: _completed(t, "A2"), "A1 .certify., A3"),
        (lambda t: _completed(t, "A3", rationale=None), "rationale"),
        (lambda t: _completed(t, "A3", rationale="  "), "rationale"),
        (lambda t: _completed(t, "A6"), "authorized quantity"),
        (lambda t: _completed(t, "A6", quantity=0), "authorized quantity"),
        (lambda t: _completed(t, "A1", owner={"display": "someone"}), "owner"),
        (lambda t: {**_completed(t, "A1"), "status": "in-progress"}, "completed"),
        (lambda t: {**_completed(t, "A1"), "id": "another"}, "id"),
        (lambda t: {**_completed(t, "A1"), "focus": {"reference": "ServiceRequest/other"}}, "another request"),
    ],
)
def test_decisions_that_cannot_be_applied(change: Any, message: str) -> None:
    task, _ = _decided()
    with pytest.raises(ReviewDecisionError, match=message):
        read_decision(change(task), task)


def test_a_completed_task_is_not_decided_again() -> None:
    task, response = _decided()
    done, _ = apply_decision(task, response, read_decision(_completed(task, "A1", rationale=None), task))
    with pytest.raises(ReviewClosedError):
        read_decision(_completed(done, "A3"), done)


def test_the_form_s_decision_is_the_fhir_task_s() -> None:
    """The review page makes its Decision directly; a Task sent as FHIR saying the same makes the same one, and
    both are checked the same way."""
    task, _ = _decided()
    owner = {"identifier": NPI, "display": "Dr. Ada Reyes"}
    for code, rationale, quantity in [("A1", None, None), ("A3", " Not supported. ", None), ("A6", "Fewer.", 1.0)]:
        direct = decision_for(task, ReviewAction(code), rationale, quantity, reviewer=owner)
        assert direct == read_decision(_completed(task, code, rationale, quantity), task)
    with pytest.raises(ReviewDecisionError, match="authorized quantity"):
        decision_for(task, ReviewAction.MODIFIED, "Fewer.", float("nan"), reviewer=owner)


# --- the service ----------------------------------------------------------------------------------------


@pytest.fixture
def service(tmp_path: Path) -> Iterator[tuple[TestClient, Store]]:
    settings = load_settings(
        service={
            "tokens": {
                EHR: "system/*.*",
                PAYER: "system/ClaimResponse.read",
                REVIEWER: "user/Task.read user/Task.write user/ClaimResponse.read",
            },
            "state_url": f"sqlite:///{tmp_path}/state.db",
            "forward": False,
            "rate_limit": 1000,
        }
    )
    wiring = wire(settings)
    add_reviewer(wiring.store)
    with TestClient(wiring.app()) as client:
        yield client, wiring.store


def _submit(client: TestClient) -> tuple[dict[str, Any], dict[str, Any]]:
    """$submit of a new PAS request (a Claim of its own) with an adverse recommendation: (request Bundle,
    ClaimResponse)."""
    case = parse_letter((LETTERS / "2014-variant.txt").read_bytes())
    case.case_number = f"CM92-{uuid.uuid4().int % 10**7:07d}"
    request = with_npi(pas_bundle(case))
    answer = client.post("/fhir/Claim/$submit", content=orjson.dumps(request), headers=auth(EHR))
    assert answer.status_code == 200
    return request, answer.json()["entry"][0]["resource"]


def _tasks(client: TestClient, query: str = "status=requested") -> dict[str, Any]:
    found = client.get(f"/fhir/Task?{query}", headers=auth(REVIEWER))
    assert found.status_code == 200, found.text
    return dict(found.json())


def test_submit_pends_and_the_reviewer_finds_the_tasks(service: tuple[TestClient, Store]) -> None:
    client, _ = service
    _, response = _submit(client)
    assert response["disposition"] == "A4, A4"
    bundle = _tasks(client, f"focus={response['request']['reference']}")  # the Claim they fulfil
    assert bundle["total"] == 2
    tasks = [e["resource"] for e in bundle["entry"]]
    assert {t["requester"]["reference"] for t in tasks} == {response["requestor"]["reference"]}
    assert client.get(f"/fhir/{response['request']['reference']}", headers=auth(EHR)).status_code == 200
    assert {t["for"]["reference"] for t in tasks} == {response["patient"]["reference"]}
    recommended = [next(i for i in t["input"] if i["type"]["text"] == "recommendation") for t in tasks]
    assert sorted(r["valueCodeableConcept"]["coding"][0]["code"] for r in recommended) == ["A3", "A4"]
    read = client.get(f"/fhir/Task/{tasks[0]['id']}", headers=auth(REVIEWER))
    assert read.status_code == 200 and read.headers["etag"] == 'W/"1"'
    assert _tasks(client, f"patient={response['patient']['reference']}&status=requested")["total"] == 2
    assert _tasks(client, "status=completed")["total"] == 0
    assert _tasks(client, "_lastUpdated=gt2026-01-01&_lastUpdated=lt2100-01-01")["total"] == 2
    assert _tasks(client, "_lastUpdated=lt2026-01-01")["total"] == 0
    assert client.get("/fhir/Task?status=cancelled", headers=auth(REVIEWER)).status_code == 400
    assert client.get("/fhir/Task?owner=Practitioner/1", headers=auth(REVIEWER)).status_code == 400
    metrics = client.get("/metrics").text
    assert "imr_reviews_open 2.0" in metrics and "imr_reviews_overdue 0.0" in metrics


def test_open_tasks_come_soonest_due_first_and_page(service: tuple[TestClient, Store]) -> None:
    client, _ = service
    for _ in range(2):
        _submit(client)
        client.post("/fhir/ServiceRequest", content=json.dumps(_lumbar()), headers=auth(EHR))
    first = _tasks(client, "status=requested&_count=2")
    assert first["total"] >= 3 and len(first["entry"]) == 2
    ends = [e["resource"]["restriction"]["period"]["end"] for e in first["entry"]]
    assert ends == sorted(ends, key=_at)
    following = next(link["url"] for link in first["link"] if link["relation"] == "next")
    second = client.get(following.split("/fhir", 1)[1].join(["/fhir", ""]), headers=auth(REVIEWER)).json()
    assert {e["resource"]["id"] for e in second["entry"]}.isdisjoint(e["resource"]["id"] for e in first["entry"])


@pytest.mark.parametrize("token", [EHR, PAYER])
def test_ehr_and_payer_tokens_cannot_touch_tasks(service: tuple[TestClient, Store], token: str) -> None:
    client, _ = service
    _submit(client)
    task = _tasks(client)["entry"][0]["resource"]
    assert client.get("/fhir/Task", headers=auth(token)).status_code == 403
    assert client.get(f"/fhir/Task/{task['id']}", headers=auth(token)).status_code == 403
    put = client.put(f"/fhir/Task/{task['id']}", content=json.dumps(_completed(task, "A1")), headers=auth(token))
    assert put.status_code == 403
    assert _tasks(client)["total"] == 2  # nothing changed


def test_the_reviewer_decides_and_the_answer_is_final(service: tuple[TestClient, Store]) -> None:
    client, store = service
    request, response = _submit(client)
    task = next(t["resource"] for t in _tasks(client)["entry"]
                if "A3" in json.dumps(t["resource"]["input"]))  # fmt: skip
    put = client.put(f"/fhir/Task/{task['id']}", content=json.dumps(_completed(task, "A3")), headers=auth(REVIEWER))
    assert put.status_code == 200, put.text
    assert (put.json()["status"], put.headers["etag"]) == ("completed", 'W/"2"')

    final = client.get(f"/fhir/ClaimResponse/{response['id']}", headers=auth(REVIEWER)).json()
    assert final["meta"]["versionId"] == "2"
    sequence = next(i["valuePositiveInt"] for i in task["input"] if i["type"]["text"] == "item-sequence")
    item = next(i for i in final["item"] if i["itemSequence"] == sequence)
    assert review_action_code(item["adjudication"]) == "A3"
    assert final["outcome"] == "partial"  # the other item still waits for its reviewer
    inquired = client.post("/fhir/Claim/$inquire", content=json.dumps(_inquiry(request)), headers=auth(EHR))
    assert _returned(inquired)[0]["entry"][0]["resource"]["meta"]["versionId"] == "2"
    assert _tasks(client)["total"] == 1
    assert _tasks(client, f"owner:identifier={NPI['system']}|{NPI['value']}")["total"] == 1
    who, action, target = next((w, a, t) for _, w, a, t, _ in store.audit_log() if a.startswith("review decision"))
    assert (action, target) == ("review decision A3", f"Task/{task['id']} ClaimResponse/{response['id']}/_history/2")
    assert who.startswith("token:")

    again = client.put(f"/fhir/Task/{task['id']}", content=json.dumps(_completed(task, "A1")), headers=auth(REVIEWER))
    assert again.status_code == 409
    assert client.get(f"/fhir/ClaimResponse/{response['id']}", headers=auth(REVIEWER)).json() == final


@pytest.mark.parametrize(
    ("body", "headers", "status"),
    [
        (lambda t: _completed(t, "A4"), {}, 422),
        (lambda t: _completed(t, "A3", rationale=None), {}, 422),
        (lambda t: _completed(t, "A1"), {"If-Match": 'W/"7"'}, 412),
        (lambda t: {"resourceType": "Patient", "id": t["id"]}, {}, 422),
    ],
)
def test_refused_decisions_change_nothing(
    service: tuple[TestClient, Store], body: Any, headers: dict[str, str], status: int
) -> None:
    client, _ = service
    _, response = _submit(client)
    task = _tasks(client)["entry"][0]["resource"]
    answer = client.put(f"/fhir/Task/{task['id']}", content=json.dumps(body(task)),
                        headers={**auth(REVIEWER), **headers})  # fmt: skip
    assert answer.status_code == status
    assert answer.json()["resourceType"] == "OperationOutcome"
    assert client.get(f"/fhir/Task/{task['id']}", headers=auth(REVIEWER)).json() == task
    stored = client.get(f"/fhir/ClaimResponse/{response['id']}", headers=auth(REVIEWER)).json()
    assert stored["meta"]["versionId"] == "1"


def test_an_unknown_task_is_404(service: tuple[TestClient, Store]) -> None:
    client, _ = service
    assert client.get("/fhir/Task/nope", headers=auth(REVIEWER)).status_code == 404
    missing = {"resourceType": "Task", "id": "nope", "status": "completed", "intent": "order"}
    assert client.put("/fhir/Task/nope", content=json.dumps(missing), headers=auth(REVIEWER)).status_code == 404


def test_the_final_version_is_queued_for_the_payer(tmp_path: Path) -> None:
    store = Store(f"sqlite:///{tmp_path}/state.db")
    decided = decide(_lumbar(), policy=DEFAULT_POLICY)
    record(store, decided, forward=True, key="k")
    (review,) = decided.reviews
    task = review.resource
    store.complete_review(task["id"], lambda t, r: apply_decision(t, r, read_decision(_completed(t, "A3"), t)),
                          forward=for_payer, who="test")  # fmt: skip
    assert store.outbox_pending() == 2
    first, second = store.next_outbox_batch(5)
    assert first.payload["meta"]["tag"][0]["code"] == "1"
    assert second.payload["meta"]["tag"] == [{"system": VERSION_TAG_SYSTEM, "code": "2"}]
    assert second.payload["outcome"] == "complete" and "id" not in second.payload


# --- the payer receives each version once ---------------------------------------------------------------

PAYER_BASE = "http://payer.test/fhir"


def _forwarder(tmp_path: Path) -> Forwarder:
    client = FHIRClient(PAYER_BASE, retry=RetrySettings(attempts=1))
    return Forwarder(Store(f"sqlite:///{tmp_path}/state.db"), client)


def test_a_later_version_updates_the_payer_copy_with_if_match(httpx_mock: HTTPXMock, tmp_path: Path) -> None:
    copy = {"resourceType": "ClaimResponse", "meta": {"tag": [{"system": VERSION_TAG_SYSTEM, "code": "2"}]}}
    served = {"resourceType": "ClaimResponse", "id": "p1", "meta": {"versionId": "4",
              "tag": [{"system": VERSION_TAG_SYSTEM, "code": "1"}]}}  # fmt: skip
    httpx_mock.add_response(method="GET", json={"resourceType": "Bundle", "type": "searchset",
                                                "entry": [{"resource": served}]})  # fmt: skip
    httpx_mock.add_response(method="PUT", url=f"{PAYER_BASE}/ClaimResponse/p1", status_code=200, json=served)
    _forwarder(tmp_path).send("cr-1", copy)
    search, put = httpx_mock.get_requests()
    assert search.url.params["identifier"] == f"{DETERMINATION_SYSTEM}|cr-1"
    assert put.headers["If-Match"] == 'W/"4"' and json.loads(put.content)["id"] == "p1"


def test_a_version_already_delivered_is_not_sent_again(httpx_mock: HTTPXMock, tmp_path: Path) -> None:
    copy = {"resourceType": "ClaimResponse", "meta": {"tag": [{"system": VERSION_TAG_SYSTEM, "code": "2"}]}}
    served = {**copy, "id": "p1", "meta": {"versionId": "5", "tag": copy["meta"]["tag"]}}
    httpx_mock.add_response(method="GET", json={"resourceType": "Bundle", "type": "searchset",
                                                "entry": [{"resource": served}]})  # fmt: skip
    _forwarder(tmp_path).send("cr-1", copy)
    assert [r.method for r in httpx_mock.get_requests()] == ["GET"]


def test_a_first_version_is_a_conditional_create(httpx_mock: HTTPXMock, tmp_path: Path) -> None:
    httpx_mock.add_response(method="POST", status_code=201, json={"resourceType": "ClaimResponse", "id": "p1"})
    _forwarder(tmp_path).send("cr-1", {"resourceType": "ClaimResponse"})
    (post,) = httpx_mock.get_requests()
    assert post.headers["If-None-Exist"] == f"identifier={DETERMINATION_SYSTEM}|cr-1"


# --- the review page ------------------------------------------------------------------------------------


_csrf, _sign_in = csrf_of, sign_in


def test_the_page_asks_for_a_sign_in(service: tuple[TestClient, Store]) -> None:
    client, _ = service
    answer = client.get("/review", follow_redirects=False)
    assert (answer.status_code, answer.headers["location"]) == (303, "/review/login")


def test_sign_in_sets_a_strict_session_cookie(service: tuple[TestClient, Store]) -> None:
    client, _ = service
    signed = _sign_in(client)
    assert signed.status_code == 303
    cookie = signed.headers["set-cookie"]
    assert "imr_review=" in cookie and "HttpOnly" in cookie and "SameSite=strict" in cookie
    _submit(client)
    queue = client.get("/review")
    assert queue.status_code == 200 and queue.text.count('href="/review/cases/') == 1  # one case, two items
    assert "default-src 'none'" in queue.headers["content-security-policy"]


def test_a_bearer_token_reads_the_page_but_decides_as_nobody(service: tuple[TestClient, Store]) -> None:
    """A reviewer's token may read the queue and a case, an EHR's may not; neither decides on the page, where a
    decision names the signed-in person."""
    client, _ = service
    bearer = {"Authorization": f"Bearer {REVIEWER}"}
    assert client.get("/review", headers=bearer).status_code == 200
    assert client.get("/review", headers={"Authorization": f"Bearer {EHR}"}).status_code == 403
    _submit(client)
    task = _tasks(client)["entry"][0]["resource"]
    page = client.get(f"/review/cases/{response_of(task)}", headers=bearer)
    assert page.status_code == 200 and "Sign in as a reviewer" in page.text and "Record decisions" not in page.text
    form = {f"decision-{task['id']}": "A1", "action": "decide", "csrf": "none"}
    refused = client.post(f"/review/cases/{response_of(task)}", data=form, headers=bearer)
    assert refused.status_code == 403 and _tasks(client)["total"] == 2


def test_a_decision_form_needs_its_csrf_token_and_origin(service: tuple[TestClient, Store]) -> None:
    client, _ = service
    _submit(client)
    _sign_in(client)
    task = _tasks(client)["entry"][0]["resource"]
    case = f"/review/cases/{response_of(task)}"
    form = {f"decision-{task['id']}": "A1", "action": "decide", "csrf": _csrf(client.get(case))}
    assert client.post(case, data={**form, "csrf": "forged"}).status_code == 403
    elsewhere = client.post(case, data=form, headers={"Origin": "https://evil.example"})
    assert elsewhere.status_code == 403
    assert _tasks(client)["total"] == 2
    done = client.post(case, data=form, follow_redirects=False)
    assert done.status_code == 303
    assert _tasks(client)["total"] == 1
    assert "Decided: A1" in client.get(done.headers["location"]).text


def test_a_decision_on_the_page_names_the_signed_in_reviewer(service: tuple[TestClient, Store]) -> None:
    """No NPI is typed: the Task's owner, the ClaimResponse's reviewer and the audit row name the reviewer of
    the session, a Practitioner with their name and NPI."""
    client, store = service
    _submit(client)
    _sign_in(client)
    task = next(t["resource"] for t in _tasks(client)["entry"] if "A3" in json.dumps(t["resource"]["input"]))
    case = f"/review/cases/{response_of(task)}"
    form = {f"decision-{task['id']}": "A3", f"rationale-{task['id']}": "No objective findings.", "npi": "1003000126",
            "action": "decide", "csrf": _csrf(client.get(case))}  # fmt: skip
    assert client.post(case, data=form, follow_redirects=False).status_code == 303
    done = client.get(f"/fhir/Task/{task['id']}", headers=auth(REVIEWER)).json()
    person = {"resourceType": "Practitioner", "id": "reviewer", "identifier": [{**NPI, "value": ADA}],
              "name": [{"text": "Dr. Ada Reyes"}]}  # fmt: skip
    assert done["contained"] == [person]
    assert done["owner"] == {"reference": "#reviewer", "type": "Practitioner", "identifier": {**NPI, "value": ADA},
                             "display": "Dr. Ada Reyes"}  # fmt: skip
    final = client.get(f"/fhir/ClaimResponse/{response_of(task)}", headers=auth(REVIEWER)).json()
    assert person in final["contained"]
    named = [e["valueReference"] for e in final["extension"] if e["url"].endswith("/StructureDefinition/reviewer")]
    assert named == [done["owner"]]
    flagged = next(e for e in final["extension"] if e["url"].endswith("extension-claimResponseReviewer"))
    assert {"url": "reviewerNPI", "valueIdentifier": {**NPI, "value": ADA}} in flagged["extension"]
    assert any("Dr. Ada Reyes" in n["text"] for n in final["processNote"])
    who = next(w for _, w, a, _, _ in store.audit_log() if a == "review decision A3")
    assert who == f"NPI {ADA} Dr. Ada Reyes"


def test_a_task_sent_as_fhir_names_an_npi_whose_check_digit_is_right(service: tuple[TestClient, Store]) -> None:
    client, _ = service
    _submit(client)
    task = _tasks(client)["entry"][0]["resource"]
    wrong = _completed(task, "A1", owner={"identifier": {**NPI, "value": "1234567890"}})
    answer = client.put(f"/fhir/Task/{task['id']}", content=json.dumps(wrong), headers=auth(REVIEWER))
    assert answer.status_code == 422 and "check digit" in answer.text
    assert _tasks(client)["total"] == 2


def test_every_version_of_the_answer_is_kept_and_served(service: tuple[TestClient, Store]) -> None:
    """_history lists the versions newest first (the first created, a physician's decision an update); each
    version reads back as it was; the Task is for a Patient the service serves."""
    client, _ = service
    _, response = _submit(client)
    task = next(t["resource"] for t in _tasks(client)["entry"] if "A3" in json.dumps(t["resource"]["input"]))
    put = client.put(f"/fhir/Task/{task['id']}", content=json.dumps(_completed(task, "A3")), headers=auth(REVIEWER))
    assert put.status_code == 200, put.text
    history = client.get(f"/fhir/ClaimResponse/{response['id']}/_history", headers=auth(EHR)).json()
    assert history["type"] == "history" and [e["resource"]["meta"]["versionId"] for e in history["entry"]] == ["2", "1"]
    assert [e["request"]["method"] for e in history["entry"]] == ["PUT", "POST"]
    first = client.get(f"/fhir/ClaimResponse/{response['id']}/_history/1", headers=auth(EHR))
    assert first.status_code == 200 and first.json() == response and first.headers["etag"] == 'W/"1"'
    assert client.get(f"/fhir/ClaimResponse/{response['id']}/_history/3", headers=auth(EHR)).status_code == 404
    assert client.get("/fhir/ClaimResponse/nothing/_history", headers=auth(EHR)).status_code == 404
    patient = client.get(f"/fhir/{task['for']['reference']}", headers=auth(EHR))
    assert patient.status_code == 200 and patient.json()["resourceType"] == "Patient"


def test_an_undecided_item_s_task_names_what_the_records_lack() -> None:
    """No rule decides a lumbar MRI whose note says only that the back hurts: its Task asks for what would
    decide it (a neurologic examination first), with the LOINC codes to ask with; a Task whose item a rule
    recommends not certifying (the A3 above, a normal neurologic exam and no red flag) names what that rests on,
    for the physician who decides."""
    request = _lumbar()
    request["entry"][0]["resource"]["note"] = [{"text": "Low back pain for eight weeks, worse with bending."}]
    (review,) = decide(request, policy=DEFAULT_POLICY).reviews
    missing = [i["valueString"] for i in review.resource["input"] if i["type"]["text"] == "documentation-missing"]
    assert missing and missing[0].startswith("neurologic-deficit: ") and "LOINC 11506-3" in missing[0]
    task, _ = _decided()
    rests_on = [i["valueString"] for i in task["input"] if i["type"]["text"] == "documentation-missing"]
    assert [line.split(":")[0] for line in rests_on] == ["neurologic-deficit", "red-flags"]
