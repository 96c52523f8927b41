"""The sync worker: finds new or changed ServiceRequests on the EHR server, reads their context,
determines, and queues the ClaimResponse for the payer server. With EHR Tasks on, it also tells the EHR
what became of each request, and again when a physician's review makes the answer final.

Restartable at any point: each ServiceRequest version is processed once (an idempotency key recorded in
the same transaction as its ClaimResponse and outbox entry), the cursor (``_lastUpdated``) moves only
past work that is recorded, and a request that cannot be determined goes to the dead-letter store with
the reason instead of blocking the rest. ``replay`` tries the dead letters again.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import secrets
import socket
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Executor, ProcessPoolExecutor
from dataclasses import dataclass, field, replace
from functools import partial
from typing import Any

from adapter.actions import ReviewAction
from adapter.errors import AdapterError, AuthError, MappingError, PagingError, RetryableError, TransportError
from adapter.exchange import FHIRClient
from adapter.fhir.extensions import values
from adapter.fhir.inbound import DEFAULT_LIMITS, Limits, check_inbound, check_resource, check_tree
from adapter.fhir.navigate import typed_id
from adapter.fhir.pas import PAS, REQUEST_RESOURCES, review_action_code
from adapter.fhir.payer import payer_transaction
from adapter.fhir.r5 import is_r5
from adapter.review.policy import Policy
from adapter.review.tasks import response_of, task_identifier
from adapter.service.cdex import DocumentationRequests, owed_asks
from adapter.service.context import Capabilities, ContextReader, context_bundle, context_bundles, search_entries
from adapter.service.forwarder import Forwarder
from adapter.service.http import FHIR_ID
from adapter.service.pipeline import DETERMINATION_SYSTEM, Decided, decide, recording, warm_up
from adapter.service.state import EHR_TASK, AuditRow, Recording, Store, micros
from adapter.tables import mappings
from adapter.types import JSON

log = logging.getLogger("adapter.service.worker")
EPOCH = "1970-01-01T00:00:00Z"
#: Pages a reading worker keeps queued and free beyond the one it decides (for the other workers to take).
READ_AHEAD = 8
#: Seconds a worker with no free page waits before it looks again while another worker reads.
PAGE_WAIT = 0.2


@dataclass
class PassReport:
    seen: int = 0
    decided: int = 0
    skipped: int = 0
    dead: int = 0
    delivered: int = 0
    errors: list[str] = field(default_factory=list)


#: Failures of the EHR itself (unreachable, overloaded, refusing our token, paging off its base): they stop a
#: pass with its cursor where it was, never a request's dead letter.
EHR_FAILURES = (TransportError, RetryableError, AuthError, PagingError)
#: How far the worker has reported completed physician reviews back to the EHR (microseconds).
REVIEWS_CURSOR = "ehr:reviews"
#: The lease of the worker that follows the documentation requests asked of the EHR.
DOCUMENTATION_LEASE = "ehr:documentation"


def ehr_task(request: JSON, response: JSON) -> JSON:
    """A Task on the EHR server that says what became of a ServiceRequest (an answer, or pended)."""
    actions = [review_action_code(i.get("adjudication", [])) for i in response.get("item", [])]
    action = ReviewAction((actions[0] if actions else None) or ReviewAction.PENDED)
    output = {"identifier": {"system": DETERMINATION_SYSTEM, "value": response["id"]}}
    return {
        "resourceType": "Task",
        "identifier": [task_identifier(response["id"])],
        "status": action.task_status,
        "intent": "order",
        "code": {"coding": [{"system": mappings().tables.fhir.code_systems.task_code, "code": "fulfill"}]},
        "businessStatus": {"coding": [{"system": mappings()[PAS].code_systems.review_action, "code": action}]},
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


@dataclass
class Page:
    """Requests to decide together: how to read their context Bundles, and what to do once recorded."""

    requests: list[JSON]
    contexts: Callable[[list[JSON]], list[JSON | AdapterError]]
    done: Callable[[], None] = lambda: None


@dataclass
class Started:
    page: Page
    todo: list[tuple[JSON, str]]
    outcomes: Iterator[Decided | AdapterError]
    #: Each request's context Bundle (or why it could not be read): what the payer's copy of its answer names.
    contexts: list[JSON | AdapterError] = field(default_factory=list)


def _determine(bundle: JSON, policy: Policy, limits: Limits) -> Decided | AdapterError:
    """One determination of a checked Bundle, its error returned rather than raised (it may run in another
    process)."""
    try:
        return decide(bundle, checked=True, policy=policy, limits=limits)
    except AdapterError as exc:
        return exc


def _outlive_no_parent(parent: int) -> None:
    """In a determination process: end it when the worker that started it is gone (killed with SIGKILL, it
    cannot stop its pool, and the pool's processes would wait on their queue for ever)."""

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(1.0)
        os._exit(0)

    threading.Thread(target=watch, name="parent-watch", daemon=True).start()


def _started(parent: int) -> None:
    """A spawned determination process: warmed up, and watching its parent."""
    _outlive_no_parent(parent)
    warm_up()


def _pool(processes: int) -> Executor:
    """Processes for determinations, each ending when the worker does. Forked where the platform allows (they
    start with the tables and the NLP pipeline this process has loaded), each warmed up otherwise."""
    methods = multiprocessing.get_all_start_methods()
    if "fork" in methods:
        warm_up()
        return ProcessPoolExecutor(processes, mp_context=multiprocessing.get_context("fork"),
                                   initializer=_outlive_no_parent, initargs=(os.getpid(),))  # fmt: skip
    return ProcessPoolExecutor(processes, initializer=_started, initargs=(os.getpid(),))


def version_key(resource: JSON) -> str:
    """The idempotency key of one version of an EHR resource (``ehr:Type/id/_history/version``), read without
    trusting its shape: an id or version that is not a short string counts as none."""

    def part(value: Any, default: str) -> str:
        return value if isinstance(value, str) and FHIR_ID.fullmatch(value) else default

    meta = resource.get("meta")
    version = meta.get("versionId") if isinstance(meta, dict) else None
    return f"ehr:{resource['resourceType']}/{part(resource.get('id'), 'no-id')}/_history/{part(version, '1')}"


def _last_updated(resource: JSON) -> str | None:
    """A resource's ``meta.lastUpdated`` when it is an instant (a hostile EHR's ``meta`` may be anything)."""
    meta = resource.get("meta")
    value = meta.get("lastUpdated") if isinstance(meta, dict) else None
    if not isinstance(value, str):
        return None
    try:
        micros(value)
    except (ValueError, OverflowError):
        return None
    return value


def _bounded(resource: JSON) -> bool:
    """Whether a resource an EHR's search included is within the input limits (a hostile one is left out of the
    page queued: its patient's context is then read on its own)."""
    try:
        check_tree(resource)
    except MappingError:
        return False
    return True


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
        policy: Policy,
        processes: int = 1,
        lease: float = 120.0,
        limits: Limits = DEFAULT_LIMITS,
        attachment_url: str | None = None,
    ) -> None:
        self.store = store
        self.ehr = ehr
        self.forwarder = forwarder
        self.forward = forward
        self.page_size = page_size
        self.tasks = tasks
        self.policy = policy
        #: Determinations run on this many processes (1: in this one).
        self.processes = processes
        self._reader: ContextReader | None = None
        self._pool: Executor | None = None
        #: Several workers on one state share the work by leases, one per request type's cursor (and one on
        #: reporting reviews): each held by one worker at a time, renewed every page, free again after
        #: ``lease`` seconds when its holder dies.
        self.lease = lease
        #: How much one request's context may hold (the service's configured limits).
        self.limits = limits
        self.holder = f"{socket.gethostname()[:40]}:{os.getpid()}:{secrets.token_hex(4)}"
        self.held: set[str] = set()
        #: The adapter's ``$submit-attachment``: with it, documentation is asked of the EHR with CDex Tasks.
        self.attachment_url = attachment_url
        self._documentation: DocumentationRequests | None = None

    @property
    def documentation(self) -> DocumentationRequests | None:
        """The CDex documentation requests to the EHR (None: not asked)."""
        if self.attachment_url is not None and self._documentation is None:
            self._documentation = DocumentationRequests(self.store, self.ehr, self.context, forward=self.forward,
                                                        policy=self.policy, lease=self.lease)  # fmt: skip
        return self._documentation

    def searchable(self, rtype: str) -> set[str]:
        """The search parameters the EHR declares for a resource type."""
        return self.reader.capabilities.search_params.get(rtype, set())

    def post_task(self, task: JSON) -> None:
        """Write a Task to the EHR by conditional update on its identifier: created the first time, brought up
        to date after (a physician's final answer), never duplicated by a retry."""
        identifier = task["identifier"][0]
        self.ehr.conditional_update(task, {"identifier": f"{identifier['system']}|{identifier['value']}"})

    def pay(self, task: JSON, key: str) -> bool:
        """Write an owed Task to the EHR and settle it; a failure leaves it owed, for the next pass."""
        try:
            self.post_task(task)
        except AdapterError as exc:
            log.warning("a Task could not be written to the EHR (%s); the next pass tries again", exc.code)
            return False
        self.store.settle(EHR_TASK, key)
        return True

    def pay_owed(self) -> int:
        """Write the Tasks still owed to the EHR a lease after they were kept (their worker stopped, or the EHR
        failed; never one its worker is writing now: two writes at once could make two Tasks); the number
        written."""
        owed = self.store.dead_letters(owed_before=time.time() - self.lease)
        return sum(self.pay(letter.payload["task"], letter.item_key) for letter in owed if letter.payload)

    def write_task(self, task: JSON, key: str) -> None:
        """The Task back to the EHR; a failure goes to the dead letters (the decision itself is kept)."""
        try:
            self.post_task(task)
        except AdapterError as exc:
            self.store.dead_letter("ehr-task", key, f"[{exc.code}] {exc.message}", {"task": task})

    @property
    def reader(self) -> ContextReader:
        """How context is read from this EHR (its CapabilityStatement, read once)."""
        if self._reader is None:
            self._reader = ContextReader(self.ehr, Capabilities.of(self.ehr))
        return self._reader

    def context(self, request: JSON) -> JSON:
        """A collection Bundle: the request (ServiceRequest, MedicationRequest or DeviceRequest) first, then what
        the EHR knows about its patient."""
        patients = self.reader.read([request])
        return context_bundle(request, next(iter(patients.values()), []))

    def admit(self, request: JSON, report: PassReport, *, validate: bool = True) -> str | None:
        """The idempotency key of a request version still to decide; None (counted) when it is already done
        or invalid (a dead letter, once per request version: the key is marked done with it). Without
        ``validate`` only its bounds are checked (enough to queue it; it is validated when it is decided)."""
        key = version_key(request)
        if self.store.claimed(key):
            report.skipped += 1
            return None
        try:
            check_tree(request)  # depth first, without recursion: nothing below may recurse into it unbounded
            if validate:
                check_resource(request)
            if not request.get("id"):
                raise MappingError(f"a {request.get('resourceType')} without an id", location="id")
        except MappingError as exc:  # a server's answer is checked like any other input
            ref = key.removeprefix("ehr:").rsplit("/_history/", 1)[0]
            self.store.dead_letter("ehr", key, f"[{exc.code}] {exc.message}", {"reference": ref}, processed=True)
            report.dead += 1
            return None
        return key

    def bundles(self, requests: list[JSON], *, included: list[JSON]) -> list[JSON | AdapterError]:
        """Each request's context Bundle, the page's context read at once; when that read fails for a reason
        other than an unreachable or overloaded EHR, each request's on its own (so one bad request cannot
        hold up the page, and its error is its own)."""
        try:
            patients = self.reader.read(requests, included)
            return [*context_bundles(requests, patients)]
        except EHR_FAILURES:
            raise  # the EHR fails, not the request: stop the pass, the cursor stays, the next pass retries
        except AdapterError:
            log.warning("the page's context could not be read at once; reading it request by request")
        out: list[JSON | AdapterError] = []
        for request in requests:
            try:
                out.append(self.context(request))
            except EHR_FAILURES:
                raise
            except AdapterError as exc:
                out.append(exc)
        return out

    def checked(self, bundles: list[JSON | AdapterError], valid: set[int]) -> list[JSON | AdapterError]:
        """Each context Bundle checked at the edge (its error in its place), here rather than where it is
        determined, so that a resource several of the page's Bundles hold (the patient's context, shared by the
        patient's requests) is validated once: ``valid`` holds the ids of those validated already."""
        out: list[JSON | AdapterError] = []
        for bundle in bundles:
            try:
                out.append(bundle if isinstance(bundle, AdapterError) else check_inbound(
                    bundle, version="R5" if is_r5(bundle) else "R4", limits=self.limits, valid=valid))  # fmt: skip
            except AdapterError as exc:
                out.append(exc)
        return out

    def determine(self, bundles: list[JSON | AdapterError]) -> Iterator[Decided | AdapterError]:
        """Determine every checked context Bundle, in order: on the pool's processes when there is one (all
        started at once, collected as the iterator is read), else as it is read."""
        work = [b for b in bundles if not isinstance(b, AdapterError)]
        done: Iterator[Decided | AdapterError]
        pool = self.pool()
        if pool is not None and len(work) > 1:
            chunk = max(1, len(work) // (self.processes * 4))
            done = iter(pool.map(_determine, work, [self.policy] * len(work), [self.limits] * len(work),
                                 chunksize=chunk))  # fmt: skip
        else:
            done = (_determine(b, self.policy, self.limits) for b in work)
        return (b if isinstance(b, AdapterError) else next(done) for b in bundles)

    def dead(self, request: JSON, key: str, error: AdapterError, report: PassReport) -> None:
        """A request that cannot be determined: a dead letter with the reason (and its key marked done)."""
        ref = f"{request['resourceType']}/{request['id']}"
        self.store.dead_letter("ehr", key, f"[{error.code}] {error.message}", {"reference": ref}, processed=True)
        self.store.audit("worker", "determine", ref, f"dead-letter {error.code}")
        report.dead += 1

    def start_page(self, page: Page, report: PassReport) -> Started:
        """Admit a page's requests, read their context and start their determinations."""
        todo = [(request, key) for request in page.requests if (key := self.admit(request, report)) is not None]
        valid = {id(request) for request, _ in todo}  # validated on admission
        contexts = self.checked(page.contexts([r for r, _ in todo]), valid) if todo else []
        outcomes = self.determine(contexts) if todo else iter(())
        return Started(page, todo, outcomes, contexts)

    def finish_page(self, started: Started, report: PassReport) -> None:
        """Record a page's answers in order, in one transaction, then say it is done (the cursor moves past
        it) and tell the EHR."""
        kept: list[tuple[JSON, str, Decided, JSON]] = []
        for (request, key), outcome, context in zip(started.todo, started.outcomes, started.contexts, strict=True):
            if isinstance(outcome, AdapterError):
                self.dead(request, key, outcome, report)
            elif not isinstance(context, AdapterError):  # a context that could not be read is its outcome's error
                kept.append((request, key, outcome, context))
        owed = [ehr_task(request, decided.response) if self.tasks else None for request, _, decided, _ in kept]
        url = self.attachment_url
        asks = [
            owed_asks(request, decided, url, self.policy.deadlines) if url else [] for request, _, decided, _ in kept
        ]
        answered = self.store.record_all([
            replace(self.recording(decided, key, context,
                                   audited=AuditRow("worker", "determine", f"{request['resourceType']}/{request['id']}",
                                                    str(decided.response.get("outcome")))),
                    ehr_task=task, asks=ask)
            for (request, key, decided, context), task, ask in zip(kept, owed, asks, strict=True)
        ])  # fmt: skip
        report.decided += len(kept)
        started.page.done()
        # each Task owed was kept with its answer: written now, or by a later pass if this one stops first; only
        # for the answers this worker stored (another that got there first owes its own)
        for (_, key, decided, _), task, stored in zip(kept, owed, answered, strict=True):
            if task is not None and stored == decided.response["id"]:
                self.pay(task, key)
        if self.documentation is not None:  # likewise the documentation requests kept with them
            self.documentation.write_owed([a for ask, stored in zip(asks, answered, strict=True) for a in ask
                                           if a.claim_response_id == stored])  # fmt: skip

    def recording(self, decided: Decided, key: str, context: JSON, *, audited: AuditRow | None = None) -> Recording:
        """What the store keeps of a decision, its payer copy (when forwarding) a transaction that writes the
        resources the answer names beside it, so that its references resolve on the payer."""
        kept = recording(decided, forward=self.forward, key=key, audited=audited)
        if kept.forward is None:
            return kept
        rid = decided.response["id"]
        return replace(
            kept, forward=payer_transaction(kept.forward, rid, context, identifier_system=DETERMINATION_SYSTEM)
        )

    def process_pages(self, pages: Iterable[Page], report: PassReport) -> None:
        """Pages in order, each page's determinations running while the one before it is recorded."""
        previous: Started | None = None
        for page in pages:
            current = self.start_page(page, report)
            if previous is not None:
                self.finish_page(previous, report)
            previous = current
        if previous is not None:
            self.finish_page(previous, report)

    def polled_pages(self, report: PassReport) -> Iterator[Page]:
        """The pages of requests changed since the cursors, shared with every other worker on this state: what
        this worker reads from the EHR (a request type whose cursor it holds) is queued in the state, a few pages
        ahead, and each worker takes the next free page from the queue, so that several workers decide
        different pages at once. A worker ends its pass when no page is free and nobody reads any more."""
        reading = self.read_pages(REQUEST_RESOURCES, report)
        more = True
        while True:
            while more and self.store.pages_free() < READ_AHEAD:
                more = next(reading, False)
            taken = self.store.take_page(self.holder, self.lease)
            if taken is not None:
                yield Page(taken.requests, partial(self.bundles, included=taken.included),
                           partial(self.store.page_done, taken.id))  # fmt: skip
                continue
            if more:
                continue  # another worker took the pages queued meanwhile: read on
            died = [rtype for rtype in REQUEST_RESOURCES if self.stopped_reading(cursor_name(rtype))]
            if died:  # a reader's lease ran out mid-read: what it left unread is read here
                reading, more = self.read_pages(died, report), True
                continue
            if not self.readers():
                return
            time.sleep(PAGE_WAIT)  # pages are on their way from another worker's reading

    def read_pages(self, rtypes: Iterable[str], report: PassReport) -> Iterator[bool]:
        """Read the requests of each type whose cursor this worker can take, changed since that cursor, a page at
        a time: each page queued for the workers with the cursor moved past it (yields True after each)."""
        for rtype in rtypes:
            name = cursor_name(rtype)
            if not self.take(name):
                continue  # another worker is reading this type's changes
            cursor = self.store.cursor(name) or EPOCH
            params = {"_lastUpdated": f"ge{cursor}", "_sort": "_lastUpdated", "_count": self.page_size}
            params.update({p: v for p, v in (("status", "active"), ("intent", "order")) if p in self.searchable(rtype)})
            if rtype in self.reader.capabilities.include_subject:
                params["_include"] = f"{rtype}:subject"
            for found in self.ehr.search_pages(rtype, params):
                if not self.take(name):
                    break  # the lease ran out and another worker took over from the cursor
                entries = search_entries(found)
                matches = [r for r, mode in entries if mode == "match" and r["resourceType"] == rtype]
                included = [r for r, mode in entries if mode == "include"]
                # a server that cannot filter on status and intent: filtered here
                requests = [r for r in matches if (r.get("status"), r.get("intent")) == ("active", "order")]
                report.seen += len(requests)
                newest = max((u for r in matches if (u := _last_updated(r))), key=micros, default=None)
                # queued only what is still to decide and can be kept (a bad request is a dead letter here, once)
                todo = [r for r in requests if self.admit(r, report, validate=False) is not None]
                self.store.queue_page(name, todo, [r for r in included if _bounded(r)], newest)
                yield True
            self.store.end_lease(f"lease:{name}", self.holder)  # read to the end: another may read what comes next
            self.held.discard(name)

    def readers(self) -> set[str]:
        """The request types' cursors another worker is reading now."""
        moment, readers = time.time(), set()
        for name in (cursor_name(rtype) for rtype in REQUEST_RESOURCES):
            held = self.store.lease_of(f"lease:{name}")
            if held is not None and held[0] > moment and held[1] != self.holder:
                readers.add(name)
        return readers

    def stopped_reading(self, name: str) -> bool:
        """Whether the worker that read the cursor ``name`` stopped without finishing (its lease ran out; a reader
        that read to the end gives its lease up)."""
        held = self.store.lease_of(f"lease:{name}")
        return held is not None and 0 < held[0] <= time.time()

    def take(self, name: str) -> bool:
        """Take or renew this worker's lease on ``name`` (a cursor); False while another worker holds it."""
        if self.store.lease(f"lease:{name}", self.holder, self.lease):
            self.held.add(name)
            return True
        self.held.discard(name)
        return False

    def release(self) -> None:
        """Give up every lease this worker holds (another worker may take them at once)."""
        for name in sorted(self.held):
            self.store.end_lease(f"lease:{name}", self.holder)
        self.held.clear()

    def run_once(self) -> PassReport:
        """One pass over what changed since the cursors, a page at a time, delivering to the payer meanwhile."""
        report = PassReport()
        forwarder = self.forwarder
        started = forwarder is not None and not forwarder.running
        before = forwarder.delivered if forwarder is not None else 0
        self.pool()  # forked before the forwarder's thread starts: no lock is copied held
        if forwarder is not None and started:
            forwarder.start()  # answers go out while the next pages are decided
        try:
            self.process_pages(self.polled_pages(report), report)
            if self.tasks and self.take(REVIEWS_CURSOR):
                self.pay_owed()
                self.report_reviews()
            if self.documentation is not None and self.take(DOCUMENTATION_LEASE):
                self.documentation.write_owed()
                self.documentation.follow()
        finally:
            self.release()
            if forwarder is not None and started:
                forwarder.stop()
        if forwarder is not None:
            forwarder.drain()
            report.delivered = forwarder.delivered - before
        return report

    def pool(self) -> Executor | None:
        """The determination processes, started at the first call (None: determinations run here)."""
        if self.processes > 1 and self._pool is None:
            self._pool = _pool(self.processes)
        return self._pool

    def close(self) -> None:
        """Stop the determination processes (if any were started)."""
        if self._pool is not None:
            self._pool.shutdown(cancel_futures=True)  # queued determinations dropped: their page is read again
            self._pool = None

    def __enter__(self) -> SyncWorker:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def report_reviews(self) -> int:
        """Bring the EHR Task of each request a physician has decided since the last pass up to date with
        the final ClaimResponse; the number written. Requests that did not come from the EHR (a PAS
        ``$submit``) have no EHR Task and are passed over; a failed write goes to the dead letters."""
        cursor = int(self.store.cursor(REVIEWS_CURSOR) or 0)
        written = 0
        service_request = mappings().tables.fhir.extensions.service_request
        while batch := self.store.completed_reviews(cursor):
            for updated, task in batch:
                response = self.store.claim_response(response_of(task))
                refs = [
                    r.get("reference", "") for i in (response or {}).get("item", []) for r in values(i, service_request)
                ]
                rtype, rid = typed_id(refs[0] if refs else "") or ("", "")
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
            try:
                request = self.ehr.read(*(typed_id(reference) or ("", "")))
                context = self.context(request)
                decided = decide(context, policy=self.policy, limits=self.limits)
            except AdapterError as exc:
                report.errors.append(f"{reference}: [{exc.code}] {exc.message}")
                continue
            self.store.record_all([self.recording(decided, key, context)])
            self.store.replayed(letter.id)
            report.decided += 1
        if self.forwarder is not None:
            report.delivered = self.forwarder.drain()
        return report
