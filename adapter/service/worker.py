"""The sync worker: finds new or changed ServiceRequests on the EHR server, reads their context,
determines, and queues the ClaimResponse for the payer server. With EHR Tasks on, it also tells the EHR
what became of each request, and again when a physician's review makes the answer final.

Restartable at any point: each ServiceRequest version is processed once (an idempotency key recorded in
the same transaction as its ClaimResponse and outbox entry), the cursor (``_lastUpdated``) moves only
past work that is recorded, and a request that cannot be determined goes to the dead-letter store with
the reason instead of blocking the rest. ``replay`` tries the dead letters again.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass, field
from typing import Any

import orjson

from adapter.determination import AdversePolicy
from adapter.errors import AdapterError, FHIRServerError, MappingError, RetryableError, TransportError
from adapter.exchange import FHIRClient
from adapter.fhir.inbound import check_resource
from adapter.fhir.pas import REQUEST_RESOURCES, ReviewAction, load_pas, review_action_code
from adapter.service.forwarder import Forwarder
from adapter.service.pipeline import DETERMINATION_SYSTEM, decide, record
from adapter.service.state import Store
from adapter.tables import load_tables

log = logging.getLogger("adapter.service.worker")
JSON = dict[str, Any]
EPOCH = "1970-01-01T00:00:00Z"


@dataclass
class PassReport:
    seen: int = 0
    decided: int = 0
    skipped: int = 0
    dead: int = 0
    delivered: int = 0
    errors: list[str] = field(default_factory=list)


TASK_SYSTEM = "urn:imr-adapter:id:task"
#: How far the worker has reported completed physician reviews back to the EHR (microseconds).
REVIEWS_CURSOR = "ehr:reviews"


def ehr_task(request: JSON, response: JSON) -> JSON:
    """A Task on the EHR server that says what became of a ServiceRequest (an answer, or pended)."""
    actions = [review_action_code(i.get("adjudication", [])) for i in response.get("item", [])]
    action = ReviewAction((actions[0] if actions else None) or ReviewAction.PENDED)
    output = {"identifier": {"system": DETERMINATION_SYSTEM, "value": response["id"]}}
    return {
        "resourceType": "Task",
        "identifier": [{"system": TASK_SYSTEM, "value": response["id"]}],
        "status": action.task_status,
        "intent": "order",
        "businessStatus": {"coding": [{"system": load_pas().code_systems.review_action, "code": action}]},
        "focus": {"reference": f"{request['resourceType']}/{request['id']}"},
        "for": request.get("subject", {"display": "unknown patient"}),
        "description": _latest_note(response)[:1000],
        "output": [{"type": {"text": "ClaimResponse"}, "valueReference": output}],
    }


def _latest_note(response: JSON) -> str:
    """The newest note on the first item: a physician's rationale once reviewed, else the engine's."""
    notes = {n.get("number"): n.get("text", "") for n in response.get("processNote", [])}
    numbers = (response.get("item") or [{}])[0].get("noteNumber") or []
    return str(notes.get(numbers[-1], "pended")) if numbers else "pended"


def cursor_name(rtype: str) -> str:
    """Where the worker keeps how far it has read the EHR's requests of one type."""
    return f"ehr:{rtype}"


class SyncWorker:
    def __init__(
        self,
        store: Store,
        ehr: FHIRClient,
        forwarder: Forwarder | None,
        *,
        forward: bool = True,
        page_size: int = 50,
        tasks: bool = False,
        adverse: AdversePolicy = "pend",
    ) -> None:
        self.store = store
        self.ehr = ehr
        self.forwarder = forwarder
        self.forward = forward
        self.page_size = page_size
        self.tasks = tasks
        self.adverse = adverse
        self._searchable: dict[str, set[str]] | None = None

    def searchable(self, rtype: str) -> set[str]:
        """The search parameters the EHR declares for a resource type (its CapabilityStatement, read once)."""
        if self._searchable is None:
            self._searchable = {
                name: {str(p.get("name")) for p in declared.get("searchParam", [])}
                for name, declared in self.ehr.declared().items()
            }
        return self._searchable.get(rtype, set())

    def post_task(self, task: JSON) -> None:
        """Write a Task to the EHR by conditional update on its identifier: created the first time, brought up
        to date after (a physician's final answer), never duplicated by a retry."""
        self.ehr.conditional_update(task, {"identifier": f"{TASK_SYSTEM}|{task['identifier'][0]['value']}"})

    def write_task(self, task: JSON, key: str) -> None:
        """The Task back to the EHR; a failure goes to the dead letters (the decision itself is kept)."""
        try:
            self.post_task(task)
        except AdapterError as exc:
            self.store.dead_letter("ehr-task", key, f"[{exc.code}] {exc.message}", {"task": task})

    def context(self, request: JSON) -> JSON:
        """A collection Bundle: the request (ServiceRequest, MedicationRequest or DeviceRequest) first, then what
        the EHR knows about its patient."""
        entries = [{"fullUrl": f"{request['resourceType']}/{request['id']}", "resource": request}]
        subject = (request.get("subject") or {}).get("reference")
        if subject and subject.startswith("Patient/"):
            try:
                entries.append({"fullUrl": subject, "resource": self.ehr.read("Patient", subject.split("/", 1)[1])})
            except FHIRServerError:
                pass
            for rtype, params in (
                ("Condition", {}),
                ("Procedure", {}),
                ("MedicationRequest", {}),
                ("ServiceRequest", {"status": "completed"}),
                ("DocumentReference", {}),
            ):
                for resource in self.ehr.search(rtype, {"subject": subject, **params, "_count": 100}):
                    if (rtype, resource.get("id")) != (request["resourceType"], request["id"]):
                        entries.append({"fullUrl": f"{rtype}/{resource['id']}", "resource": resource})
        return {"resourceType": "Bundle", "type": "collection", "entry": entries}

    def process(self, request: JSON, report: PassReport) -> None:
        try:
            check_resource(request)
            if not request.get("id"):
                raise MappingError(f"a {request.get('resourceType')} without an id", location="id")
        except MappingError as exc:  # a server's answer is checked like any other input
            digest = hashlib.sha256(orjson.dumps(request, option=orjson.OPT_SORT_KEYS)).hexdigest()[:16]
            self.store.dead_letter("ehr", f"ehr:invalid/{digest}", f"[{exc.code}] {exc.message}", processed=True)
            report.dead += 1
            return
        version = request.get("meta", {}).get("versionId", "1")
        ref = f"{request['resourceType']}/{request['id']}"
        key = f"ehr:{ref}/_history/{version}"
        if self.store.processed(key) is not None:
            report.skipped += 1
            return
        try:
            decided = decide(self.context(request), adverse=self.adverse)
        except (TransportError, RetryableError):
            raise  # the EHR is unreachable or overloaded: stop the pass, the cursor stays, the next pass retries
        except AdapterError as exc:
            self.store.dead_letter("ehr", key, f"[{exc.code}] {exc.message}", {"reference": ref}, processed=True)
            self.store.audit("worker", "determine", ref, f"dead-letter {exc.code}")
            report.dead += 1
            return
        record(self.store, decided, forward=self.forward, key=key)
        self.store.audit("worker", "determine", ref, decided.response["outcome"])
        report.decided += 1
        if self.tasks:
            self.write_task(ehr_task(request, decided.response), key)

    def run_once(self) -> PassReport:
        """One pass over what changed since the cursor, then deliver what is queued."""
        report = PassReport()
        for rtype in REQUEST_RESOURCES:  # each request type with its own cursor
            name = cursor_name(rtype)
            cursor = self.store.cursor(name) or EPOCH
            params = {"_lastUpdated": f"ge{cursor}", "_sort": "_lastUpdated", "_count": self.page_size}
            params.update({p: v for p, v in (("status", "active"), ("intent", "order")) if p in self.searchable(rtype)})
            newest = cursor
            for request in self.ehr.search(rtype, params):
                if (request.get("status"), request.get("intent")) != ("active", "order"):
                    continue  # a server that cannot filter on them: filtered here
                report.seen += 1
                self.process(request, report)
                updated = request.get("meta", {}).get("lastUpdated")
                if updated and updated > newest:
                    newest = updated
                    self.store.set_cursor(name, newest)  # only past work that is recorded
        if self.tasks:
            self.report_reviews()
        if self.forwarder is not None:
            report.delivered = self.forwarder.drain()
        return report

    def report_reviews(self) -> int:
        """Bring the EHR Task of each request a physician has decided since the last pass up to date with
        the final ClaimResponse; the number written. Requests that did not come from the EHR (a PAS
        ``$submit``) have no EHR Task and are passed over; a failed write goes to the dead letters."""
        cursor = int(self.store.cursor(REVIEWS_CURSOR) or 0)
        written = 0
        service_request = load_tables().fhir.extensions.service_request
        while batch := self.store.completed_reviews(cursor):
            for updated, task in batch:
                response = self.store.claim_response(task["focus"]["reference"].removeprefix("ClaimResponse/"))
                refs = [e["valueReference"].get("reference", "") for i in (response or {}).get("item", [])
                        for e in i.get("extension", []) if e.get("url") == service_request]  # fmt: skip
                rtype, _, rid = (refs[0] if refs else "").partition("/")
                if response is not None and rtype in REQUEST_RESOURCES and rid:
                    request = {"resourceType": rtype, "id": rid, "subject": response.get("patient")}
                    self.write_task(ehr_task(request, response), f"review:{task['id']}")
                    written += 1
                cursor = updated
                self.store.set_cursor(REVIEWS_CURSOR, str(cursor))
        return written

    def replay(self) -> PassReport:
        """Try every dead letter again; those that now succeed are marked replayed."""
        report = PassReport()
        for letter in self.store.dead_letters():
            if letter.source == "ehr-task":  # the decision was made; only the Task back to the EHR is owed
                task = (letter.payload or {})["task"]
                try:
                    self.post_task(task)
                except AdapterError as exc:
                    report.errors.append(f"Task {task['identifier'][0]['value']}: [{exc.code}] {exc.message}")
                    continue
                self.store.replayed(letter.id)
                continue
            reference = (letter.payload or {}).get("reference", "")
            key = f"replay:{letter.id}:{reference}"
            if self.store.processed(key) is not None:  # decided before a crash, not yet marked replayed
                self.store.replayed(letter.id)
                continue
            rtype, _, rid = reference.partition("/")
            try:
                request = self.ehr.read(rtype, rid)
                decided = decide(self.context(request), adverse=self.adverse)
            except AdapterError as exc:
                report.errors.append(f"{reference}: [{exc.code}] {exc.message}")
                continue
            record(self.store, decided, forward=self.forward, key=key)
            self.store.replayed(letter.id)
            report.decided += 1
        if self.forwarder is not None:
            report.delivered = self.forwarder.drain()
        return report
