"""The case a reviewer reads (adapter.review.cases) and what a physician does to an open review Task short of
deciding it (adapter.review.revisions): a draft, a peer-to-peer note, a hand-off, asking for documentation."""

from __future__ import annotations

import base64
from datetime import UTC, date, datetime
from typing import Any

import pytest

from adapter.actions import ReviewAction
from adapter.errors import ReviewDecisionError
from adapter.fhir.attachments import asked_lines
from adapter.review.cases import service_key
from adapter.review.policy import DEFAULT_POLICY
from adapter.review.revisions import Draft, ask_documentation, draft_of, hand_off, note_call, save_draft
from adapter.review.tasks import apply_decision, due_of, read_decision
from adapter.service.pipeline import decide

NOTE = (
    "Follow-up visit 2026-11-18. The patient reports low back pain radiating to the right leg since the fall at\n"
    "work. Numbness in the right foot.\n"
    "Examination: Straight leg raise is positive on the right. Reflexes diminished at the right ankle.\n"
    "Plan: MRI of the lumbar spine; continue naproxen."
)


def _entry(resource: dict[str, Any]) -> dict[str, Any]:
    return {"fullUrl": f"{resource['resourceType']}/{resource['id']}", "resource": resource}


def context_bundle() -> dict[str, Any]:
    """A request with what an EHR knows of the patient: coded diagnoses, therapy given, a drug taken, a note."""
    patient = {"reference": "Patient/w1"}
    resources: list[dict[str, Any]] = [
        {"resourceType": "ServiceRequest", "id": "mri", "status": "active", "intent": "order", "subject": patient,
         "authoredOn": "2026-11-20", "code": {"coding": [{"system": "http://www.ama-assn.org/go/cpt", "code": "72148"}],
                                             "text": "MRI lumbar spine without contrast"}},
        {"resourceType": "Patient", "id": "w1", "gender": "female", "birthDate": "1979-03-02",
         "identifier": [{"system": "urn:example:payer:member", "value": "WC-77"}]},
        {"resourceType": "Condition", "id": "c1", "subject": patient, "onsetDateTime": "2026-08-11",
         "code": {"coding": [{"system": "http://hl7.org/fhir/sid/icd-10-cm", "code": "M54.16"}],
                  "text": "Lumbar radiculopathy"}},
        {"resourceType": "Procedure", "id": "p1", "status": "completed", "subject": patient,
         "performedDateTime": "2026-10-01", "code": {"text": "physical therapy"},
         "extension": [{"url": "http://imr-adapter.example.org/fhir/StructureDefinition/session-count",
                        "valueInteger": 12}]},
        {"resourceType": "MedicationRequest", "id": "m1", "status": "active", "intent": "order", "subject": patient,
         "authoredOn": "2026-09-01", "medicationCodeableConcept": {"text": "naproxen 500 mg"},
         "dosageInstruction": [{"text": "twice a day"}]},
        {"resourceType": "DocumentReference", "id": "d1", "status": "current", "subject": patient,
         "date": "2026-11-18T10:00:00Z", "type": {"text": "Progress note"}, "description": "Follow-up visit",
         "content": [{"attachment": {"contentType": "text/plain",
                                     "data": base64.b64encode(NOTE.encode()).decode()}}]},
    ]  # fmt: skip
    return {"resourceType": "Bundle", "type": "collection", "entry": [_entry(r) for r in resources]}


def test_the_case_holds_the_patient_and_the_history() -> None:
    decided = decide(context_bundle(), policy=DEFAULT_POLICY)
    case = decided.case
    assert case is not None
    assert (case.patient_key, case.patient, case.sex, case.injury) == (
        "urn:example:payer:member|WC-77",
        "member WC-77",
        "female",
        date(2026, 8, 11),
    )
    assert case.age == 47
    assert [(d.code, d.text) for d in case.diagnoses] == [("M54.16", "Lumbar radiculopathy")]
    assert [(h.kind, h.text, h.detail) for h in case.history] == [
        ("treatment", "physical therapy", "12 sessions, completed"),
        ("medication", "naproxen 500 mg", "twice a day"),
    ]
    (item,) = case.items
    assert (item.sequence, item.key) == (1, "http://www.ama-assn.org/go/cpt|72148")
    assert {f.fact for f in item.findings} >= {"neurologic_deficit"}
    note = case.title_of("DocumentReference/d1")
    assert (note.title, note.when) == ("Follow-up visit", "2026-11-18")
    assert case.title_of("ServiceRequest/mri.note[0]").title == "Note on MRI lumbar spine without contrast"


def test_a_service_is_matched_by_its_code_else_its_words() -> None:
    coded = {"resourceType": "ServiceRequest", "code": {"coding": [{"system": "s", "code": "1"}], "text": "X"}}
    worded = {"resourceType": "ServiceRequest", "code": {"text": "  Aquatic   Therapy "}}
    assert (service_key(coded), service_key(worded)) == ("s|1", "text:aquatic therapy")


# --- what a physician does short of deciding ----------------------------------------------------------


def _task_and_response() -> tuple[dict[str, Any], dict[str, Any]]:
    decided = decide(context_bundle(), policy=DEFAULT_POLICY)
    (review,) = decided.reviews
    return review.resource, decided.response


NOW = datetime(2026, 11, 23, 17, 0, tzinfo=UTC)


def test_a_draft_is_kept_and_gives_way_to_the_decision() -> None:
    task, response = _task_and_response()
    drafted = save_draft(task, Draft(ReviewAction.NOT_CERTIFIED, "No deficit yet.", None), NOW)
    assert draft_of(drafted) == Draft(ReviewAction.NOT_CERTIFIED, "No deficit yet.", None)
    assert (drafted["status"], drafted["meta"]["versionId"]) == ("requested", "2")
    again = save_draft(drafted, Draft(None, "", None), NOW)
    assert draft_of(again) == Draft()
    sent = {**drafted, "status": "completed", "owner": {"identifier": {"system": "http://hl7.org/fhir/sid/us-npi",
            "value": "1234567893"}}, "output": [{"type": {"text": "decision"},
            "valueCodeableConcept": {"coding": [{"code": "A1"}]}}]}  # fmt: skip
    done, _ = apply_decision(drafted, response, read_decision(sent, drafted))
    assert draft_of(done) == Draft()


def test_a_call_and_a_hand_off_are_noted_on_the_task() -> None:
    task, _ = _task_and_response()
    called = note_call(task, held=date(2026, 11, 22), with_whom="Dr. Lee (treating)", said="Will send the EMG.",
                       author="Dr. Ada Reyes", now=NOW)  # fmt: skip
    assert called["note"][-1] == {
        "authorString": "Dr. Ada Reyes",
        "time": "2026-11-23T17:00:00.000+00:00",
        "text": "Peer-to-peer call on 2026-11-22 with Dr. Lee (treating): Will send the EMG.",
    }
    owner = {
        "identifier": {"system": "http://hl7.org/fhir/sid/us-npi", "value": "1245319599"},
        "display": "Dr. Ben Ode",
    }
    handed = hand_off(called, owner, author="Dr. Ada Reyes", now=NOW)
    assert (handed["owner"], handed["status"], handed["meta"]["versionId"]) == (owner, "requested", "3")
    assert handed["note"][-1]["text"] == "Handed to Dr. Ben Ode for review."
    with pytest.raises(ReviewDecisionError, match="whom you spoke with"):
        note_call(task, held=date(2026, 11, 22), with_whom=" ", said="x", author="a", now=NOW)


def test_asking_for_documentation_puts_the_question_on_the_answer() -> None:
    task, response = _task_and_response()
    (changed,), asked = ask_documentation([task], response, {}, "Please send the EMG of 11/2026.",
                                          author="Dr. Ada Reyes", now=NOW, policy=DEFAULT_POLICY)  # fmt: skip
    assert asked["meta"]["versionId"] == "2"
    assert asked_lines(asked) == {1: ["11506-3"]}
    (request,) = [c for c in asked["contained"] if c["resourceType"] == "CommunicationRequest"]
    assert request["note"][0]["text"].startswith("Please send the EMG of 11/2026.")
    assert request["occurrencePeriod"]["end"][:10] == due_of(changed, DEFAULT_POLICY).isoformat()[:10]
    assert changed["note"][-1]["text"] == "Documentation asked of the provider: Please send the EMG of 11/2026."
    with pytest.raises(ReviewDecisionError, match="question"):
        ask_documentation([task], response, {}, "  ", author="a", now=NOW, policy=DEFAULT_POLICY)


def test_what_the_rules_read_beyond_a_quote_is_kept_in_words() -> None:
    """A second NSAID is recommended not certified on the drug already taken, which the record lists as a
    medication rather than states in a sentence: the case names it among what the recommendation read."""
    bundle = context_bundle()
    bundle["entry"][0] = _entry({"resourceType": "MedicationRequest", "id": "nsaid", "status": "active",
                                 "intent": "order", "subject": {"reference": "Patient/w1"}, "authoredOn": "2026-11-20",
                                 "medicationCodeableConcept": {"text": "Ibuprofen 800 mg #90"}})  # fmt: skip
    decided = decide(bundle, policy=DEFAULT_POLICY)
    assert decided.case is not None and decided.determinations[0].recommendation == ReviewAction.NOT_CERTIFIED
    (item,) = decided.case.items
    assert {(r.fact, r.value) for r in item.read} >= {("same_class_medications", "naproxen")}
