"""The answers: each ClaimResponse with its versions, review Tasks, outbox entry, idempotency and business keys,
the resources it names and its audit row, written in one transaction; and what changes an answer later (a
Claim update, an attachment, a physician's decision, a revision of a case), each its own transaction too.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import orjson
from sqlalchemy import Connection, func, insert, select, update

from adapter.errors import RequestConflictError, ReviewClosedError, StateError
from adapter.review.cases import CaseContext
from adapter.review.tasks import ReviewTask, decision_of, response_of, sequence_of
from adapter.service.schema import (
    attachment_requests,
    claim_response_versions,
    claim_responses,
    dead_letters,
    inquiry_keys,
    outbox,
    processed,
    review_cases,
    tasks,
)
from adapter.service.schema import resources as stored_resources
from adapter.service.state.attachments import AttachmentRequest, ask_row
from adapter.service.state.audit import AuditRow, write_audit
from adapter.service.state.db import instants, micros, now
from adapter.service.state.outbox import EHR_TASK, OWED
from adapter.service.state.progress import Progress
from adapter.service.state.reviews import task_row
from adapter.service.state.subscriptions import add_senders, notify
from adapter.types import JSON


@dataclass
class Recording:
    """One answer to keep (``Store.record_all``): the ClaimResponse, what it answers, its payer copy, its keys,
    its review Tasks and its audit row."""

    response: JSON
    patient: str | None
    request: str | None
    forward: JSON | None
    key: str | None = None
    also: Sequence[str] = ()
    reviews: Sequence[ReviewTask] = ()
    audited: AuditRow | None = None
    #: (member id, provider NPI) pairs a PAS inquiry finds this answer by.
    inquiry: Sequence[tuple[str, str]] = ()
    #: The request's resources (each with its id) the service serves at /fhir/{type}/{id}.
    resources: Sequence[JSON] = ()
    #: (sending system, client) pairs: whose request this answer is (subscriptions for that sending system
    #: are notified of each version) and which client sent it (so it may subscribe).
    senders: Sequence[tuple[str, str]] = ()
    #: CDex attachment-request Tasks owed to the EHR for this answer's pended items (the worker's
    #: ``AttachmentRequest``): kept ``owed`` in the same transaction, so a worker killed before writing them
    #: leaves them to the next pass.
    asks: Sequence[AttachmentRequest] = ()
    #: A Task owed to the EHR about this answer (the worker's ``service.ehr_task``): kept as an ``ehr-task``
    #: dead letter in the same transaction, settled once written, so a worker killed before writing it
    #: leaves it to the next pass instead of losing it.
    ehr_task: JSON | None = None
    #: The case this answer is, as a reviewer reads it (its patient, history and items).
    case: CaseContext | None = None


def keep_version(db: Connection, response: JSON, dumped: str) -> None:
    """Keep this version of a ClaimResponse for _history (``dumped``: its JSON, as its row holds it too)."""
    version = int(response.get("meta", {}).get("versionId", 1))
    db.execute(_INSERT_VERSION, {"id": response["id"], "version": version, "resource": dumped})


# The statements a new answer writes, built once: made anew per answer, building them cost more than running them.
_INSERT_RESPONSE, _INSERT_VERSION, _INSERT_TASKS, _INSERT_CASE, _INSERT_OUTBOX, _INSERT_INQUIRY, _INSERT_HELD = (
    insert(table) for table in (claim_responses, claim_response_versions, tasks, review_cases, outbox, inquiry_keys,
                                stored_resources)
)  # fmt: skip


@dataclass
class _Rows:
    """The rows of one ``Recording`` whose JSON is made before the writer's turn (the turn is one at a time)."""

    recording: Recording
    response: str
    tasks: list[dict[str, Any]]
    case: dict[str, Any] | None
    forward: str | None
    held: list[dict[str, Any]]

    @classmethod
    def of(cls, r: Recording) -> _Rows:
        rid = r.response["id"]
        return cls(
            r,
            orjson.dumps(r.response).decode(),
            [{**task_row(review.resource), "documents": orjson.dumps(review.documents).decode()}
             for review in r.reviews],
            None if r.case is None else {"id": rid, "patient": r.case.patient_key,
                                         "received_us": micros(r.case.received.isoformat()),
                                         "context": r.case.model_dump_json()},
            None if r.forward is None else orjson.dumps(r.forward).decode(),
            [{"type": x["resourceType"], "id": x["id"], "claim_response_id": rid, "resource": orjson.dumps(x).decode()}
             for x in r.resources],
        )  # fmt: skip


class Answers(Progress):
    """The answers of the state store (one part of ``Store``)."""

    def record_all(self, recordings: Sequence[Recording]) -> list[str]:
        """Store each ClaimResponse with its review Tasks, queue it for the payer and claim its idempotency key
        (and business keys), with its audit row, all in one transaction (one commit for a page of answers).
        Returns, for each, the id of the ClaimResponse that answers its key: this one, or the one stored first
        when another request (or replica) claimed the key before; a business key already claimed by other
        content raises ``RequestConflictError`` and stores nothing."""
        rows = [_Rows.of(r) for r in recordings]
        with self.transaction() as db:
            return [self._record(db, row) for row in rows]

    def _record(self, db: Connection, rows: _Rows) -> str:
        r, response = rows.recording, rows.recording.response
        if r.key is not None and not self._claim(db, r.key, response["id"]):
            existing = db.execute(select(processed.c.claim_response_id).where(processed.c.item_key == r.key))
            return str(existing.scalar_one())
        for business_key in r.also:
            if not self._claim(db, business_key, response["id"]):
                raise RequestConflictError()
        updated = response["meta"]["lastUpdated"]
        # each statement with its values apart (executemany for several rows): compiled once per process, not
        # per row
        db.execute(
            _INSERT_RESPONSE,
            {
                "id": response["id"],
                "patient": r.patient,
                "request": r.request,
                "outcome": response.get("outcome"),
                "last_updated": updated,
                "updated_us": micros(updated),
                "resource": rows.response,
            },
        )
        if rows.tasks:
            db.execute(_INSERT_TASKS, rows.tasks)
        if rows.case is not None:
            db.execute(_INSERT_CASE, rows.case)
        if rows.forward is not None:
            db.execute(_INSERT_OUTBOX, {"claim_response_id": response["id"], "payload": rows.forward})
        if r.ehr_task is not None:
            owed = {"task": r.ehr_task}
            db.execute(insert(dead_letters).values(source=EHR_TASK, item_key=r.key or response["id"], reason=OWED,
                                                   payload=orjson.dumps(owed).decode(), created=now()))  # fmt: skip
        for ask in r.asks:
            db.execute(insert(attachment_requests).values(**ask_row(ask)))
        if r.inquiry:
            pairs = [{"member": m, "provider": p, "claim_response_id": response["id"]} for m, p in set(r.inquiry)]
            db.execute(_INSERT_INQUIRY, pairs)
        keep_version(db, response, rows.response)
        add_senders(db, response["id"], r.senders)
        notify(db, response)
        if rows.held:
            db.execute(_INSERT_HELD, rows.held)
        if r.audited is not None:
            write_audit(db, *r.audited)
        return str(response["id"])

    def claim_response(self, rid: str) -> JSON | None:
        with self.reading() as db:
            row = db.execute(select(claim_responses.c.resource).where(claim_responses.c.id == rid)).scalar()
        return orjson.loads(row) if row else None

    def _replace(self, db: Connection, response: JSON) -> str:
        """Store the next version of a ClaimResponse (and keep it for _history); its lastUpdated."""
        updated, dumped = str(response["meta"]["lastUpdated"]), orjson.dumps(response).decode()
        db.execute(
            update(claim_responses)
            .where(claim_responses.c.id == response["id"])
            .values(outcome=response.get("outcome"), last_updated=updated, updated_us=micros(updated),
                    resource=dumped)
        )  # fmt: skip
        keep_version(db, response, dumped)
        return updated

    def claim_response_versions(self, rid: str) -> list[JSON]:
        """Every version of a ClaimResponse, newest first (none: no such ClaimResponse)."""
        table = claim_response_versions
        with self.reading() as db:
            rows = db.execute(select(table.c.resource).where(table.c.id == rid).order_by(table.c.version.desc()))
            return [orjson.loads(r) for r in rows.scalars()]

    def resource(self, rtype: str, rid: str) -> JSON | None:
        """A resource a PAS request held, as stored with its answer."""
        with self.reading() as db:
            row = db.execute(
                select(stored_resources.c.resource).where(
                    stored_resources.c.type == rtype, stored_resources.c.id == rid
                )
            ).scalar()
        return orjson.loads(row) if row else None

    def resources_of(self, rid: str) -> list[JSON]:
        """The resources stored with a ClaimResponse's requests (the first and its updates)."""
        table = stored_resources
        with self.reading() as db:
            rows = db.execute(select(table.c.resource).where(table.c.claim_response_id == rid)).scalars()
            return [orjson.loads(r) for r in rows]

    def inquired(self, members: Sequence[str], providers: Sequence[str]) -> list[str]:
        """The ClaimResponses a PAS inquiry finds: submitted for one of these member ids with one of these
        provider NPIs (in a stable order)."""
        if not members or not providers:
            return []
        table = inquiry_keys
        with self.reading() as db:
            rows = db.execute(
                select(table.c.claim_response_id)
                .distinct()
                .join(claim_responses, claim_responses.c.id == table.c.claim_response_id)
                .where(table.c.member.in_(list(members)), table.c.provider.in_(list(providers)))
                .order_by(table.c.claim_response_id)
            ).scalars()
            return [str(r) for r in rows]

    def search(
        self,
        *,
        patient: str | None = None,
        request: str | None = None,
        outcome: str | None = None,
        updated: Sequence[tuple[str, int]] = (),
        offset: int = 0,
        count: int = 20,
    ) -> tuple[int, list[JSON]]:
        """(total, one page) of ClaimResponses; ``updated`` holds (operator, microseconds) bounds on
        ``meta.lastUpdated`` with operator one of ``ge gt le lt``."""
        table = claim_responses
        where = [column == value for column, value in ((table.c.patient, patient), (table.c.request, request),
                                                        (table.c.outcome, outcome)) if value is not None]  # fmt: skip
        where += instants(table.c.updated_us, updated)
        with self.reading() as db:
            total = db.execute(select(func.count()).select_from(table).where(*where)).scalar_one()
            rows = db.execute(
                select(table.c.resource)
                .where(*where)
                .order_by(table.c.updated_us, table.c.id)
                .limit(count)
                .offset(offset)
            ).scalars()
            return int(total), [orjson.loads(r) for r in rows]

    def update_answer(
        self,
        response: JSON,
        *,
        cancel: set[int],
        reviews: Sequence[ReviewTask],
        forward: JSON | None,
        key: str,
        also: Sequence[str],
        inquiry: Sequence[tuple[str, str]],
        resources: Sequence[JSON],
        who: str,
        senders: Sequence[tuple[str, str]] = (),
        action: str = "claim update",
    ) -> JSON:
        """Keep the next version of a ClaimResponse that a Claim update (or an attachment: ``action``) made, in one
        transaction: the version,
        the open review Tasks of ``cancel`` (item sequences) cancelled, the new ``reviews``, the payer copy,
        the update's keys (naming this ClaimResponse), its inquiry keys and resources, the audit row. Another
        version made meanwhile (a physician's decision) refuses it (``RequestConflictError``: send it again)."""
        rid = response["id"]
        with self.transaction() as db:
            stored = db.execute(
                select(claim_responses.c.resource).where(claim_responses.c.id == rid).with_for_update()
            ).scalar()
            version = int(response["meta"]["versionId"])
            if stored is None or int(orjson.loads(stored)["meta"]["versionId"]) + 1 != version:
                raise RequestConflictError("the answer changed while the update was decided; send the update again")
            for business_key in (key, *also):
                if not self._claim(db, business_key, rid):
                    raise RequestConflictError()
            updated = self._replace(db, response)
            add_senders(db, rid, senders)
            notify(db, response)
            focus = [f"ClaimResponse/{rid}", (response.get("request") or {}).get("reference") or ""]
            waiting = select(tasks.c.resource).where(tasks.c.focus.in_(focus), tasks.c.status == "requested")
            open_tasks = db.execute(waiting).scalars()
            for task in (orjson.loads(t) for t in open_tasks):
                if response_of(task) == rid and sequence_of(task) in cancel:
                    next_version = str(int(task["meta"]["versionId"]) + 1)
                    task.update(status="cancelled", lastModified=updated,
                                meta={**task["meta"], "versionId": next_version, "lastUpdated": updated})  # fmt: skip
                    db.execute(update(tasks).where(tasks.c.id == task["id"]).values(**task_row(task)))
            for review in reviews:
                db.execute(insert(tasks).values(**task_row(review.resource),
                                                documents=orjson.dumps(review.documents).decode()))  # fmt: skip
            if forward is not None:
                db.execute(insert(outbox).values(claim_response_id=rid, payload=orjson.dumps(forward).decode()))
            rows = [{"member": m, "provider": p, "claim_response_id": rid} for m, p in set(inquiry)]
            for row in rows:  # an update names the same member and provider as before: only new pairs are kept
                exists = select(inquiry_keys.c.member).where(*(inquiry_keys.c[k] == v for k, v in row.items()))
                if db.execute(exists).first() is None:
                    db.execute(insert(inquiry_keys).values(**row))
            if resources:
                held = [{"type": x["resourceType"], "id": x["id"], "claim_response_id": rid,
                         "resource": orjson.dumps(x).decode()} for x in resources]  # fmt: skip
                db.execute(insert(stored_resources), held)
            target = f"ClaimResponse/{rid}/_history/{response['meta']['versionId']}"
            write_audit(db, who, action, target, str(response.get("outcome")))
        return response

    def complete_review(
        self,
        task_id: str,
        decide: Callable[[JSON, JSON], tuple[JSON, JSON]],
        *,
        forward: Callable[[JSON], JSON] | None,
        who: str,
    ) -> tuple[JSON, JSON] | None:
        """Apply a physician's decision in one transaction: ``decide(task, claim_response)`` gives both next
        versions (or raises, changing nothing); they are stored, the ClaimResponse is queued for the payer
        and the audit log records who decided what. None when there is no such Task. Two reviewers racing on
        one Task are serialised by the row lock: the second sees it completed."""
        with self.transaction() as db:
            row = db.execute(select(tasks.c.resource).where(tasks.c.id == task_id).with_for_update()).first()
            if row is None:
                return None
            task = orjson.loads(row.resource)
            response_id = response_of(task)
            stored = self._locked_answer(db, response_id, f"the review Task {task_id}")
            task, response = decide(task, stored)
            db.execute(update(tasks).where(tasks.c.id == task_id).values(**task_row(task)))
            self._publish(db, response, forward)
            action = decision_of(task) or "?"
            target = f"Task/{task_id} ClaimResponse/{response_id}/_history/{response['meta']['versionId']}"
            write_audit(db, who, f"review decision {action}", target, "completed")
        return task, response

    def revise_case(
        self,
        rid: str,
        task_ids: Sequence[str],
        revise: Callable[[list[JSON], JSON], tuple[list[JSON], JSON | None]],
        *,
        forward: Callable[[JSON], JSON] | None,
        who: str,
        action: str,
    ) -> list[JSON]:
        """Change open review Tasks of one case short of deciding them (a draft, a call note, a hand-off, a request
        for documentation) in one transaction: ``revise(tasks, claim_response)`` gives the Tasks' next versions
        and, when the answer changes too, the ClaimResponse's next version (stored, notified and queued for the
        payer); or raises, changing nothing. The Tasks are locked as ``complete_review`` locks one, so a decision
        racing it waits; a Task decided meanwhile is ``ReviewClosedError``."""
        with self.transaction() as db:
            rows = db.execute(
                select(tasks.c.resource).where(tasks.c.id.in_(list(task_ids)), tasks.c.claim_response == rid)
                .order_by(tasks.c.id).with_for_update()
            ).scalars()  # fmt: skip
            found = [orjson.loads(r) for r in rows]
            if len(found) != len(set(task_ids)):
                raise ReviewClosedError("a review Task of this case is not here", location="Task.id")
            if any(t["status"] != "requested" for t in found):
                raise ReviewClosedError("this review Task is already completed; the first decision stands",
                                        location="Task.status")  # fmt: skip
            changed, response = revise(found, self._locked_answer(db, rid, f"the review Tasks of case {rid}"))
            for task in changed:
                db.execute(update(tasks).where(tasks.c.id == task["id"]).values(**task_row(task)))
            target = f"ClaimResponse/{rid}"
            if response is not None:
                self._publish(db, response, forward)
                target += f"/_history/{response['meta']['versionId']}"
            write_audit(db, who, action, target, f"{len(changed)} Tasks")
        return changed

    @staticmethod
    def _locked_answer(db: Connection, rid: str, holder: str) -> JSON:
        """A ClaimResponse read for its next version, its row locked until the transaction ends."""
        stored = db.execute(
            select(claim_responses.c.resource).where(claim_responses.c.id == rid).with_for_update()
        ).scalar()
        if stored is None:
            raise StateError(f"{holder} focuses a ClaimResponse that is not stored")
        found: JSON = orjson.loads(stored)
        return found

    def _publish(self, db: Connection, response: JSON, forward: Callable[[JSON], JSON] | None) -> None:
        """A ClaimResponse's next version stored, its subscribers notified and, with ``forward``, queued for the
        payer."""
        self._replace(db, response)
        notify(db, response)
        if forward is not None:
            db.execute(
                insert(outbox).values(
                    claim_response_id=response["id"], payload=orjson.dumps(forward(response)).decode()
                )
            )
