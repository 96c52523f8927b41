"""Documentation asked of the EHR the Da Vinci CDex way, against the sandbox EHR: the worker pends a physical
therapy request whose records say nothing on function, asks with a CDex attachment-request Task (the LOINC code
for its line, the member, the provider, where to answer, by when) and with one by questionnaire (the adapter's
DTR questionnaire for what the line lacks), follows them, and decides the line again when the EHR completes one
with a note (a DocumentReference or a Binary) or with the answers to the questionnaire (a QuestionnaireResponse
on the EHR, read as facts), withdrawing the other; a Task the EHR fails closes the request and
changes nothing; a ``$submit-attachment`` for the Task's tracking id is held by the service and decided by
the worker."""

from __future__ import annotations

import base64
import uuid
from collections.abc import Iterator
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from adapter.exchange import FHIRClient
from adapter.fhir.attachments import TRACKING_SYSTEM, submission
from adapter.fhir.cdex import PA_LINE_NUMBER, PROFILE, questionnaire_tracking
from adapter.fhir.pas import REQUEST_RESOURCES, review_action_code
from adapter.fhir.questionnaires import questionnaire
from adapter.review.policy import DEFAULT_POLICY
from adapter.review.tasks import due_of
from adapter.service.attachments import AttachmentMismatchError, receive
from adapter.service.state import Store
from adapter.service.worker import SyncWorker, cursor_name
from tests.test_attachments import IMPROVED, NOT_IMPROVED, _attachment
from tests.test_questionnaires import answered

JSON = dict[str, Any]
NPI = "http://hl7.org/fhir/sid/us-npi"
SUBMIT = "http://127.0.0.1:8080/fhir/$submit-attachment"


@pytest.fixture
def ehr(ehr_url: str) -> Iterator[FHIRClient]:
    with FHIRClient(ehr_url) as client:
        yield client


@pytest.fixture
def worker(tmp_path: Path, ehr: FHIRClient) -> Iterator[SyncWorker]:
    """A worker on a fresh state that reads the EHR's requests from now on (not the shared sandbox's past)."""
    store = Store(f"sqlite:///{tmp_path}/state.db")
    marker = ehr.create({"resourceType": "Basic", "code": {"text": "cursor marker"}}).resource
    for rtype in REQUEST_RESOURCES:
        store.set_cursor(cursor_name(rtype), marker["meta"]["lastUpdated"])
    with SyncWorker(store, ehr, None, forward=False, policy=DEFAULT_POLICY, attachment_url=SUBMIT) as running:
        yield running
    store.close()


def _pt_request(ehr: FHIRClient) -> tuple[JSON, JSON]:
    """A patient with a member id and low back pain since seven weeks, and a physical therapy request (six visits
    had, nothing on function) by a practitioner with an NPI, on the EHR."""
    member = f"M-{uuid.uuid4().hex[:10]}"
    patient = ehr.create({"resourceType": "Patient", "gender": "female", "name": [{"family": "Synthetic"}],
                          "identifier": [{"system": "urn:test:member", "value": member}]}).resource  # fmt: skip
    doctor = ehr.create({"resourceType": "Practitioner", "identifier": [{"system": NPI, "value": "1234567893"}]})
    today = date.today()
    onset = (today - timedelta(weeks=7)).isoformat()
    ehr.create({"resourceType": "Condition", "subject": {"reference": f"Patient/{patient['id']}"},
                "code": {"text": "Low back pain"}, "onsetDateTime": onset})  # fmt: skip
    request = ehr.create({
        "resourceType": "ServiceRequest", "status": "active", "intent": "order", "authoredOn": today.isoformat(),
        "subject": {"reference": f"Patient/{patient['id']}"},
        "requester": {"reference": f"Practitioner/{doctor.resource['id']}"},
        "code": {"text": "Physical therapy for the lumbar spine, 6 visits"},
        "note": [{"text": "A 41 year old female with low back pain after an industrial injury. She has had six "
                          "sessions of physical therapy."}],
    }).resource  # fmt: skip
    return patient, request


def _answer(store: Store, request: JSON) -> JSON:
    found = store.search(count=100)[1]
    answers: list[JSON] = [r for r in found if f"ServiceRequest/{request['id']}" in str(r.get("item"))]
    assert len(answers) == 1
    return answers[0]


def _asked(ehr: FHIRClient, tracking: str) -> JSON:
    tasks = list(ehr.search("Task", {"identifier": f"{TRACKING_SYSTEM}|{tracking}"}))
    assert len(tasks) == 1
    task: JSON = tasks[0]
    return task


def _note(ehr: FHIRClient, patient: JSON, text: str) -> JSON:
    content = [{"attachment": {"contentType": "text/plain", "data": base64.b64encode(text.encode()).decode()}}]
    note: JSON = ehr.create({"resourceType": "DocumentReference", "status": "current", "content": content,
                             "subject": {"reference": f"Patient/{patient['id']}"}}).resource  # fmt: skip
    return note


def _complete(ehr: FHIRClient, task: JSON, output: str) -> None:
    done = {**task, "status": "completed", "output": [{"type": task["input"][0]["type"],
                                                       "valueReference": {"reference": output}}]}  # fmt: skip
    ehr.update(done)


def test_the_worker_asks_the_ehr_and_decides_again_when_the_task_is_completed(
    worker: SyncWorker, ehr: FHIRClient
) -> None:
    patient, request = _pt_request(ehr)
    member = {"type": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v2-0203", "code": "MB"}]},
              "system": "urn:test:payer-member", "value": f"W-{patient['id']}"}  # fmt: skip
    beneficiary = {"reference": f"Patient/{patient['id']}"}
    ehr.create({"resourceType": "Coverage", "status": "active", "identifier": [member], "beneficiary": beneficiary,
                "payor": [{"display": "Insurer"}]})  # fmt: skip
    worker.run_once()
    first = _answer(worker.store, request)
    assert review_action_code(first["item"][0]["adjudication"]) == "A4"
    tracking = f"{first['id']}-1"
    task = _asked(ehr, tracking)
    assert task["meta"]["profile"] == [PROFILE] and task["status"] == "requested" and task["intent"] == "order"
    assert task["code"]["coding"][0]["code"] == "attachment-request-code"
    needed = [i for i in task["input"] if i["type"]["coding"][0]["code"] == "attachments-needed"]
    assert needed[0]["valueCodeableConcept"]["coding"][0]["code"] == "47420-5"  # functional status assessment
    assert needed[0]["extension"] == [{"url": PA_LINE_NUMBER, "valueInteger": 1}]
    assert {"type": {"coding": [{"system": "http://hl7.org/fhir/us/davinci-pas/CodeSystem/PASTempCodes",
                                 "code": "payer-url"}]}, "valueUrl": SUBMIT} in task["input"]  # fmt: skip
    contained = {c["resourceType"]: c for c in task["contained"]}
    # the member number its coverage on the EHR has (cdex-patient-demographics identifier:mb)
    assert contained["Patient"]["identifier"] == patient["identifier"] + [member]
    assert contained["PractitionerRole"]["practitioner"]["identifier"]["value"] == "1234567893"
    assert task["restriction"]["period"]["end"] > first["created"]
    reviews = worker.store.search_tasks(focus=f"ServiceRequest/{request['id']}", status=["requested"])[1]
    asked_by = datetime.fromisoformat(task["restriction"]["period"]["end"])
    assert [due_of(r, DEFAULT_POLICY) for r in reviews] == [asked_by]

    worker.run_once()  # nothing answered yet: nothing changes, nothing asked twice
    assert _answer(worker.store, request) == first
    _asked(ehr, tracking)

    _complete(ehr, task, f"DocumentReference/{_note(ehr, patient, IMPROVED)['id']}")
    worker.run_once()
    after = _answer(worker.store, request)
    assert after["meta"]["versionId"] == "2"
    assert review_action_code(after["item"][0]["adjudication"]) == "A1"
    statuses = {a.tracking: a.status for a in worker.store.attachment_requests()}  # the line's other Task withdrawn
    assert statuses == {tracking: "answered", questionnaire_tracking(tracking): "cancelled"}
    assert _asked(ehr, questionnaire_tracking(tracking))["status"] == "cancelled"
    worker.run_once()  # answered once
    assert _answer(worker.store, request)["meta"]["versionId"] == "2"


def test_a_binary_output_is_read_and_a_failed_task_changes_nothing(worker: SyncWorker, ehr: FHIRClient) -> None:
    patient, request = _pt_request(ehr)
    other_patient, failing = _pt_request(ehr)
    worker.run_once()
    first, second = _answer(worker.store, request), _answer(worker.store, failing)
    binary = ehr.create({"resourceType": "Binary", "contentType": "text/plain",
                         "data": base64.b64encode(NOT_IMPROVED.encode()).decode()}).resource  # fmt: skip
    _complete(ehr, _asked(ehr, f"{first['id']}-1"), f"Binary/{binary['id']}")
    failed = {**_asked(ehr, f"{second['id']}-1"), "status": "failed", "statusReason": {"text": "no such records"}}
    ehr.update(failed)
    worker.run_once()
    after = _answer(worker.store, request)
    assert after["meta"]["versionId"] == "2"  # decided again: no improvement is stated, still pended
    assert review_action_code(after["item"][0]["adjudication"]) == "A4"
    assert _answer(worker.store, failing) == second
    statuses = {a.tracking: a.status for a in worker.store.attachment_requests()}
    assert statuses == {
        f"{first['id']}-1": "answered",
        f"{second['id']}-1": "failed",  # still pended: asked still
        f"{first['id']}-1-questionnaire": "requested",
        f"{second['id']}-1-questionnaire": "requested",
    }


def test_the_questionnaire_task_completed_with_answers_on_the_ehr_decides_the_line_again(
    worker: SyncWorker, ehr: FHIRClient
) -> None:
    """The line lacks what a DTR questionnaire asks (functional improvement): beside the attachment-request Task
    the worker posts one by questionnaire (CDex: code attachment-request-questionnaire, QuestionnaireContext
    inputs, no AttachmentsNeeded), which the EHR keeps as it is. The EHR completes it with the answers it keeps
    (its output the QuestionnaireResponse): the worker reads them from the EHR as facts, the line is certified
    with the answer as its evidence, and the attachment-request Task of the decided line is cancelled."""
    patient, request = _pt_request(ehr)
    worker.run_once()
    first = _answer(worker.store, request)
    tracking = f"{first['id']}-1"
    by_code, asked = _asked(ehr, tracking), _asked(ehr, questionnaire_tracking(tracking))
    assert asked["code"]["coding"][0]["code"] == "attachment-request-questionnaire"
    types = [i["type"]["coding"][0]["code"] for i in asked["input"]]
    assert "attachments-needed" not in types and types[-2:] == ["payer-url", "purpose-of-use"]
    contexts = [i for i in asked["input"] if i["type"]["coding"][0]["code"] == "questionnaire-context"]
    wanted = questionnaire("functional-improvement")
    assert wanted is not None and contexts[0]["valueCanonical"] == wanted["url"]
    assert contexts[0]["extension"] == [{"url": PA_LINE_NUMBER, "valueInteger": 1}]
    for same in ("contained", "restriction", "reasonCode", "reasonReference", "requester", "owner", "for"):
        assert asked[same] == by_code[same], same
    assert asked["meta"]["profile"] == [PROFILE]

    note = "Sitting tolerance rose from 20 to 60 minutes; she returned to modified duty."
    response = answered("functional-improvement", {"functional_improvement": True}, note)
    kept = ehr.create({**response, "subject": {"reference": f"Patient/{patient['id']}"}}).resource
    _complete(ehr, asked, f"QuestionnaireResponse/{kept['id']}")
    worker.run_once()
    after = _answer(worker.store, request)
    assert after["meta"]["versionId"] == "2"
    assert review_action_code(after["item"][0]["adjudication"]) == "A1"
    assert note in str(after["item"][0]["extension"])
    worker.run_once()
    statuses = {a.tracking: a.status for a in worker.store.attachment_requests()}
    assert statuses == {tracking: "cancelled", questionnaire_tracking(tracking): "answered"}
    assert _asked(ehr, tracking)["status"] == "cancelled"


def test_a_submission_for_the_tasks_tracking_id_is_held_and_decided_by_the_worker(
    worker: SyncWorker, ehr: FHIRClient
) -> None:
    patient, request = _pt_request(ehr)
    worker.run_once()
    first = _answer(worker.store, request)
    member = patient["identifier"][0]
    wrong = _attachment(f"{first['id']}-1", {**member, "value": "somebody-else"}, IMPROVED)
    with pytest.raises(AttachmentMismatchError, match="MemberId"):
        receive(worker.store, submission(wrong), wrong, "attachment:wrong", forward=False)
    body = _attachment(f"{first['id']}-1", member, IMPROVED)
    held = receive(worker.store, submission(body), body, "attachment:held", forward=False)
    assert held.response is None and held.held
    worker.run_once()
    after = _answer(worker.store, request)
    assert after["meta"]["versionId"] == "2"
    assert review_action_code(after["item"][0]["adjudication"]) == "A1"
    assert worker.store.held_attachments() == []
