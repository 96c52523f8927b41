"""The review workstation through the app, as a signed-in reviewer uses it (adapter.service.routes.cases): the
queue of open cases, a case's page, deciding several items at once, drafts, call notes, hand-offs and asking
for documentation."""

from __future__ import annotations

import copy
import html
import re
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from fastapi.testclient import TestClient

from adapter import parse_letter
from adapter.config import load_settings
from adapter.fhir.attachments import asked_lines
from adapter.fhir.build import pas_bundle
from adapter.review.cases import CaseContext
from adapter.service import wire
from adapter.service.reviewers import Reviewers
from adapter.service.state import Store
from tests.conftest import LETTERS, auth
from tests.test_review_cases import context_bundle
from tests.test_reviewers import ADA, BEN, add_reviewer, csrf_of, sign_in

EHR, READER = "ehr-token", "reader-token"


# --- through the app ----------------------------------------------------------------------------------


@pytest.fixture
def service(tmp_path: Path) -> Iterator[tuple[TestClient, Store]]:
    settings = load_settings(service={
        "tokens": {EHR: "system/*.*", READER: "user/Task.read user/Task.write user/ClaimResponse.read"},
        "state_url": f"sqlite:///{tmp_path}/state.db", "forward": False, "rate_limit": 1000})  # fmt: skip
    wiring = wire(settings)
    with TestClient(wiring.app()) as client:
        add_reviewer(wiring.store)
        add_reviewer(wiring.store, BEN, "Dr. Ben Ode")
        yield client, wiring.store


def _sign_in(client: TestClient, npi: str = ADA) -> None:
    assert sign_in(client, npi).status_code == 303


def _letter_request() -> dict[str, Any]:
    """The PAS request of a letter with four items, under a case number of its own."""
    case = parse_letter((LETTERS / "case-number-multi.txt").read_bytes())
    case.case_number = f"CM92-{uuid.uuid4().int % 10**7:07d}"
    return pas_bundle(case)


def _submit(client: TestClient, request: dict[str, Any]) -> str:
    answer = client.post("/fhir/Claim/$submit", content=orjson.dumps(request), headers=auth(EHR))
    assert answer.status_code == 200, answer.text[:300]
    return str(answer.json()["entry"][0]["resource"]["id"])


def _case_ids(page: httpx.Response) -> list[str]:
    return list(dict.fromkeys(re.findall(r'href="/review/cases/([^"#]+)"', page.text)))


def _form(page: httpx.Response) -> dict[str, str]:
    """The case form's fields as the page fills them (checked radios and boxes, text, textareas)."""
    fields = {m[0]: html.unescape(m[1]) for m in re.findall(r'<textarea id="[^"]+" name="([^"]+)">([^<]*)</textarea>',
                                                             page.text)}  # fmt: skip
    fields |= {m[0]: m[1] for m in re.findall(r'name="([^"]+)" value="([^"]*)" checked', page.text)}
    fields["csrf"] = csrf_of(page)
    return fields


def _open_items(page: httpx.Response) -> list[str]:
    return list(dict.fromkeys(re.findall(r'name="decision-([^"]+)"', page.text)))


def test_the_queue_groups_a_request_s_items_and_the_page_shows_the_case(service: tuple[TestClient, Store]) -> None:
    client, store = service
    rid = _submit(client, _letter_request())
    _sign_in(client)
    queue = client.get("/review")
    assert _case_ids(queue) == [rid]
    assert queue.text.count("<tr") == 2  # the header and one case for its four items
    page = client.get(f"/review/cases/{rid}")
    assert page.status_code == 200
    text = html.unescape(page.text)
    for words in ("M54.16", "lumbar radiculopathy", "2016-08-14", "physical therapy · 12 sessions", "51", "female",
                  "Clinical note (case summary)"):  # fmt: skip
        assert words in text, words
    anchors = re.findall(r'<a href="#(q\d+-\d+)">', page.text)
    assert anchors and all(f'<mark id="{a}"' in page.text for a in anchors)
    assert "urn:uuid:" not in re.sub(r"<[^>]+>", "", page.text.split("Clinical record")[1])
    task, _ = store.case_tasks(rid)[1]
    moved = client.get(f"/review/tasks/{task['id']}", follow_redirects=False)
    assert moved.headers["location"] == f"/review/cases/{rid}#item-2"  # a Task's old page is its item's place


def test_filters_narrow_the_queue(service: tuple[TestClient, Store]) -> None:
    client, _ = service
    _submit(client, _letter_request())
    _sign_in(client)
    assert _case_ids(client.get("/review?clock=expedited")) == []
    assert len(_case_ids(client.get("/review?category=mri+spine"))) == 1
    assert _case_ids(client.get("/review?category=acupuncture")) == []
    assert _case_ids(client.get("/review?mine=1")) == []


def test_the_queue_pages_cases_soonest_due_first(service: tuple[TestClient, Store],
                                                 monkeypatch: pytest.MonkeyPatch) -> None:  # fmt: skip
    from adapter.service.routes import cases

    client, _ = service
    later = _submit(client, _letter_request())
    sooner = _letter_request()
    sooner["entry"][0]["resource"]["priority"] = {"coding": [{"code": "stat"}]}  # expedited: due in 72 hours
    soonest = _submit(client, sooner)
    _sign_in(client)
    monkeypatch.setattr(cases, "QUEUE_PAGE", 1)
    first, second = client.get("/review"), client.get("/review?page=2")
    assert (_case_ids(first), _case_ids(second)) == ([soonest], [later])
    assert "Page 1 of 2" in first.text and 'href="/review?page=2"' in first.text
    assert client.get("/review?page=0").status_code == 400


def test_a_request_sent_again_through_another_channel_is_flagged(service: tuple[TestClient, Store]) -> None:
    client, _ = service
    request = _letter_request()
    first = _submit(client, request)
    # the same patient's MRI as the EHR's worker would send it: the order with its context, no Claim
    alone = copy.deepcopy(request)
    alone["entry"] = [e for e in alone["entry"] if e["resource"]["resourceType"] in
                      ("ServiceRequest", "Patient", "Condition", "DocumentReference")]  # fmt: skip
    mri = next(e for e in alone["entry"] if "MRI" in orjson.dumps(e["resource"].get("code")).decode())
    alone["entry"] = [mri, *(e for e in alone["entry"] if e["resource"]["resourceType"] != "ServiceRequest")]
    posted = client.post("/fhir/ServiceRequest", content=orjson.dumps(alone), headers=auth(EHR))
    assert posted.status_code == 201, posted.text[:300]
    second = posted.json()["id"]
    _sign_in(client)
    queue = client.get("/review")
    assert queue.text.count("Duplicate request") == 2
    assert f'href="/review/cases/{first}">an earlier one' in queue.text
    assert "Duplicate request:" in client.get(f"/review/cases/{second}").text


def test_several_items_are_decided_at_once_and_never_reopen(service: tuple[TestClient, Store]) -> None:
    client, store = service
    rid = _submit(client, _letter_request())
    _sign_in(client)
    page = client.get(f"/review/cases/{rid}")
    first, second, *rest = _open_items(page)
    form = _form(page) | {f"decision-{first}": "A1", f"decision-{second}": "A3", f"rationale-{second}": "  ",
                          "action": "decide"}  # fmt: skip
    refused = client.post(f"/review/cases/{rid}", data=form)
    assert refused.status_code == 422
    assert "A rationale is required to not certify." in refused.text
    assert f'name="decision-{first}" value="A1" checked' in refused.text  # the choices are kept
    assert store.claim_response(rid)["meta"]["versionId"] == "1"  # type: ignore[index]

    form[f"rationale-{second}"] = "No objective functional improvement documented."
    done = client.post(f"/review/cases/{rid}", data=form, follow_redirects=False)
    assert (done.status_code, done.headers["location"]) == (303, f"/review/cases/{rid}?saved=decide")
    answer = store.claim_response(rid) or {}
    assert answer["meta"]["versionId"] == "3"
    page = client.get(f"/review/cases/{rid}?saved=decide")
    assert _open_items(page) == rest and "Decisions recorded" in page.text
    again = client.post(f"/review/cases/{rid}", data=form | {"csrf": csrf_of(page)})
    assert again.status_code == 422 and "does not reopen" in again.text
    last = {"csrf": csrf_of(page), "action": "decide"} | {f"decision-{i}": "A1" for i in rest}
    finished = client.post(f"/review/cases/{rid}", data=last, follow_redirects=False)
    assert finished.headers["location"] == f"/review?done={rid}"  # the case is done: back to the queue
    assert (store.claim_response(rid) or {})["outcome"] == "complete"


def test_a_draft_a_call_note_and_a_hand_off_stay_on_the_tasks(service: tuple[TestClient, Store]) -> None:
    client, store = service
    rid = _submit(client, _letter_request())
    _sign_in(client)
    page = client.get(f"/review/cases/{rid}")
    first = _open_items(page)[0]
    form = _form(page) | {f"decision-{first}": "A3", f"rationale-{first}": "Draft words.", "action": "draft"}
    assert client.post(f"/review/cases/{rid}", data=form, follow_redirects=False).status_code == 303
    page = client.get(f"/review/cases/{rid}")
    assert f'name="decision-{first}" value="A3" checked' in page.text and "Draft words." in page.text
    note = _form(page) | {"action": "note", "call-date": "2026-11-30", "call-with": "Dr. Lee", "call-said": "EMG due."}
    assert client.post(f"/review/cases/{rid}", data=note, follow_redirects=False).status_code == 303
    page = client.get(f"/review/cases/{rid}")
    assert "Peer-to-peer call on 2026-11-30 with Dr. Lee: EMG due." in page.text
    ben = Reviewers(store).by_npi(BEN)
    assert ben is not None
    handed = _form(page) | {"action": "handoff", "handoff": ben.id}
    assert client.post(f"/review/cases/{rid}", data=handed, follow_redirects=False).status_code == 303
    assert store.claim_response(rid)["meta"]["versionId"] == "1"  # type: ignore[index]
    client.post("/review/logout", data={"csrf": csrf_of(client.get("/review"))})
    _sign_in(client, BEN)
    assert _case_ids(client.get("/review?mine=1")) == [rid]


def test_asking_for_documentation_sends_the_physician_s_question(service: tuple[TestClient, Store]) -> None:
    client, store = service
    rid = _submit(client, _letter_request())
    _sign_in(client)
    page = client.get(f"/review/cases/{rid}")
    items = _open_items(page)
    refused = client.post(f"/review/cases/{rid}", data=_form(page) | {"action": "ask", "question": "EMG?"})
    assert refused.status_code == 422 and "Tick the items" in refused.text
    asked = _form(page) | {"action": "ask", f"ask-{items[-1]}": "1", "question": "Please send the EMG."}
    assert client.post(f"/review/cases/{rid}", data=asked, follow_redirects=False).status_code == 303
    answer = store.claim_response(rid) or {}
    assert answer["meta"]["versionId"] == "2"
    notes = [n["text"] for c in answer["contained"] if c["resourceType"] == "CommunicationRequest"
             for n in c.get("note", [])]  # fmt: skip
    assert any(n.startswith("Please send the EMG.") for n in notes)
    assert len(asked_lines(answer)) >= 1


def test_a_case_page_reads_with_a_token_and_an_unknown_case_is_404(service: tuple[TestClient, Store]) -> None:
    client, store = service
    posted = client.post("/fhir/ServiceRequest", content=orjson.dumps(context_bundle()), headers=auth(EHR))
    rid = posted.json()["id"]
    case = store.cases([rid]).get(rid)
    assert isinstance(case, CaseContext) and case.patient == "member WC-77"
    _sign_in(client)
    assert client.get("/review/cases/not-a-case").status_code == 404
    assert client.get(f"/review/cases/{rid}", headers={"Authorization": f"Bearer {READER}"}).status_code == 200


def test_tasks_stored_before_the_upgrade_are_found_by_their_case(tmp_path: Path) -> None:
    from alembic.script import ScriptDirectory

    from adapter.service.state import MIGRATIONS

    url = f"sqlite:///{tmp_path}/state.db"
    scripts = ScriptDirectory(str(MIGRATIONS))
    cases_revision = next(r for r in scripts.walk_revisions() if "review_cases" in (r.module.__file__ or ""))
    old = Store(url, migrate=False)
    old.upgrade(str(cases_revision.down_revision))
    task = {
        "resourceType": "Task",
        "id": "t1",
        "status": "requested",
        "meta": {"lastUpdated": "2026-11-02T10:00:00Z"},
        "output": [{"type": {"text": "claim-response"}, "valueReference": {"reference": "ClaimResponse/cr1"}}],
    }
    with old.transaction() as db:
        db.exec_driver_sql(
            "INSERT INTO tasks (id, status, focus, due_us, last_updated, updated_us, resource, documents) "
            "VALUES ('t1', 'requested', 'Claim/c1', 0, '2026-11-02', 0, ?, '[]')",
            (orjson.dumps(task).decode(),),
        )
    old.close()
    store = Store(url)
    assert [t["id"] for t, _ in store.case_tasks("cr1")] == ["t1"]
    assert store.cases(["cr1"]) == {}
