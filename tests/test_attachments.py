"""Documentation requests (issue 23): a pended item asks for what it lacks in the PAS answer
(PASCommunicationRequest), and a CDex ``$submit-attachment`` answering it is matched, checked and decided again
as the next version of the ClaimResponse."""

from __future__ import annotations

import base64
import copy
import json
import uuid
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from adapter import parse_letter
from adapter.config import load_settings
from adapter.deadlines import information_due
from adapter.fhir.attachments import ADMINISTRATION_REFERENCE, SERVICE_LINE_NUMBER, asked_lines
from adapter.fhir.build import pas_bundle
from adapter.fhir.conformance import response_faults
from adapter.fhir.pas import review_action_code
from adapter.fhir.questionnaires import MAX_NOTE
from adapter.review.tasks import sequence_of
from adapter.service import wire
from tests.conftest import auth, make_pdf
from tests.test_conformance import _role
from tests.test_questionnaires import answered
from tests.test_review import CALIFORNIA, _completed
from tests.test_service import _inquiry, _returned, with_npi
from tests.test_updates import _update

JSON = dict[str, Any]
EHR, REVIEWER = "attachment-ehr", "attachment-reviewer"
NPI = "http://hl7.org/fhir/sid/us-npi"
PROVIDER_NPI = "1234567893"

LETTER = """Case Number: {case}
Date Assigned: 05/01/2017 Date of Injury:  03-01-17
Decision Date: 05/26/2017 UR Denial Date:  04/18/2017
Priority:  Standard Application
Received:
04/25/2017

HOW THE IMR FINAL DETERMINATION WAS MADE
MAXIMUS Federal Services sent the complete case file to an expert reviewer.

The Expert Reviewer has the following credentials:
State(s) of Licensure: California
Certification(s)/Specialty: Physical Medicine & Rehabilitation

CLINICAL CASE SUMMARY
The injured worker is a 41 year old female, who sustained an industrial injury on 03-01-17. She is
being treated for low back pain. She has had six sessions of physical therapy.

IMR ISSUES, DECISIONS AND RATIONALES
The Final Determination was based on decisions for the disputed items/services set forth below:

Physical therapy for the lumbar spine, 6 visits:   Upheld

Claims Administrator guideline: The Claims Administrator did not cite any medical evidence
for its decision.

MAXIMUS guideline: The Expert Reviewer did not cite any medical evidence for its decision.

Decision rationale: Not medically necessary.

MRI of the lumbar spine without contrast:   Upheld

Claims Administrator guideline: The Claims Administrator did not cite any medical evidence
for its decision.

MAXIMUS guideline: The Expert Reviewer did not cite any medical evidence for its decision.

Decision rationale: Not medically necessary.
"""
IMPROVED = ("Physical therapy progress note. After six sessions of physical therapy she reports improved "
            "function: walking and sitting tolerance increased and she returned to modified work.")  # fmt: skip
NOT_IMPROVED = "Physical therapy progress note. There has been no functional improvement with physical therapy."


@pytest.fixture
def client(tmp_path: Path) -> Iterator[TestClient]:
    settings = load_settings(service={
        "tokens": {EHR: "system/*.*", REVIEWER: "user/Task.read user/Task.write user/ClaimResponse.read"},
        "state_url": f"sqlite:///{tmp_path}/state.db", "forward": False, "rate_limit": 10_000,
    })  # fmt: skip
    with TestClient(wire(settings).app()) as test_client:
        yield test_client


def _request() -> JSON:
    """Physical therapy with six visits had and nothing on function (line 1), and a lumbar MRI (line 2)."""
    case = parse_letter(LETTER.format(case=f"CM26-{uuid.uuid4().int % 10**7:07d}"))
    return with_npi(pas_bundle(case), PROVIDER_NPI)


def _submit(client: TestClient, request: JSON) -> JSON:
    answer = client.post("/fhir/Claim/$submit", content=json.dumps(request), headers=auth(EHR))
    assert answer.status_code == 200, answer.text
    bundle: JSON = answer.json()
    assert response_faults(bundle, request["entry"][0]["resource"]) == []
    return bundle


def _items(response: JSON) -> dict[int, JSON]:
    return {i["itemSequence"]: i for i in response["item"]}


def _member(request: JSON) -> JSON:
    coverage = next(e["resource"] for e in request["entry"] if e["resource"]["resourceType"] == "Coverage")
    member: JSON = next(i for i in coverage["identifier"] if "MB" in json.dumps(i.get("type")))
    return {"system": member["system"], "value": member["value"]}


def _attachment(tracking: str, member: JSON, text: str, *, line: int | None = 1,
                code: str = "47420-5") -> JSON:  # fmt: skip
    parts: list[JSON] = [] if line is None else [{"name": "LineItem", "valueString": str(line)}]
    parts += [
        {"name": "Code", "valueCodeableConcept": {"coding": [{"system": "http://loinc.org", "code": code}]}},
        {"name": "Content", "resource": {
            "resourceType": "DocumentReference", "status": "current",
            "type": {"coding": [{"system": "http://loinc.org", "code": code}]},
            "content": [{"attachment": {"contentType": "text/plain",
                                        "data": base64.b64encode(text.encode()).decode()}}]}},
    ]  # fmt: skip
    return {
        "resourceType": "Parameters",
        "parameter": [
            {"name": "TrackingId", "valueIdentifier": {"system": "urn:imr-adapter:id:attachment-request",
                                                       "value": tracking}},
            {"name": "AttachTo", "valueCode": "preauthorization"},
            {"name": "MemberId", "valueIdentifier": member},
            {"name": "ProviderId", "valueIdentifier": {"system": NPI, "value": PROVIDER_NPI}},
            {"name": "Attachment", "part": parts},
        ],
    }  # fmt: skip


def _asks(response: JSON) -> list[JSON]:
    named = {r["reference"][1:] for r in response.get("communicationRequest", [])}
    return [c for c in response.get("contained", []) if c["id"] in named]


def _tasks(client: TestClient, response: JSON) -> list[JSON]:
    found = client.get("/fhir/Task", params={"focus": response["request"]["reference"], "_count": 100},
                       headers=auth(REVIEWER)).json()  # fmt: skip
    return [e["resource"] for e in found.get("entry", [])]


def test_a_pended_item_asks_for_what_it_lacks(client: TestClient) -> None:
    bundle = _submit(client, _request())
    response = bundle["entry"][0]["resource"]
    pt = _items(response)[1]
    assert review_action_code(pt["adjudication"]) == "A4"
    number = next(e["valueString"] for e in pt["extension"] if e["url"] == ADMINISTRATION_REFERENCE)
    asks = [a for a in _asks(response) if a["extension"][0]["valuePositiveInt"] == 1]
    # one ask: the functional status assessment note that would decide it; the home exercise rationale the
    # guideline also names is shown to the physician, not asked of the provider (it would decide nothing)
    (first,) = asks
    assert first["payload"] == [{"contentString": "47420-5"}]
    assert first["extension"] == [{"url": SERVICE_LINE_NUMBER, "valuePositiveInt": 1}]
    assert (first["status"], first["medium"][0]["coding"][0]["code"]) == ("active", "CDEX")
    assert first["identifier"][0]["value"] == number
    assert first["requester"] == response["insurer"]
    assert first["recipient"] == [response["requestor"]] and first["sender"] == response["requestor"]
    due = information_due(datetime.fromisoformat(response["created"]), CALIFORNIA).isoformat()
    assert first["occurrencePeriod"]["end"] == due  # 14 days from the request (8 CCR 9792.9.1)
    assert "functional improvement" in first["note"][0]["text"]
    assert set(asked_lines(response)) == {1, 2}  # the MRI asks too (neurologic findings, red flags, ...)
    # the physician's review of an item that asks is due by the information deadline, not in 5 business days
    tasks = {sequence_of(t): t for t in _tasks(client, response)}
    assert tasks[1]["restriction"]["period"]["end"] == information_due(
        datetime.fromisoformat(response["created"]), CALIFORNIA
    ).isoformat(timespec="seconds")


def test_asks_of_a_practitioner_role_go_to_its_practitioner_from_its_organization(client: TestClient) -> None:
    """PAS lets a Claim's provider be a PASPractitionerRole, but an ask's recipient is only a PASPractitioner or
    PASOrganization and its sender only a PASRequestor (CommunicationRequest.fsh:25-28): the asks never name the
    role (every answer conformant, the inquiry's too), but the role's practitioner, from its organization, when
    first asked and asked again."""
    request = _request()
    _role(request)
    response = _submit(client, request)["entry"][0]["resource"]  # no conformance faults
    assert response["requestor"]["reference"].startswith("PractitionerRole/") and _asks(response)
    role = client.get(f"/fhir/{response['requestor']['reference']}", headers=auth(EHR)).json()
    of_role = ([role["practitioner"]], role["organization"])
    assert all((a["recipient"], a["sender"]) == of_role for a in _asks(response))
    body = _attachment(f"{response['id']}-1", _member(request), NOT_IMPROVED)
    assert client.post("/fhir/$submit-attachment", content=json.dumps(body), headers=auth(EHR)).status_code == 200
    after = client.get(f"/fhir/ClaimResponse/{response['id']}", headers=auth(EHR)).json()
    again = [a for a in _asks(after) if a["extension"][0]["valuePositiveInt"] == 1]
    assert again and all((a["recipient"], a["sender"]) == of_role for a in again)
    inquiry = _inquiry(request)  # the role, with the Practitioner and Organization it names
    sent_role = next(e["resource"] for e in request["entry"] if e["resource"]["resourceType"] == "PractitionerRole")
    inquiry["entry"] += [e for e in request["entry"] if e["fullUrl"] in
                         (sent_role["practitioner"]["reference"], sent_role["organization"]["reference"])]  # fmt: skip
    (inquired,) = _returned(client.post("/fhir/Claim/$inquire", content=json.dumps(inquiry), headers=auth(EHR)))
    assert response_faults(inquired, inquiry=True) == []
    named = [a for a in _asks(inquired["entry"][0]["resource"]) if a["extension"][0]["valuePositiveInt"] == 1]
    held = {e["fullUrl"]: e["resource"]["resourceType"] for e in inquired["entry"]}
    assert named and all(held[a["recipient"][0]["reference"]] == "Practitioner" for a in named)


def test_an_attachment_stating_improvement_certifies_that_line_only(client: TestClient) -> None:
    request = _request()
    response = _submit(client, request)["entry"][0]["resource"]
    number = f"{response['id']}-1"
    before = _items(response)
    sent = client.post("/fhir/$submit-attachment", content=json.dumps(_attachment(number, _member(request), IMPROVED)),
                       headers=auth(EHR))  # fmt: skip
    assert sent.status_code == 200, sent.text
    assert sent.headers["content-location"].endswith(f"ClaimResponse/{response['id']}/_history/2")
    after = client.get(f"/fhir/ClaimResponse/{response['id']}", headers=auth(EHR)).json()
    assert after["meta"]["versionId"] == "2"
    items = _items(after)
    assert review_action_code(items[1]["adjudication"]) == "A1"
    assert not any(e["url"] == ADMINISTRATION_REFERENCE for e in items[1]["extension"])
    assert items[2] == before[2]  # the MRI: unchanged, still asking
    assert set(asked_lines(after)) == {2}
    assert after["preAuthRef"] == response["id"]
    # the first line's review Task is cancelled; the MRI's stays open
    statuses = {sequence_of(t): t["status"] for t in _tasks(client, response)}
    assert statuses == {1: "cancelled", 2: "requested"}
    # the same submission again: the same version
    again = client.post("/fhir/$submit-attachment", content=json.dumps(_attachment(number, _member(request), IMPROVED)),
                        headers=auth(EHR))  # fmt: skip
    assert again.status_code == 200 and again.headers["content-location"].endswith("/_history/2")
    audited = [row for row in client.app.state.ctx.store.audit_log() if row[2] == "attachment"]  # type: ignore[attr-defined]
    assert [row[3] for row in audited] == [f"ClaimResponse/{response['id']}/_history/2"]


def test_an_attachment_stating_no_improvement_still_pends_with_the_quote(client: TestClient) -> None:
    request = _request()
    response = _submit(client, request)["entry"][0]["resource"]
    claim_id = request["entry"][0]["resource"]["identifier"][0]
    body = _attachment(claim_id["value"], _member(request), NOT_IMPROVED)
    body["parameter"][0]["valueIdentifier"] = claim_id  # the Claim's identifier tracks it too
    sent = client.post("/fhir/$submit-attachment", content=json.dumps(body), headers=auth(EHR))
    assert sent.status_code == 200, sent.text
    after = client.get(f"/fhir/ClaimResponse/{response['id']}", headers=auth(EHR)).json()
    items = _items(after)
    assert review_action_code(items[1]["adjudication"]) == "A4"
    recommended = next(e for e in items[1]["extension"] if "valueCodeableConcept" in e)
    assert recommended["valueCodeableConcept"]["coding"][0]["code"] == "A3"
    assert items[2] == _items(response)[2]
    open_tasks = [t for t in _tasks(client, response) if t["status"] == "requested" and sequence_of(t) == 1]
    assert len(open_tasks) == 1
    quotes = [i["valueString"] for i in open_tasks[0]["input"] if i["type"].get("text") == "evidence"]
    assert any("no functional improvement" in q for q in quotes), quotes
    due = information_due(datetime.fromisoformat(response["created"]), CALIFORNIA)
    # information received: due 5 business days from it, never later than 14 days from the request
    assert datetime.fromisoformat(open_tasks[0]["restriction"]["period"]["end"]) <= due


def test_a_wrong_member_id_is_refused_and_nothing_changes(client: TestClient) -> None:
    request = _request()
    response = _submit(client, request)["entry"][0]["resource"]
    wrong = {**_member(request), "value": "somebody-else"}
    sent = client.post(
        "/fhir/$submit-attachment",
        content=json.dumps(_attachment(f"{response['id']}-1", wrong, IMPROVED)),
        headers=auth(EHR),
    )
    assert sent.status_code == 422, sent.text
    assert sent.json()["issue"][0]["details"]["coding"][0]["code"] == "attachment-mismatch"
    after = client.get(f"/fhir/ClaimResponse/{response['id']}", headers=auth(EHR)).json()
    assert after == response
    # another provider, a decided line: refused too
    other = copy.deepcopy(_attachment(f"{response['id']}-1", _member(request), IMPROVED))
    other["parameter"][3]["valueIdentifier"]["value"] = "1999999992"
    assert client.post("/fhir/$submit-attachment", content=json.dumps(other), headers=auth(EHR)).status_code == 422
    unknown = _attachment(f"{uuid.uuid4()}-1", _member(request), IMPROVED)  # held for a request to come (202)
    assert client.post("/fhir/$submit-attachment", content=json.dumps(unknown), headers=auth(EHR)).status_code == 202
    no_text = _attachment(f"{response['id']}-1", _member(request), IMPROVED)
    no_text["parameter"][4]["part"][2]["resource"]["content"][0]["attachment"]["contentType"] = "application/pdf"
    assert client.post("/fhir/$submit-attachment", content=json.dumps(no_text), headers=auth(EHR)).status_code == 422
    assert client.get(f"/fhir/ClaimResponse/{response['id']}", headers=auth(EHR)).json() == response


def test_the_capability_statement_offers_submit_attachment(client: TestClient) -> None:
    rest = client.get("/fhir/metadata").json()["rest"][0]
    assert {"submit-attachment"} <= {o["name"] for o in rest.get("operation", [])}


def test_a_physicians_decision_withdraws_that_items_asks(client: TestClient) -> None:
    request = _request()
    response = _submit(client, request)["entry"][0]["resource"]
    task = next(t for t in _tasks(client, response) if sequence_of(t) == 1)
    decided = client.put(f"/fhir/Task/{task['id']}", content=json.dumps(_completed(task, "A1")), headers=auth(REVIEWER))
    assert decided.status_code == 200, decided.text
    after = client.get(f"/fhir/ClaimResponse/{response['id']}", headers=auth(EHR)).json()
    assert set(asked_lines(after)) == {2}
    assert not any(e["url"] == ADMINISTRATION_REFERENCE for e in _items(after)[1]["extension"])
    assert _items(after)[2] == _items(response)[2]


def test_a_claim_update_asks_again_for_changed_items_and_withdraws_cancelled_ones(client: TestClient) -> None:
    request = _request()
    response = _submit(client, request)["entry"][0]["resource"]
    changed = client.post("/fhir/Claim/$submit", content=json.dumps(_update(request, changed={1: {}})),
                          headers=auth(EHR))  # fmt: skip
    assert changed.status_code == 200, changed.text
    assert response_faults(changed.json(), request["entry"][0]["resource"]) == []
    again = changed.json()["entry"][0]["resource"]
    assert asked_lines(again) == asked_lines(response)
    ask = next(a for a in _asks(again) if a["extension"][0]["valuePositiveInt"] == 1)
    assert ask["identifier"][0]["value"] == f"{response['id']}-1"  # the item's own pend number, kept
    cancelled = client.post("/fhir/Claim/$submit", content=json.dumps(_update(request, cancelled=(1,))),
                            headers=auth(EHR)).json()["entry"][0]["resource"]  # fmt: skip
    assert set(asked_lines(cancelled)) == {2}


def test_a_pdf_note_counts_too(client: TestClient) -> None:
    request = _request()
    response = _submit(client, request)["entry"][0]["resource"]
    body = _attachment(f"{response['id']}-1", _member(request), IMPROVED)
    attachment = body["parameter"][4]["part"][2]["resource"]["content"][0]["attachment"]
    attachment.update(contentType="application/pdf", data=base64.b64encode(make_pdf(IMPROVED)).decode())
    sent = client.post("/fhir/$submit-attachment", content=json.dumps(body), headers=auth(EHR))
    assert sent.status_code == 200, sent.text
    after = client.get(f"/fhir/ClaimResponse/{response['id']}", headers=auth(EHR)).json()
    assert review_action_code(_items(after)[1]["adjudication"]) == "A1"


def _hostile(body: JSON) -> list[JSON]:
    """The same submission broken in one place each."""
    out = []
    changes: tuple[Callable[[JSON], object], ...] = (
        lambda b: b["parameter"].pop(0),  # no TrackingId
        lambda b: b["parameter"][1].update(valueCode="claim"),
        lambda b: b["parameter"].pop(3),  # no ProviderId nor OrganizationId
        lambda b: b["parameter"].pop(4),  # no Attachment
        lambda b: b["parameter"][4]["part"][0].update(valueString="first"),
        lambda b: b["parameter"][4]["part"][0].update(valueString="7"),  # not on the request
        lambda b: b["parameter"][4]["part"].pop(2),  # no Content
        lambda b: b["parameter"][4]["part"][2].update(resource={"resourceType": "Patient"}),
        lambda b: b["parameter"][4]["part"][2].update(resource={"resourceType": "QuestionnaireResponse",
                                                                "status": "completed"}),
        lambda b: b["parameter"].append(b["parameter"][0]),  # TrackingId twice
        lambda b: b.update(resourceType="Bundle", type="collection"),
    )  # fmt: skip
    for change in changes:
        broken = copy.deepcopy(body)
        change(broken)
        out.append(broken)
    return out


def test_a_broken_submission_is_refused_and_nothing_changes(client: TestClient) -> None:
    request = _request()
    response = _submit(client, request)["entry"][0]["resource"]
    for broken in _hostile(_attachment(f"{response['id']}-1", _member(request), IMPROVED)):
        sent = client.post("/fhir/$submit-attachment", content=json.dumps(broken), headers=auth(EHR))
        assert 400 <= sent.status_code < 500, (broken, sent.text)
        assert sent.json()["resourceType"] == "OperationOutcome"
    assert client.get(f"/fhir/ClaimResponse/{response['id']}", headers=auth(EHR)).json() == response


def _with_content(body: JSON, content: JSON) -> JSON:
    body["parameter"][4]["part"][2]["resource"] = content
    return body


def test_a_questionnaire_response_stating_improvement_certifies_that_line_only(client: TestClient) -> None:
    """The answers to a DTR questionnaire are facts for their line: functional improvement answered yes (with the
    record's words) certifies the physical therapy; the MRI is as it was."""
    request = _request()
    response = _submit(client, request)["entry"][0]["resource"]
    note = "Walking and sitting tolerance increased; she returned to modified work."
    body = _with_content(_attachment(f"{response['id']}-1", _member(request), IMPROVED),
                         answered("functional-improvement", {"functional_improvement": True}, note))  # fmt: skip
    sent = client.post("/fhir/$submit-attachment", content=json.dumps(body), headers=auth(EHR))
    assert sent.status_code == 200, sent.text
    after = client.get(f"/fhir/ClaimResponse/{response['id']}", headers=auth(EHR)).json()
    assert after["meta"]["versionId"] == "2"
    assert review_action_code(_items(after)[1]["adjudication"]) == "A1"
    assert _items(after)[2] == _items(response)[2]
    assert set(asked_lines(after)) == {2}
    evidence = json.dumps(_items(after)[1]["extension"])
    assert note in evidence and "QuestionnaireResponse/" in evidence and "#functional_improvement" in evidence


def test_a_questionnaire_response_stating_no_improvement_goes_to_the_physician_with_the_answer(
    client: TestClient,
) -> None:
    request = _request()
    response = _submit(client, request)["entry"][0]["resource"]
    body = _with_content(_attachment(f"{response['id']}-1", _member(request), IMPROVED),
                         answered("functional-improvement", {"functional_improvement": False}))  # fmt: skip
    assert client.post("/fhir/$submit-attachment", content=json.dumps(body), headers=auth(EHR)).status_code == 200
    after = client.get(f"/fhir/ClaimResponse/{response['id']}", headers=auth(EHR)).json()
    item = _items(after)[1]
    assert review_action_code(item["adjudication"]) == "A4"
    recommended = next(e for e in item["extension"] if "valueCodeableConcept" in e)
    assert recommended["valueCodeableConcept"]["coding"][0]["code"] == "A3"
    task = next(t for t in _tasks(client, response) if t["status"] == "requested" and sequence_of(t) == 1)
    quotes = [i["valueString"] for i in task["input"] if i["type"].get("text") == "evidence"]
    assert any("objective functional improvement" in q and "No." in q for q in quotes), quotes
    assert _items(after)[2] == _items(response)[2]


def test_a_bad_questionnaire_response_is_refused_and_nothing_is_kept(client: TestClient) -> None:
    request = _request()
    response = _submit(client, request)["entry"][0]["resource"]
    good = answered("functional-improvement", {"functional_improvement": True})
    unknown = {**good, "questionnaire": "http://payer.example/Questionnaire/other"}
    old_version = {**good, "questionnaire": f"{good['questionnaire'].partition('|')[0]}|0.0.1"}
    nameless = {k: v for k, v in good.items() if k != "questionnaire"}
    wrong_link = answered("functional-improvement", {"red_flags": True})
    wrong_type = answered("functional-improvement", {"functional_improvement": "yes"})
    twice = copy.deepcopy(good)
    twice["item"][0]["item"] *= 2
    nothing = answered("functional-improvement", {}, "a note alone states no fact")
    in_progress = {**good, "status": "in-progress"}
    too_long = answered("functional-improvement", {"functional_improvement": True}, "x" * (MAX_NOTE + 1))
    cases = [(unknown, "questionnaire-unknown"), (old_version, "questionnaire-unknown"),
             (nameless, "questionnaire-unknown"), (wrong_link, "questionnaire-answer-invalid"),
             (wrong_type, "questionnaire-answer-invalid"), (twice, "questionnaire-answer-invalid"),
             (nothing, "questionnaire-answer-invalid"), (in_progress, "questionnaire-answer-invalid"),
             (too_long, "input-limit")]  # fmt: skip
    for content, code in cases:
        for tracking in (f"{response['id']}-1", f"{uuid.uuid4()}-1"):  # a request known here, or one to come
            body = _with_content(_attachment(tracking, _member(request), IMPROVED), content)
            sent = client.post("/fhir/$submit-attachment", content=json.dumps(body), headers=auth(EHR))
            assert sent.status_code == (413 if code == "input-limit" else 422), (code, sent.text)
            assert sent.json()["issue"][0]["details"]["coding"][0]["code"] == code
    assert _store(client).held_attachments() == []
    assert client.get(f"/fhir/ClaimResponse/{response['id']}", headers=auth(EHR)).json() == response


def test_a_failure_between_the_attachment_and_the_new_version_keeps_neither(
    client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The attachment, the new version, its Tasks and its key are one transaction: the state failing before it
    commits (as a killed process) leaves the answer as it was, and the same submission sent again is decided."""
    from sqlalchemy.exc import OperationalError

    request = _request()
    response = _submit(client, request)["entry"][0]["resource"]
    body = json.dumps(_attachment(f"{response['id']}-1", _member(request), IMPROVED))

    def killed(*_: Any) -> None:
        raise OperationalError("INSERT", None, Exception("the connection was lost"))

    with monkeypatch.context() as patched:
        patched.setattr("adapter.service.state.answers.notify", killed)
        failed = client.post("/fhir/$submit-attachment", content=body, headers=auth(EHR))
    assert failed.status_code == 503, failed.text
    assert client.get(f"/fhir/ClaimResponse/{response['id']}", headers=auth(EHR)).json() == response
    assert {sequence_of(t): t["status"] for t in _tasks(client, response)} == {1: "requested", 2: "requested"}
    sent = client.post("/fhir/$submit-attachment", content=body, headers=auth(EHR))
    assert sent.status_code == 200 and sent.headers["content-location"].endswith("/_history/2")


def _claim_tracking(request: JSON, member: JSON, text: str) -> JSON:
    """A submission for the whole request, tracked by the Claim's identifier (no line named)."""
    submitted = _attachment("-", member, text, line=None)
    submitted["parameter"][0]["valueIdentifier"] = request["entry"][0]["resource"]["identifier"][0]
    return submitted


def _store(client: TestClient) -> Any:
    return client.app.state.ctx.store  # type: ignore[attr-defined]


def test_an_attachment_before_its_request_is_held_thenanswered(client: TestClient) -> None:
    """CDex scenario 1b: attachments whose tracking id names no request yet are accepted and held (202, an
    informational OperationOutcome), and decide the request once it comes; one whose member turns out not to be
    the request's is refused then, and changes nothing."""
    from adapter.service.attachments import answer_held

    request = _request()
    held = client.post("/fhir/$submit-attachment", content=json.dumps(_claim_tracking(request, _member(request),
                       IMPROVED)), headers=auth(EHR))  # fmt: skip
    assert held.status_code == 202, held.text
    assert held.json()["issue"][0]["severity"] == "information"
    response = _submit(client, request)["entry"][0]["resource"]
    assert review_action_code(_items(response)[1]["adjudication"]) == "A4"
    answer_held(_store(client), forward=False)
    after = client.get(f"/fhir/ClaimResponse/{response['id']}", headers=auth(EHR)).json()
    assert after["meta"]["versionId"] == "2"
    assert review_action_code(_items(after)[1]["adjudication"]) == "A1"
    assert _store(client).held_attachments() == []

    other = _request()
    wrong = {**_member(other), "value": "somebody-else"}
    assert client.post("/fhir/$submit-attachment", content=json.dumps(_claim_tracking(other, wrong, IMPROVED)),
                       headers=auth(EHR)).status_code == 202  # fmt: skip
    second = _submit(client, other)["entry"][0]["resource"]
    answer_held(_store(client), forward=False)
    assert client.get(f"/fhir/ClaimResponse/{second['id']}", headers=auth(EHR)).json() == second
    assert _store(client).held_attachments() == []  # refused, not held for ever


def test_an_attachment_kept_before_a_crash_is_answered_at_the_next_pass(client: TestClient) -> None:
    """A submission is kept before it is decided: one whose process stopped before the new version (kept, its key
    not recorded) is decided by the next pass, once."""
    from adapter.fhir.attachments import submission
    from adapter.service.attachments import answer_held, tracking_key

    request = _request()
    response = _submit(client, request)["entry"][0]["resource"]
    body = _attachment(f"{response['id']}-1", _member(request), IMPROVED)
    _store(client).hold_attachment("attachment:crashed", tracking_key(submission(body)), body)
    assert answer_held(_store(client), forward=False) == 1
    assert answer_held(_store(client), forward=False) == 0
    after = client.get(f"/fhir/ClaimResponse/{response['id']}", headers=auth(EHR)).json()
    assert after["meta"]["versionId"] == "2"
    assert review_action_code(_items(after)[1]["adjudication"]) == "A1"


def _supported(bundle: JSON, content: JSON, lines: tuple[int, ...]) -> JSON:
    """``bundle`` (a PAS request or update) with ``content`` in it, named by its Claim's supportingInfo
    (additionalInformation) and by the ``lines`` items' informationSequence."""
    claim = bundle["entry"][0]["resource"]
    url = f"urn:uuid:{uuid.uuid4()}"
    bundle["entry"].append({"fullUrl": url, "resource": content})
    info = copy.deepcopy(claim["supportingInfo"][0])  # what the request sent, its report type
    info["sequence"] = max(i["sequence"] for i in claim["supportingInfo"]) + 1
    info["valueReference"] = {"reference": url}
    claim["supportingInfo"].append(info)
    for item in claim["item"]:
        if item["sequence"] in lines:
            item.setdefault("informationSequence", []).append(info["sequence"])
    return bundle


def _dtr_bundle(answers: JSON) -> JSON:
    """DTR's QuestionnaireResponse Bundle (DTR-QRBundle): a collection whose first entry is the answers."""
    return {"resourceType": "Bundle", "type": "collection",
            "entry": [{"fullUrl": f"urn:uuid:{uuid.uuid4()}", "resource": answers}]}  # fmt: skip


def _carrying(request: JSON, text: str, *, lines: tuple[int, ...] = (1,), content: JSON | None = None) -> JSON:
    """A Claim update that changes no item but carries a progress note (supportingInfo additionalInformation,
    a DocumentReference in the Bundle; or ``content``) for ``lines``."""
    update = _update(request)
    note = content or {
        "resourceType": "DocumentReference", "id": f"note-{uuid.uuid4().hex[:8]}", "status": "current",
        "subject": update["entry"][0]["resource"]["patient"], "content": [{"attachment": {
            "contentType": "text/plain", "data": base64.b64encode(text.encode()).decode()}}],
    }  # fmt: skip
    return _supported(update, note, lines)


def test_a_claim_update_carrying_an_attachment_decides_its_line_again(client: TestClient) -> None:
    """Attachments in a Claim update (supportingInfo) answer the asks too: the line they name is determined
    again with them (A1 on improvement), the other line as it was."""
    request = _request()
    response = _submit(client, request)["entry"][0]["resource"]
    sent = client.post("/fhir/Claim/$submit", content=json.dumps(_carrying(request, IMPROVED)), headers=auth(EHR))
    assert sent.status_code == 200, sent.text
    after = sent.json()["entry"][0]["resource"]
    assert after["meta"]["versionId"] == "2"
    assert review_action_code(_items(after)[1]["adjudication"]) == "A1"
    assert _items(after)[2] == _items(response)[2]


@pytest.mark.parametrize("wrapped", [False, True], ids=["questionnaire-response", "dtr-bundle"])
def test_a_claim_update_carrying_a_questionnaire_response_decides_its_line_again(
    client: TestClient, wrapped: bool
) -> None:
    request = _request()
    response = _submit(client, request)["entry"][0]["resource"]
    answers = answered("functional-improvement", {"functional_improvement": True})
    carried = _carrying(request, "", content=_dtr_bundle(answers) if wrapped else answers)
    sent = client.post("/fhir/Claim/$submit", content=json.dumps(carried), headers=auth(EHR))
    assert sent.status_code == 200, sent.text
    after = sent.json()["entry"][0]["resource"]
    assert review_action_code(_items(after)[1]["adjudication"]) == "A1"
    assert _items(after)[2] == _items(response)[2]
    broken = answered("functional-improvement", {"no_such_question": True})
    refused = client.post("/fhir/Claim/$submit", content=json.dumps(_carrying(request, "", content=broken)),
                          headers=auth(EHR))  # fmt: skip
    assert refused.status_code == 422 and "questionnaire-answer-invalid" in refused.text


def _recommended(item: JSON) -> str | None:
    found = [e["valueCodeableConcept"]["coding"][0]["code"] for e in item["extension"] if "valueCodeableConcept" in e]
    return found[0] if found else None


@pytest.mark.parametrize("wrapped", [False, True], ids=["questionnaire-response", "dtr-bundle"])
def test_dtr_answers_sent_with_the_first_claim_are_facts_for_the_line_that_names_them(
    client: TestClient, wrapped: bool
) -> None:
    """DTR's answers handed to PAS in the first Claim (supportingInfo additionalInformation naming the
    QuestionnaireResponse, or DTR's QuestionnaireResponse Bundle; the item naming it in informationSequence) are
    read as an attachment's are: improvement answered yes certifies that line, quoted; the other line still asks.
    Named by the other line only, they are not this line's; answers that are not the questionnaire's are refused."""
    note = "Walking and sitting tolerance increased; she returned to modified work."
    answers = answered("functional-improvement", {"functional_improvement": True}, note)
    request = _supported(_request(), _dtr_bundle(answers) if wrapped else answers, (1,))
    response = _submit(client, request)["entry"][0]["resource"]
    items = _items(response)
    assert review_action_code(items[1]["adjudication"]) == "A1"
    evidence = json.dumps(items[1]["extension"])
    assert note in evidence and "#functional_improvement" in evidence
    assert review_action_code(items[2]["adjudication"]) == "A4" and set(asked_lines(response)) == {2}
    elsewhere = _submit(client, _supported(_request(), copy.deepcopy(answers), (2,)))["entry"][0]["resource"]
    assert review_action_code(_items(elsewhere)[1]["adjudication"]) == "A4" and set(asked_lines(elsewhere)) == {1, 2}
    broken = _supported(_request(), answered("functional-improvement", {"no_such_question": True}), (1,))
    refused = client.post("/fhir/Claim/$submit", content=json.dumps(broken), headers=auth(EHR))
    assert refused.status_code == 422 and "questionnaire-answer-invalid" in refused.text


def test_answers_sent_with_the_first_claim_count_at_every_later_decision_of_their_line(
    client: TestClient,
) -> None:
    """The first Claim's answers are kept with the request: its line decided again on an attachment still reads
    them (no improvement answered: still the physician's, the answer quoted)."""
    answers = answered("functional-improvement", {"functional_improvement": False})
    request = _supported(_request(), answers, (1,))
    response = _submit(client, request)["entry"][0]["resource"]
    assert (review_action_code(_items(response)[1]["adjudication"]), _recommended(_items(response)[1])) == ("A4", "A3")
    body = _attachment(f"{response['id']}-1", _member(request), "Progress note. Low back pain, 5/10 today.")
    assert client.post("/fhir/$submit-attachment", content=json.dumps(body), headers=auth(EHR)).status_code == 200
    after = client.get(f"/fhir/ClaimResponse/{response['id']}", headers=auth(EHR)).json()
    assert after["meta"]["versionId"] == "2" and _recommended(_items(after)[1]) == "A3"
    task = next(t for t in _tasks(client, response) if t["status"] == "requested" and sequence_of(t) == 1)
    quotes = [i["valueString"] for i in task["input"] if i["type"].get("text") == "evidence"]
    assert any("objective functional improvement" in q and "No." in q for q in quotes), quotes


def test_the_review_page_says_which_items_wait_for_documentation_asked_and_not_received(client: TestClient) -> None:
    """An item waiting for documentation says on the review page when it was asked and that it has not come; once
    an attachment has decided it again (here: no improvement, an adverse recommendation for the physician), it
    waits no more."""
    from tests.test_reviewers import ADA, add_reviewer, sign_in

    add_reviewer(_store(client))
    assert sign_in(client, ADA).status_code == 303
    request = _request()
    response = _submit(client, request)["entry"][0]["resource"]
    waiting = (
        f"Documentation asked on {datetime.fromisoformat(response['created']).strftime('%d %b %Y')}, not received."
    )
    page = client.get(f"/review/cases/{response['id']}").text
    assert page.count(waiting) == len(asked_lines(response)) == 2
    # and what is missing, each criterion with its question, as the asks name them
    asked = [r["text"] for a in _asks(response) for r in a["reasonCode"]]
    assert page.count("Documentation still missing") == 2 and all(f"{c}: " in page for c in asked), asked
    body = json.dumps(_attachment(f"{response['id']}-1", _member(request), NOT_IMPROVED))
    assert client.post("/fhir/$submit-attachment", content=body, headers=auth(EHR)).status_code == 200
    assert client.get(f"/review/cases/{response['id']}").text.count(waiting) == 1  # the MRI's line still waits


def test_a_claim_update_reads_the_first_claims_answers_only_for_the_items_that_name_them(client: TestClient) -> None:
    """Answers the first Claim names for the physical therapy alone are not the MRI's when an update changes only
    the MRI (the items not determined again take what supports them alone with them): it still asks for the
    neurologic examination."""
    exam = answered("neurologic-deficit", {"neurologic_deficit": True}, "Absent left ankle reflex.")
    request = _supported(_request(), exam, (1,))
    response = _submit(client, request)["entry"][0]["resource"]

    def asked_for_mri(answer: JSON) -> list[str]:
        return [r["text"] for a in _asks(answer) if a["extension"][0]["valuePositiveInt"] == 2 for r in a["reasonCode"]]

    assert "neurologic-deficit" in asked_for_mri(response)
    update = client.post("/fhir/Claim/$submit", content=json.dumps(_update(request, changed={2: {}})),
                         headers=auth(EHR))  # fmt: skip
    assert update.status_code == 200, update.text
    assert "neurologic-deficit" in asked_for_mri(update.json()["entry"][0]["resource"])
