"""Delivering queued ClaimResponses to the payer server, in order, at least once and exactly once there:
a first version by conditional create on the determination identifier (a run of them from the head of the
queue in one ``transaction`` Bundle when the payer offers transactions: all delivered or none); a later one
(a physician's final answer) by reading the payer's copy and updating it with ``If-Match`` unless the copy's
version tag already says it is as new. A payer outage only delays delivery."""

from __future__ import annotations

import logging
import threading
import uuid
from itertools import takewhile

from adapter.config import RetrySettings
from adapter.errors import AdapterError, MalformedResponseError, StateError
from adapter.exchange import FHIRClient
from adapter.fhir.payer import answer_of, keep_references
from adapter.service.pipeline import DETERMINATION_SYSTEM, VERSION_TAG_SYSTEM
from adapter.service.state import OutboxItem, Store
from adapter.types import JSON

log = logging.getLogger("adapter.service.forwarder")


class Forwarder:
    """Drains the outbox to the payer; ``start()`` runs it in a background thread."""

    def __init__(
        self, store: Store, payer: FHIRClient, *, max_delay: float = 30.0, batch: int = 50, lease: float = 60.0
    ) -> None:
        self.store = store
        self.payer = payer
        self.max_delay = max_delay
        self.lease = lease
        #: The most answers sent in one transaction (1: one request each).
        self.batch = batch
        self._transactions: bool | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        #: Answers delivered since this forwarder was made (by ``drain`` or its thread).
        self.delivered = 0

    @property
    def transactions(self) -> bool:
        """Whether the payer's CapabilityStatement offers ``transaction`` (read once; no: one by one)."""
        if self._transactions is None:
            try:
                rests = self.payer.capabilities().get("rest", [])
            except AdapterError:
                return False  # asked again next time
            self._transactions = any(i.get("code") == "transaction" for r in rests for i in r.get("interaction", []))
        return self._transactions

    def deliver_next(self) -> int | None:
        """Deliver from the head of the outbox: how many were delivered (0: the head failed and waits), or
        None when nothing is due."""
        items = self.store.next_outbox_batch(self.batch if self.batch > 1 and self.transactions else 1, self.lease)
        if not items:
            return None
        run = list(takewhile(lambda i: _version(answer_of(i.payload)) <= 1, items)) or items[:1]
        self.store.release(*[i.seq for i in items[len(run) :]])
        try:
            if len(run) > 1 or (_written_with_copies(run[0].payload) and self.transactions):
                self.send_many(run)
            else:
                self.send(run[0].claim_response_id, answer_of(run[0].payload))
        except AdapterError as exc:
            head = run[0]
            delay = min(self.max_delay, 0.5 * 2**head.attempts)
            self.store.release(*[i.seq for i in run[1:]])
            self.store.delivery_failed(head.seq, f"{exc.code}: {exc.message}", delay)
            log.warning("outbox %s: delivery failed (%s); next try in %.1f s", head.seq, exc.code, delay)
            return 0
        self.store.delivered(*[i.seq for i in run])
        self.delivered += len(run)
        return len(run)

    def send_many(self, items: list[OutboxItem]) -> None:
        """First versions in one transaction of conditional creates (a retry creates nothing twice), with the
        copies of what they name that the worker's answers carry (each once, however many answers name it)."""
        entries: dict[str, JSON] = {}
        for item in items:
            if _written_with_copies(item.payload):
                entries.update((e["fullUrl"], e) for e in item.payload["entry"])
                continue
            wanted = f"identifier={DETERMINATION_SYSTEM}|{item.claim_response_id}"
            entries[item.claim_response_id] = {"fullUrl": f"urn:uuid:{uuid.uuid4()}", "resource": item.payload,
                                               "request": {"method": "POST", "url": "ClaimResponse",
                                                           "ifNoneExist": wanted}}  # fmt: skip
        bundle = {"resourceType": "Bundle", "type": "transaction", "entry": [*entries.values()]}
        results = self.payer.transaction(bundle)
        failed = [r.status for r in results if not 200 <= r.status < 300]
        if len(results) != len(entries) or failed:
            raise MalformedResponseError(
                f"the payer's transaction answered {len(results)} entries, {failed[:3]} failed"
            )

    def send(self, claim_response_id: str, payload: JSON) -> None:
        """One version of a ClaimResponse to the payer, whatever was delivered before (a retry is a no-op)."""
        identifier = f"{DETERMINATION_SYSTEM}|{claim_response_id}"
        version = _version(payload)
        if version <= 1:
            self.payer.create(payload, if_none_exist=f"identifier={identifier}")
            return
        found = next(iter(self.payer.search("ClaimResponse", {"identifier": identifier, "_count": 2})), None)
        if found is None:
            self.payer.create(payload, if_none_exist=f"identifier={identifier}")
        elif _version(found) < version:  # naming what the payer's copy names (the copies written with it)
            served = str((found.get("meta") or {}).get("versionId", ""))
            payload = keep_references(payload, found)
            self.payer.update({**payload, "id": found["id"]}, if_match=f'W/"{served}"' if served else None)

    def drain(self, *, max_items: int = 10_000) -> int:
        """Deliver everything that is due now; the number delivered."""
        delivered = 0
        while delivered < max_items:
            result = self.deliver_next()
            if not result:
                break
            delivered += result
        return delivered

    def _run(self) -> None:
        """Deliver until stopped; a failing state database pauses delivery (with backoff), never ends it."""
        failures = 0
        while not self._stop.is_set():
            try:
                result = self.deliver_next()
                failures = 0
            except StateError as exc:
                failures += 1
                delay = min(self.max_delay, 0.5 * 2 ** min(failures, 10))
                log.error("outbox: the state database failed (%s); next try in %.1f s", exc.code, delay)
                self._stop.wait(delay)
                continue
            if not result:
                self._stop.wait(0.2)

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def start(self) -> None:
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="outbox-forwarder", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
            self._thread = None


def _written_with_copies(payload: JSON) -> bool:
    """Whether an outbox payload is a worker's answer with the copies of what it names (a transaction)."""
    return payload.get("resourceType") == "Bundle"


def _version(resource: JSON) -> int:
    """The adapter's version of a ClaimResponse copy, from its tag (1 when untagged)."""
    tags = (resource.get("meta") or {}).get("tag") or []
    codes = [str(t.get("code")) for t in tags if t.get("system") == VERSION_TAG_SYSTEM]
    return max((int(c) for c in codes if c.isdigit()), default=1)


def payer_client(url: str, auth: object, timeout: float) -> FHIRClient:
    """A payer client that does not retry on its own: the outbox retries, in order."""
    return FHIRClient(url, auth=auth, timeout=timeout, retry=RetrySettings(attempts=1))  # type: ignore[arg-type]
