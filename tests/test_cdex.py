"""Documentation asked of the EHR the Da Vinci CDex way (adapter/fhir/cdex.py, adapter/service/cdex.py), on a fake
EHR behind pytest-httpx: a pended line whose criteria have the adapter's DTR questionnaires is asked twice, with the
attachment-request Task and with a Task of its own by questionnaire (CDex 2.1 cdex-task-attachment-request: ``code``
attachment-request-questionnaire, ``QuestionnaireContext`` inputs and never ``AttachmentsNeeded``, cdex-5 and
cdex-6), under the same conventions (tracking id, payer url, purpose of use, deadline, member and provider); the
worker follows it, reads a completed one's QuestionnaireResponse as facts, and cancels the other Task once the line
is decided; a submission that arrives for a request already closed is refused, not held for good."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import httpx
import pytest
from fhir.resources.R4B.task import Task
from pytest_httpx import HTTPXMock

from adapter.config import RetrySettings
from adapter.determination.documentation import DOCUMENTATION, Need
from adapter.exchange import FHIRClient
from adapter.fhir.attachments import TRACKING_SYSTEM, submission
from adapter.fhir.cdex import (
    ADMIN_REF_SYSTEM,
    BY_QUESTIONNAIRE,
    CDEX_TEMP,
    PA_LINE_NUMBER,
    PAS_TEMP,
    asked_questionnaires,
    questionnaire_tracking,
)
from adapter.fhir.pas import review_action_code, review_number
from adapter.fhir.questionnaires import questionnaire
from adapter.fhir.schema import schema_valid
from adapter.review.policy import DEFAULT_POLICY
from adapter.service.attachments import AttachmentMismatchError, receive
from adapter.service.state import Store
from adapter.service.worker import SyncWorker
from adapter.tables import mappings
from tests.test_attachments import IMPROVED, _attachment
from tests.test_questionnaires import answered
from tests.test_worker import EHR, FakeEHR

JSON = dict[str, Any]
SUBMIT = "http://adapter.test/fhir/$submit-attachment"
NPI = "http://hl7.org/fhir/sid/us-npi"
MEMBER_TYPE = {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v2-0203", "code": "MB"}]}


class TaskEHR(FakeEHR):
    """The worker's fake EHR with one physical therapy request (six visits had for low back pain since seven weeks,
    nothing on function) by a practitioner with an NPI for a patient with a member id, that keeps the Tasks written
    to it."""

    def __init__(self) -> None:
        super().__init__()
        self.requests = [{
            "resourceType": "ServiceRequest", "id": "sr1", "status": "active", "intent": "order",
            "meta": {"versionId": "1", "lastUpdated": "2026-11-01T10:00:00Z"}, "authoredOn": "2026-11-01",
            "subject": {"reference": "Patient/a"}, "requester": {"reference": "Practitioner/doc"},
            "code": {"text": "Physical therapy for the lumbar spine, 6 visits"},
            "note": [{"text": "A 41 year old female with low back pain after an industrial injury. She has had six "
                              "sessions of physical therapy."}],
        }]  # fmt: skip
        self.patients = {"a": {"resourceType": "Patient", "id": "a", "gender": "female",
                               "identifier": [{"system": "urn:test:member", "value": "M-1"}]}}  # fmt: skip
        self.conditions = [{"resourceType": "Condition", "id": "c1", "subject": {"reference": "Patient/a"},
                            "code": {"text": "Low back pain"}, "onsetDateTime": "2026-09-13"}]  # fmt: skip
        self.kept: dict[tuple[str, str], JSON] = {
            ("Practitioner", "doc"): {
                "resourceType": "Practitioner",
                "id": "doc",
                "identifier": [{"system": NPI, "value": "1234567893"}],
            },  # fmt: skip
            ("Patient", "a"): self.patients["a"],
            ("ServiceRequest", "sr1"): self.requests[0],
        }
        #: The patient's coverage, whose member number (type MB) is not on the Patient.
        member = {"type": MEMBER_TYPE, "system": "urn:test:payer-member", "value": "W-77"}
        self.coverages = [{"resourceType": "Coverage", "id": "cov1", "status": "active", "identifier": [member],
                           "beneficiary": {"reference": "Patient/a"}, "payor": [{"display": "Insurer"}]}]  # fmt: skip
        self.tasks: dict[str, JSON] = {}

    def search(self, rtype: str, params: dict[str, list[str]]) -> dict[str, Any]:
        if rtype != "Coverage":
            return super().search(rtype, params)
        found = [c for c in self.coverages if c["beneficiary"]["reference"] in params["beneficiary"]]
        return {"resourceType": "Bundle", "type": "searchset",
                "entry": [{"resource": c, "search": {"mode": "match"}} for c in found]}  # fmt: skip

    def task(self, tracking: str) -> JSON:
        """The Task on the EHR with this tracking id."""
        return self.tasks[tracking]

    def __call__(self, request: httpx.Request) -> httpx.Response:
        path = request.url.path.removeprefix("/fhir").strip("/")
        if request.method == "PUT" and path == "Task":  # conditional update on the tracking id
            identifier = parse_qs(request.url.query.decode())["identifier"][0]
            task = json.loads(request.content)
            tracking = identifier.rpartition("|")[2]
            found = self.tasks.get(tracking)
            task["id"] = found["id"] if found else f"t{len(self.tasks) + 1}"
            self.tasks[tracking] = task
            self.kept[("Task", task["id"])] = task
            return httpx.Response(200 if found else 201, json=task)
        if request.method == "PUT" and path.startswith("Task/"):
            task = json.loads(request.content)
            self.tasks[task["identifier"][0]["value"]] = task
            self.kept[("Task", task["id"])] = task
            return httpx.Response(200, json=task)
        if request.method == "GET" and re.fullmatch(r"[A-Za-z]+/[^/]+", path):
            found = self.kept.get(tuple(path.split("/")))  # type: ignore[arg-type]
            if found is None:
                return httpx.Response(404, json={"resourceType": "OperationOutcome", "issue": []})
            return httpx.Response(200, json=found)
        return super().__call__(request)


@pytest.fixture
def fake(httpx_mock: HTTPXMock) -> TaskEHR:
    ehr = TaskEHR()
    httpx_mock.add_callback(ehr, url=re.compile(f"{re.escape(EHR)}.*"), is_reusable=True)
    return ehr


@pytest.fixture
def worker(tmp_path: Path, fake: TaskEHR) -> SyncWorker:
    client = FHIRClient(EHR, retry=RetrySettings(attempts=1))
    return SyncWorker(
        Store(f"sqlite:///{tmp_path}/w.db"), client, None, forward=False, policy=DEFAULT_POLICY, attachment_url=SUBMIT
    )


def _codes(task: JSON, kind: str) -> list[JSON]:
    return [i for i in task["input"] if i["type"]["coding"][0]["code"] == kind]


def _answer(store: Store) -> JSON:
    found: list[JSON] = store.search(count=10)[1]
    assert len(found) == 1
    return found[0]


def test_a_line_with_questionnaires_is_also_asked_by_questionnaire_in_a_task_of_its_own(
    worker: SyncWorker, fake: TaskEHR
) -> None:
    worker.run_once()
    answer = _answer(worker.store)
    assert review_action_code(answer["item"][0]["adjudication"]) == "A4"
    tracking = f"{answer['id']}-1"
    assert set(fake.tasks) == {tracking, questionnaire_tracking(tracking)}
    by_code, by_questionnaire = fake.task(tracking), fake.task(questionnaire_tracking(tracking))
    for task in (by_code, by_questionnaire):
        assert schema_valid(task)
        Task.model_validate(task)
    assert by_questionnaire["code"] == {"coding": [{"system": PAS_TEMP, "code": BY_QUESTIONNAIRE}]}
    # cdex-5: one QuestionnaireContext input or more; cdex-6: never beside AttachmentsNeeded
    asked = _codes(by_questionnaire, "questionnaire-context")
    assert asked and not _codes(by_questionnaire, "attachments-needed")
    wanted = questionnaire("functional-improvement")
    assert wanted is not None
    first = asked[0]
    assert first["type"] == {"coding": [{"system": PAS_TEMP, "code": "questionnaire-context"}]}
    assert first["valueCanonical"] == wanted["url"]
    assert first["_valueCanonical"]["extension"][0]["valueString"] == wanted["title"]
    assert first["extension"] == [{"url": PA_LINE_NUMBER, "valueInteger": 1}]
    criteria = mappings()[DOCUMENTATION].criteria  # those the line asks for, by their questions
    named = [
        c
        for note in by_code["note"]
        for c, criterion in criteria.items()
        if note["text"].startswith(criterion.question)
    ]
    assert [i["valueCanonical"] for i in asked] == [q["url"] for c in named if (q := questionnaire(c))]
    assert len(by_questionnaire["note"]) == len(asked)
    # the same conventions as the attachment-request Task: payer url, purpose of use, deadline, parties, reason
    assert _codes(by_questionnaire, "payer-url") == _codes(by_code, "payer-url") == [
        {"type": {"coding": [{"system": PAS_TEMP, "code": "payer-url"}]}, "valueUrl": SUBMIT}]  # fmt: skip
    assert _codes(by_questionnaire, "purpose-of-use") == _codes(by_code, "purpose-of-use")
    assert _codes(by_code, "purpose-of-use")[0]["valueCodeableConcept"]["coding"][0]["code"] == "COVAUTH"
    for same in ("meta", "contained", "status", "intent", "for", "owner", "requester", "reasonCode",
                 "reasonReference", "restriction", "authoredOn"):  # fmt: skip
        assert by_questionnaire[same] == by_code[same], same
    assert by_questionnaire["identifier"][0] == {**by_code["identifier"][0], "value": questionnaire_tracking(tracking)}
    assert by_code["identifier"][0]["system"] == TRACKING_SYSTEM
    # both name the pended item's number (identifier:AdminRefNumber), under a system of its own: a search by
    # tracking id finds one Task
    admin_ref = {"type": {"coding": [{"system": CDEX_TEMP, "code": "admin-ref-number",
                                      "display": "Administrative Reference Number"}]},
                 "system": ADMIN_REF_SYSTEM, "value": review_number(answer["item"][0])}  # fmt: skip
    assert admin_ref["value"] == tracking and by_code["identifier"][1:] == by_questionnaire["identifier"][1:] == [
        admin_ref]  # fmt: skip
    contained = {c["resourceType"]: c for c in by_questionnaire["contained"]}
    # the member number its coverage has (cdex-patient-demographics identifier:mb), beside the Patient's own
    assert contained["Patient"]["identifier"] == fake.patients["a"]["identifier"] + fake.coverages[0]["identifier"]
    assert contained["PractitionerRole"]["practitioner"]["identifier"] == {"system": NPI, "value": "1234567893"}
    assert [(a.tracking, a.status) for a in worker.store.attachment_requests()] == [
        (tracking, "requested"), (questionnaire_tracking(tracking), "requested")]  # fmt: skip
    worker.run_once()  # nothing answered: nothing asked twice, nothing changed
    assert len(fake.tasks) == 2 and _answer(worker.store) == answer
    # a submission naming the member by that number is the request's (held for the worker); another is refused
    member = {k: fake.coverages[0]["identifier"][0][k] for k in ("system", "value")}
    posted = _attachment(tracking, member, IMPROVED)
    assert receive(worker.store, submission(posted), posted, "attachment:member", forward=False).held
    stranger = _attachment(tracking, {**member, "value": "W-78"}, IMPROVED)
    with pytest.raises(AttachmentMismatchError):
        receive(worker.store, submission(stranger), stranger, "attachment:stranger", forward=False)


def _submitted(tracking: str, content: JSON) -> JSON:
    """A ``$submit-attachment`` for line 1 of ``tracking`` by the request's member and provider, with ``content``."""
    body = _attachment(tracking, {"system": "urn:test:member", "value": "M-1"}, IMPROVED)
    part = next(p for p in body["parameter"] if p["name"] == "Attachment")
    part["part"] = [p if p["name"] != "Content" else {"name": "Content", "resource": content} for p in part["part"]]
    return body


def test_a_completed_questionnaire_task_is_read_as_facts_and_the_other_task_is_cancelled(
    worker: SyncWorker, fake: TaskEHR
) -> None:
    """DTR keeps the QuestionnaireResponse on the EHR and the Task names it as its output; the provider also posts
    it to $submit-attachment (CDex steps 5 and 6): the line is decided again once, from the answers, the
    attachment-request Task of the decided line is cancelled, and the submission is refused, not held for good."""
    worker.run_once()
    first = _answer(worker.store)
    tracking = questionnaire_tracking(f"{first['id']}-1")
    note = "Sitting tolerance rose from 20 to 60 minutes; she returned to modified duty."
    response = {**answered("functional-improvement", {"functional_improvement": True}, note), "id": "qr1"}
    fake.kept[("QuestionnaireResponse", "qr1")] = response
    posted = _submitted(tracking, response)
    held = receive(worker.store, submission(posted), posted, "attachment:posted", forward=False)
    assert held.response is None and held.held
    asked = fake.task(tracking)
    output = {"type": {"coding": [{"system": PAS_TEMP, "code": "questionnaire-context"}]},
              "valueReference": {"reference": "QuestionnaireResponse/qr1"}}  # fmt: skip
    fake.tasks[tracking] = fake.kept[("Task", asked["id"])] = {**asked, "status": "completed", "output": [output]}

    worker.run_once()
    after = _answer(worker.store)
    assert after["meta"]["versionId"] == "2"
    assert review_action_code(after["item"][0]["adjudication"]) == "A1"
    assert note in str(after["item"][0]["extension"])  # the answer quoted as the evidence
    assert worker.store.held_attachments() == []  # the same answers again: refused, audited
    worker.run_once()  # the attachment-request Task of the decided line is withdrawn on the EHR
    by_code = fake.task(f"{first['id']}-1")
    assert by_code["status"] == "cancelled" and by_code["statusReason"] == {"text": "the item was decided"}
    statuses = [(a.tracking, a.status) for a in worker.store.attachment_requests()]
    assert sorted(statuses) == [(f"{first['id']}-1", "cancelled"), (tracking, "answered")]
    assert _answer(worker.store)["meta"]["versionId"] == "2"


def test_a_questionnaire_task_the_ehr_cancels_closes_it_and_leaves_the_other_open(
    worker: SyncWorker, fake: TaskEHR
) -> None:
    worker.run_once()
    first = _answer(worker.store)
    tracking = questionnaire_tracking(f"{first['id']}-1")
    asked = fake.task(tracking)
    fake.kept[("Task", asked["id"])] = {**asked, "status": "cancelled", "statusReason": {"text": "no DTR here"}}
    worker.run_once()
    statuses = dict((a.tracking, a.status) for a in worker.store.attachment_requests())
    assert statuses == {f"{first['id']}-1": "requested", tracking: "cancelled"}
    assert _answer(worker.store) == first


def test_criteria_without_questions_are_asked_for_as_documents_only() -> None:
    """A criterion that names no facts (what the treatment plan is) has no questionnaire: a line that lacks only
    it gets no questionnaire Task."""
    assert questionnaire("treatment-plan") is None
    criterion = mappings()[DOCUMENTATION].criteria["treatment-plan"]
    only = Need(criterion="treatment-plan", facts=criterion.facts, loinc=criterion.loinc, question=criterion.question,
                citation=criterion.guideline)  # fmt: skip
    assert asked_questionnaires([only]) == []
