"""The sync worker: finds new or changed ServiceRequests on the EHR server, reads their context,
determines, and queues the ClaimResponse for the payer server.

Restartable at any point: each ServiceRequest version is processed once (an idempotency key recorded in
the same transaction as its ClaimResponse and outbox entry), the cursor (``_lastUpdated``) moves only
past work that is recorded, and a request that cannot be determined goes to the dead-letter store with
the reason instead of blocking the rest. ``replay`` tries the dead letters again.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

from adapter.errors import AdapterError, FHIRServerError, TransportError
from adapter.exchange import FHIRClient
from adapter.service.forwarder import Forwarder
from adapter.service.pipeline import decide, record
from adapter.service.state import Store

log = logging.getLogger("adapter.service.worker")
JSON = dict[str, Any]
CURSOR = "ehr:ServiceRequest"
EPOCH = "1970-01-01T00:00:00Z"


@dataclass
class PassReport:
    seen: int = 0
    decided: int = 0
    skipped: int = 0
    dead: int = 0
    delivered: int = 0
    errors: list[str] = field(default_factory=list)


class SyncWorker:
    def __init__(
        self, store: Store, ehr: FHIRClient, forwarder: Forwarder | None, *, forward: bool = True, page_size: int = 50
    ) -> None:
        self.store = store
        self.ehr = ehr
        self.forwarder = forwarder
        self.forward = forward
        self.page_size = page_size

    def context(self, request: JSON) -> JSON:
        """A collection Bundle: the ServiceRequest first, then what the EHR knows about its patient."""
        entries = [{"fullUrl": f"ServiceRequest/{request['id']}", "resource": request}]
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
            ):
                for resource in self.ehr.search(rtype, {"subject": subject, **params, "_count": 100}):
                    if resource.get("id") != request["id"]:
                        entries.append({"fullUrl": f"{rtype}/{resource['id']}", "resource": resource})
        return {"resourceType": "Bundle", "type": "collection", "entry": entries}

    def process(self, request: JSON, report: PassReport) -> None:
        version = request.get("meta", {}).get("versionId", "1")
        key = f"ehr:ServiceRequest/{request['id']}/_history/{version}"
        if self.store.processed(key) is not None:
            report.skipped += 1
            return
        try:
            decided = decide(self.context(request))
        except TransportError:
            raise
        except AdapterError as exc:
            self.store.dead_letter(
                "ehr", key, f"[{exc.code}] {exc.message}", {"reference": f"ServiceRequest/{request['id']}"}
            )
            self.store.mark_processed(key, None)
            self.store.audit("worker", "determine", f"ServiceRequest/{request['id']}", f"dead-letter {exc.code}")
            report.dead += 1
            return
        record(self.store, decided, forward=self.forward, key=key)
        self.store.audit("worker", "determine", f"ServiceRequest/{request['id']}", decided.response["outcome"])
        report.decided += 1

    def run_once(self) -> PassReport:
        """One pass over what changed since the cursor, then deliver what is queued."""
        report = PassReport()
        cursor = self.store.cursor(CURSOR) or EPOCH
        params = {"_lastUpdated": f"ge{cursor}", "_sort": "_lastUpdated", "_count": self.page_size, "status": "active"}
        newest = cursor
        for request in self.ehr.search("ServiceRequest", params):
            report.seen += 1
            self.process(request, report)
            updated = request.get("meta", {}).get("lastUpdated")
            if updated and updated > newest:
                newest = updated
                self.store.set_cursor(CURSOR, newest)  # only past work that is recorded
        if self.forwarder is not None:
            report.delivered = self.forwarder.drain()
        return report

    def replay(self) -> PassReport:
        """Try every dead letter again; those that now succeed are marked replayed."""
        report = PassReport()
        for letter in self.store.dead_letters():
            reference = (letter.payload or {}).get("reference", "")
            rtype, _, rid = reference.partition("/")
            try:
                request = self.ehr.read(rtype, rid)
                decided = decide(self.context(request))
            except AdapterError as exc:
                report.errors.append(f"{reference}: [{exc.code}] {exc.message}")
                continue
            record(self.store, decided, forward=self.forward, key=f"replay:{letter.id}:{reference}")
            self.store.replayed(letter.id)
            report.decided += 1
        if self.forwarder is not None:
            report.delivered = self.forwarder.drain()
        return report
