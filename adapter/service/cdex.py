"""The worker's documentation requests to the EHR, the Da Vinci CDex way (issue 23).

When the worker pends a request whose records lack documentation, each pended line gets a CDex attachment
request (``adapter.fhir.cdex.attachment_request``), and a second one by questionnaire when what it lacks has the
adapter's DTR questionnaires (a Task of its own: CDex cdex-6), each kept ``owed`` with the answer in one
transaction and then written to the EHR by conditional update on its tracking id (a retry or a second worker
never makes two). Each pass follows the open ones: a Task the EHR completed is read back as the submission it
stands for (its outputs the attachments; a QuestionnaireResponse read as facts) and the line is determined again
from the request's context, read from the EHR again, with the attachments: the next version of the answer
(``answer_asked``), as ``$submit-attachment`` does for a PAS request. A Task the EHR failed, rejected or
cancelled closes the request (the item waits for the physician, who decides at the information deadline); an item
decided meanwhile (by the physician, or by the line's other Task) has its Task cancelled on the EHR. Attachments
posted to ``$submit-attachment`` for these tracking ids are held by the service and answered here, where the
EHR's records can be read.

Nothing is lost to a worker killed at any point: an owed Task is written by the next pass, and a completed
Task stays completed on the EHR until its new version is recorded (under one idempotency key).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from datetime import UTC, datetime

from adapter.deadlines import DeadlineTable, information_due
from adapter.errors import AdapterError, MappingError, NotFoundError
from adapter.exchange import FHIRClient
from adapter.fhir.attachments import (
    TRACKING_SYSTEM,
    extend_reviews,
    pended_lines,
    submission,
)
from adapter.fhir.cdex import (
    CLOSED,
    asked_questionnaires,
    attachment_request,
    contained_patient,
    contained_provider,
    questionnaire_tracking,
    task_submission,
)
from adapter.fhir.navigate import typed_id
from adapter.fhir.pas import review_number
from adapter.review.policy import DEFAULT_POLICY, Policy
from adapter.service.attachments import answer_asked, find_asked, refuse
from adapter.service.pipeline import Decided
from adapter.service.state import AttachmentRequest, Store, micros
from adapter.types import JSON

log = logging.getLogger("adapter.service.cdex")
#: Statuses of a request still waiting on the EHR.
WAITING = ("requested", "received", "accepted", "ready", "in-progress", "on-hold")


def owed_asks(request: JSON, decided: Decided, payer_url: str, deadlines: DeadlineTable) -> list[AttachmentRequest]:
    """The CDex requests one decided EHR request owes: one per pended line that lacks documentation, and one by
    questionnaire for a line whose criteria have questionnaires (its review Task then due by the information
    deadline of ``deadlines``, as a PAS answer's asks make it)."""
    response = decided.response
    received = datetime.fromisoformat(str(response["created"]))
    due = information_due(received, deadlines)
    ref = f"{request['resourceType']}/{request['id']}"
    asks = []
    pended = pended_lines(response)
    for item in response.get("item", []):
        line = item.get("itemSequence")
        needs = decided.needs.get(line, []) if isinstance(line, int) else []
        if not needs or line not in pended:
            continue
        tracking = review_number(item) or f"{response['id']}-{line}"
        ways = [(tracking, False)] + ([(questionnaire_tracking(tracking), True)] if asked_questionnaires(needs) else [])
        for this, by_questionnaire in ways:
            task = attachment_request(
                tracking=this, response=response, line=line, needs=needs, payer_url=payer_url, due=due,
                authored=received, patient=contained_patient(None, response.get("patient")),
                provider=contained_provider(None, response.get("requestor")), by_questionnaire=by_questionnaire,
            )  # fmt: skip
            asks.append(AttachmentRequest(this, response["id"], line, ref, due.isoformat(timespec="seconds"), task))
    extend_reviews([review.resource for review in decided.reviews], response, received, deadlines=deadlines,
                   lines=[a.line for a in asks])  # fmt: skip
    return asks


def _requested(asked: AttachmentRequest) -> tuple[str, str]:
    """(type, id) of the EHR request an ask is about."""
    return typed_id(asked.request) or ("", "")


class DocumentationRequests:
    """Asks the EHR for documentation with CDex Tasks, follows them, and decides again when they are answered."""

    def __init__(
        self,
        store: Store,
        ehr: FHIRClient,
        context: Callable[[JSON], JSON],
        *,
        forward: bool,
        policy: Policy = DEFAULT_POLICY,
        lease: float = 120.0,
    ) -> None:
        self.store = store
        self.ehr = ehr
        #: The context Bundle of an EHR request (the worker's reading of it).
        self.context = context
        self.forward = forward
        self.policy = policy
        #: Owed Tasks younger than this are their own worker's to write (two writes at once could make two).
        self.lease = lease

    def _party(self, reference: JSON | None) -> JSON | None:
        """The EHR's Patient, Practitioner or Organization a reference names (None when it cannot be read)."""
        rtype, rid = typed_id(str((reference or {}).get("reference", ""))) or ("", "")
        if rtype not in ("Patient", "Practitioner", "PractitionerRole", "Organization") or not rid:
            return None
        try:
            found = self.ehr.read(rtype, rid)
        except NotFoundError:
            return None
        return found if isinstance(found, dict) else None

    def _coverages(self, patient: JSON | None) -> list[JSON]:
        """The EHR's Coverages of a patient (none when it keeps none, or cannot be asked: the member number is
        then the Patient's own, if any)."""
        reference = str((patient or {}).get("reference", ""))
        if (typed_id(reference) or ("",))[0] != "Patient":
            return []
        try:
            return [c for c in self.ehr.search("Coverage", {"beneficiary": reference}) if isinstance(c, dict)]
        except AdapterError as exc:
            log.info("the EHR's Coverages of %s could not be read (%s)", reference, exc.code)
            return []

    def write(self, asked: AttachmentRequest) -> bool:
        """Write one owed request to the EHR (the member and provider read from it); False when the EHR failed
        (it stays owed for the next pass)."""
        response = self.store.claim_response(asked.claim_response_id) or {}
        task = dict(asked.task)
        try:
            patient, requestor = response.get("patient"), response.get("requestor")
            task["contained"] = [contained_patient(self._party(patient), patient, self._coverages(patient)),
                                 contained_provider(self._party(requestor), requestor)]  # fmt: skip
            written = self.ehr.conditional_update(task, {"identifier": f"{TRACKING_SYSTEM}|{asked.tracking}"})
        except AdapterError as exc:
            log.warning("a documentation request could not be written to the EHR (%s); the next pass tries again",
                        exc.code)  # fmt: skip
            return False
        ehr_id = (written.resource or {}).get("id") if isinstance(written.resource, dict) else None
        ehr_id = ehr_id or str(written.location or "").split("/_history")[0].rsplit("/", 1)[-1] or None
        self.store.set_attachment_request(asked.tracking, "requested", ehr_id, task=task)
        self.store.audit("worker", "attachment request", f"Task/{ehr_id} tracking {asked.tracking}"[:160], "requested")
        return True

    def write_owed(self, asks: list[AttachmentRequest] | None = None) -> int:
        """Write ``asks`` (those this worker just kept), or every request owed for longer than the lease (their
        worker stopped, or the EHR failed); the number written."""
        if asks is None:
            before = time.time() - self.lease
            asks = [a for a in self.store.attachment_requests("owed") if micros(a.updated) / 1e6 < before]
        return sum(self.write(asked) for asked in asks)

    def follow(self) -> int:
        """Read each open request's Task from the EHR and act on its status; held submissions for these requests
        answered too. The number of new versions made."""
        made = 0
        for asked in self.store.attachment_requests(*WAITING):
            try:
                made += self.follow_one(asked)
            except AdapterError as exc:
                log.warning("documentation request %s not followed (%s); the next pass tries again", asked.tracking,
                            exc.code)  # fmt: skip
        return made + self.answer_held()

    def follow_one(self, asked: AttachmentRequest) -> int:
        """One open request: cancelled on the EHR when its item no longer pends, decided again when its Task is
        completed, closed when the EHR ended it otherwise; 1 when a new version was made."""
        response = self.store.claim_response(asked.claim_response_id)
        if asked.line not in pended_lines(response or {}):
            self.close(asked, "cancelled", cancel=True)
            return 0
        if asked.ehr_id is None:
            return 0
        done = self.ehr.read("Task", asked.ehr_id)
        status = str(done.get("status", ""))
        if status == "completed":
            return self.answer(asked, done)
        if status in CLOSED:
            self.close(asked, status)
        elif status != asked.status and status in WAITING:
            self.store.set_attachment_request(asked.tracking, status)
        return 0

    def answer(self, asked: AttachmentRequest, done: JSON) -> int:
        """A completed Task: its outputs decide the line again (a Task whose outputs cannot be read closes the
        request as failed, with the reason audited)."""
        try:
            submitted = task_submission(asked.task, done, self.ehr.read)
        except MappingError as exc:
            self.close(asked, "failed", reason=exc.code)
            return 0
        context = self.context(self.ehr.read(*_requested(asked)))
        answer_asked(self.store, submitted, f"cdex:{asked.tracking}", asked, context, forward=self.forward,
                     policy=self.policy)  # fmt: skip
        return 1

    def close(self, asked: AttachmentRequest, status: str, *, cancel: bool = False, reason: str = "") -> None:
        """End a request (its Task cancelled on the EHR too with ``cancel``: its item was decided meanwhile)."""
        if cancel and asked.ehr_id is not None:
            task = {**asked.task, "id": asked.ehr_id, "status": "cancelled",
                    "statusReason": {"text": "the item was decided"},
                    "lastModified": datetime.now(UTC).isoformat(timespec="seconds")}  # fmt: skip
            try:
                self.ehr.update(task)
            except AdapterError as exc:
                log.warning("a documentation request could not be cancelled on the EHR (%s)", exc.code)
                return  # the next pass tries again
        self.store.set_attachment_request(asked.tracking, status)
        target = f"Task/{asked.ehr_id} tracking {asked.tracking}"[:160]
        self.store.audit("worker", "attachment request", target, f"{status} {reason}".strip())

    def answer_held(self) -> int:
        """Submissions posted to ``$submit-attachment`` for requests asked of the EHR: decided again here (their
        member and provider checked against the request); refused when the request was closed meanwhile (its Task
        completed with the same answers, as CDex has a provider both submit and complete it, or its item decided),
        so that none stays held for good. The number answered."""
        made = 0
        for held in self.store.held_attachments():
            if not self.store.attachment_requests(tracking=held.tracking.rpartition("|")[2]):
                continue  # the service's (a PAS request), or not known yet
            try:
                submitted = submission(held.payload)
                asked = find_asked(self.store, submitted)
                if asked is None:
                    continue
                context = self.context(self.ehr.read(*_requested(asked)))
                response = answer_asked(self.store, submitted, held.key, asked, context, forward=self.forward,
                                        policy=self.policy)  # fmt: skip
            except MappingError as exc:
                refuse(self.store, held, exc, "worker")
                continue
            except AdapterError as exc:
                log.warning("a held attachment was not answered (%s); the next pass tries again", exc.code)
                continue
            self.store.attachment_outcome(held.key, "answered", response=response["id"])
            made += 1
        return made
