"""The service's durable state: ClaimResponses made, the outbox to the payer, the worker's cursor, dead
letters, idempotency keys and the audit log.

SQLAlchemy Core over SQLite (a file, no set-up; the default) or PostgreSQL (``postgresql://...``, psycopg)
so that several replicas share one state; the same statements for both. The tables come from the Alembic
migrations beside this module. Every write that must not be lost commits before the caller answers; a
request's answer, its outbox entry and its idempotency key are one transaction, and the key is claimed
with one atomic ``INSERT ... ON CONFLICT DO NOTHING``, so replicas racing on the same request store one
answer. Any database failure is a ``StateError``. The audit log holds ids, actions and outcomes, never
clinical content.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Column, Connection, Engine, create_engine, event, func, insert, select, text, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.pool import StaticPool

from adapter.errors import RequestConflictError, StateError
from adapter.review.tasks import ReviewTask, decision_of, response_of, sequence_of
from adapter.service.schema import (
    attachment_requests,
    attachments,
    audit,
    claim_response_versions,
    claim_responses,
    cursors,
    dead_letters,
    inquiry_keys,
    notifications,
    outbox,
    processed,
    response_orgs,
    senders,
    subscriptions,
    tasks,
)
from adapter.service.schema import resources as stored_resources
from adapter.types import JSON

#: The dead letters of EHR Tasks: owed (written with their answer, not yet sent) or failed.
EHR_TASK = "ehr-task"
OWED = "[owed] not yet written to the EHR"
MIGRATIONS = Path(__file__).resolve().parent / "migrations"
#: A PostgreSQL advisory lock id: one replica migrates at a time.
_MIGRATION_LOCK = 0x1D_F41_2


def now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


def micros(instant: str) -> int:
    """An ISO instant (any zone, ``Z`` included; UTC when none) as microseconds since the epoch."""
    moment = datetime.fromisoformat(instant.replace("Z", "+00:00"))
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return int(moment.timestamp() * 1_000_000)


@dataclass
class OutboxItem:
    seq: int
    claim_response_id: str
    payload: JSON
    attempts: int


@dataclass
class Recording:
    """One answer to keep (``Store.record_all``): the ClaimResponse, what it answers, its payer copy, its keys,
    its review Tasks and its audit row (who, action, target)."""

    response: JSON
    patient: str | None
    request: str | None
    forward: JSON | None
    key: str | None = None
    also: Sequence[str] = ()
    reviews: Sequence[ReviewTask] = ()
    audited: tuple[str, str, str] | None = None
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


@dataclass
class DeadLetter:
    id: int
    source: str
    item_key: str
    reason: str
    payload: JSON | None


@dataclass
class AttachmentRequest:
    """A documentation request asked of the EHR as a CDex Task: its tracking id, the answer and line it is for,
    the EHR request whose context is read again, its status and the Task."""

    tracking: str
    claim_response_id: str
    line: int
    request: str
    due: str
    task: JSON
    status: str = "owed"
    ehr_id: str | None = None
    #: When it was kept or last changed.
    updated: str = ""


@dataclass
class HeldAttachment:
    """An attachment received and not yet answered (its request not known yet, or its process killed first)."""

    key: str
    tracking: str
    payload: JSON


def _engine(url: str) -> Engine:
    if url.startswith(("postgresql://", "postgres://")):
        return create_engine("postgresql+psycopg://" + url.split("://", 1)[1], pool_pre_ping=True)
    if url in ("sqlite://", "sqlite:///:memory:", ":memory:"):
        engine = create_engine("sqlite://", poolclass=StaticPool, connect_args={"check_same_thread": False})
    else:
        path = Path(url.removeprefix("sqlite:///"))
        path.parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(f"sqlite:///{path}", connect_args={"check_same_thread": False, "timeout": 10})

    @event.listens_for(engine, "connect")
    def _connect(connection: Any, _: Any) -> None:
        connection.isolation_level = None  # the driver's own transaction handling off: BEGIN below decides
        for pragma in ("journal_mode=WAL", "synchronous=FULL", "busy_timeout=10000"):
            connection.execute(f"PRAGMA {pragma}")

    @event.listens_for(engine, "begin")
    def _begin(connection: Connection) -> None:
        connection.exec_driver_sql("BEGIN IMMEDIATE")  # take the write lock now, not at the first write

    return engine


def _alembic(connection: Connection) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["connection"] = connection
    return config


class Store:
    """Thread-safe access to the state database (a pool of connections; one transaction per call)."""

    def __init__(self, url: str, *, migrate: bool = True) -> None:
        self.url = url
        try:
            self.engine = _engine(url)
            self._insert = postgresql.insert if self.engine.dialect.name == "postgresql" else sqlite.insert
            if migrate:
                self.upgrade()
        except SQLAlchemyError as exc:
            raise StateError(f"the state database cannot be opened: {_reason(exc)}") from exc

    def close(self) -> None:
        self.engine.dispose()

    # --- schema ---------------------------------------------------------------------------------------

    @staticmethod
    def head() -> str:
        return str(ScriptDirectory(str(MIGRATIONS)).get_current_head())

    def revision(self) -> str | None:
        """The schema revision the database is at (None: no migration has run on it)."""
        try:
            with self.engine.connect() as connection:
                return MigrationContext.configure(connection).get_current_revision()
        except SQLAlchemyError as exc:
            raise StateError(f"the state database cannot be opened: {_reason(exc)}") from exc

    def require_current(self) -> None:
        """Refuse to work on a state database whose schema is not the newest."""
        revision = self.revision()
        if revision != self.head():
            raise StateError(
                f"the state database is at schema {revision or 'none'}, not {self.head()}: run `imr-adapter db upgrade`"
            )

    def upgrade(self, revision: str = "head") -> None:
        """Run the migrations up to ``revision`` (one replica at a time on PostgreSQL)."""
        with self.engine.begin() as connection:
            if self.engine.dialect.name == "postgresql":
                connection.execute(text("SELECT pg_advisory_xact_lock(:id)"), {"id": _MIGRATION_LOCK})
            command.upgrade(_alembic(connection), revision)

    @contextmanager
    def transaction(self) -> Iterator[Connection]:
        """One atomic unit of work (committed on success, rolled back on error); driver errors -> StateError."""
        try:
            with self.engine.begin() as connection:
                yield connection
        except SQLAlchemyError as exc:
            raise StateError(f"the state database failed: {_reason(exc)}") from exc

    # --- claim responses and the outbox (one transaction: nothing made is left undelivered) -------

    def record_all(self, recordings: Sequence[Recording]) -> list[str]:
        """Store each ClaimResponse with its review Tasks, queue it for the payer and claim its idempotency key
        (and business keys), with its audit row, all in one transaction (one commit for a page of answers).
        Returns, for each, the id of the ClaimResponse that answers its key: this one, or the one stored first
        when another request (or replica) claimed the key before; a business key already claimed by other
        content raises ``RequestConflictError`` and stores nothing."""
        with self.transaction() as db:
            return [self._record(db, r) for r in recordings]

    def _record(self, db: Connection, r: Recording) -> str:
        response = r.response
        if r.key is not None and not self._claim(db, r.key, response["id"]):
            existing = db.execute(select(processed.c.claim_response_id).where(processed.c.item_key == r.key))
            return str(existing.scalar_one())
        for business_key in r.also:
            if not self._claim(db, business_key, response["id"]):
                raise RequestConflictError()
        updated = response["meta"]["lastUpdated"]
        db.execute(
            insert(claim_responses).values(
                id=response["id"],
                patient=r.patient,
                request=r.request,
                outcome=response.get("outcome"),
                last_updated=updated,
                updated_us=micros(updated),
                resource=orjson.dumps(response).decode(),
            )
        )
        for review in r.reviews:
            db.execute(
                insert(tasks).values(**_task_row(review.resource), documents=orjson.dumps(review.documents).decode())
            )
        if r.forward is not None:
            db.execute(
                insert(outbox).values(claim_response_id=response["id"], payload=orjson.dumps(r.forward).decode())
            )
        if r.ehr_task is not None:
            owed = {"task": r.ehr_task}
            db.execute(insert(dead_letters).values(source=EHR_TASK, item_key=r.key or response["id"], reason=OWED,
                                                   payload=orjson.dumps(owed).decode(), created=now()))  # fmt: skip
        for ask in r.asks:
            db.execute(insert(attachment_requests).values(**_ask_row(ask)))
        if r.inquiry:
            rows = [{"member": m, "provider": p, "claim_response_id": response["id"]} for m, p in set(r.inquiry)]
            db.execute(insert(inquiry_keys), rows)
        self._version(db, response)
        self._senders(db, response["id"], r.senders)
        self._notify(db, response)
        if r.resources:
            held = [{"type": x["resourceType"], "id": x["id"], "claim_response_id": response["id"],
                     "resource": orjson.dumps(x).decode()} for x in r.resources]  # fmt: skip
            db.execute(insert(stored_resources), held)
        if r.audited is not None:
            db.execute(insert(audit).values(**_audit_row(*r.audited, str(response.get("outcome")))))
        return str(response["id"])

    def _claim(self, db: Connection, key: str, claim_response_id: str | None) -> bool:
        """Claim an idempotency key in one atomic statement: False when it was already claimed."""
        statement = (
            self._insert(processed)
            .values(item_key=key, claim_response_id=claim_response_id, created=now())
            .on_conflict_do_nothing(index_elements=["item_key"])
            .returning(processed.c.item_key)
        )
        return db.execute(statement).first() is not None

    def processed(self, key: str) -> str | None:
        """The ClaimResponse recorded under an idempotency key (None: none, or the key is not claimed)."""
        with self.transaction() as db:
            return db.execute(select(processed.c.claim_response_id).where(processed.c.item_key == key)).scalar()

    def claimed(self, key: str) -> bool:
        """Whether an idempotency key is done: recorded with its answer, or marked with a dead letter."""
        with self.transaction() as db:
            return db.execute(select(processed.c.item_key).where(processed.c.item_key == key)).first() is not None

    def mark(self, key: str) -> None:
        """Mark a key done with no answer (a review session signed out: ``claimed`` on every replica)."""
        with self.transaction() as db:
            self._claim(db, key, None)

    def claim_response(self, rid: str) -> JSON | None:
        with self.transaction() as db:
            row = db.execute(select(claim_responses.c.resource).where(claim_responses.c.id == rid)).scalar()
        return orjson.loads(row) if row else None

    @staticmethod
    def _senders(db: Connection, rid: str, pairs: Sequence[tuple[str, str]]) -> None:
        """Which sending systems an answer belongs to, and which clients sent for them (new pairs only)."""
        for org in sorted({org for org, _ in pairs}):
            known = (response_orgs.c.claim_response_id == rid, response_orgs.c.org == org)
            if db.execute(select(response_orgs.c.org).where(*known)).first() is None:
                db.execute(insert(response_orgs).values(claim_response_id=rid, org=org))
        for org, client in sorted(set(pairs)):
            sent = select(senders.c.org).where(senders.c.org == org, senders.c.client == client)
            if db.execute(sent).first() is None:
                db.execute(insert(senders).values(org=org, client=client))

    @staticmethod
    def _notify(db: Connection, response: JSON) -> None:
        """An event for every active subscription of the answer's sending systems: this version, numbered in
        each subscription's own order (written with the version, so none is lost or made twice)."""
        orgs = select(response_orgs.c.org).where(response_orgs.c.claim_response_id == response["id"])
        wanted = select(subscriptions.c.id, subscriptions.c.events).where(
            subscriptions.c.org.in_(orgs), subscriptions.c.status == "active"
        )
        for sid, events in db.execute(wanted.with_for_update()).all():
            db.execute(update(subscriptions).where(subscriptions.c.id == sid).values(events=events + 1))
            version = int(response["meta"]["versionId"])
            db.execute(insert(notifications).values(
                subscription_id=sid, event_number=events + 1, kind="event-notification",
                claim_response_id=response["id"], version=version, created=now()))  # fmt: skip

    # --- subscriptions ---------------------------------------------------------------------------------

    def may_subscribe(self, org: str, client: str) -> bool:
        """Whether ``client`` sent a request for the sending system ``org``."""
        with self.transaction() as db:
            found = db.execute(select(senders.c.org).where(senders.c.org == org, senders.c.client == client))
            return found.first() is not None

    def add_subscription(self, resource: JSON, owner: str, org: str) -> None:
        """Keep a new Subscription and owe it its handshake (event 0)."""
        with self.transaction() as db:
            db.execute(insert(subscriptions).values(id=resource["id"], owner=owner, org=org, status=resource["status"],
                                                    resource=orjson.dumps(resource).decode()))  # fmt: skip
            db.execute(insert(notifications).values(subscription_id=resource["id"], event_number=0, kind="handshake",
                                                    created=now()))  # fmt: skip

    def subscription(self, sid: str) -> tuple[JSON, str, int] | None:
        """(Subscription, owner, events since it started)."""
        with self.transaction() as db:
            row = db.execute(select(subscriptions).where(subscriptions.c.id == sid)).first()
        return (orjson.loads(row.resource), str(row.owner), int(row.events)) if row else None

    def replace_subscription(self, resource: JSON, org: str) -> None:
        with self.transaction() as db:
            db.execute(update(subscriptions).where(subscriptions.c.id == resource["id"]).values(
                org=org, status=resource["status"], resource=orjson.dumps(resource).decode()))  # fmt: skip

    def delete_subscription(self, sid: str) -> None:
        """Remove a Subscription and what is still owed to it."""
        with self.transaction() as db:
            db.execute(subscriptions.delete().where(subscriptions.c.id == sid))
            db.execute(notifications.delete().where(notifications.c.subscription_id == sid,
                                                    notifications.c.delivered_at.is_(None)))  # fmt: skip

    def active_subscriptions(self) -> list[tuple[JSON, int]]:
        """Every active Subscription, with its event count."""
        with self.transaction() as db:
            rows = db.execute(select(subscriptions.c.resource, subscriptions.c.events)
                              .where(subscriptions.c.status == "active")).all()  # fmt: skip
        return [(orjson.loads(r.resource), int(r.events)) for r in rows]

    def subscription_events(self, sid: str, since: int, until: int) -> list[tuple[int, str, int, str]]:
        """(event number, ClaimResponse id, version, when) of a subscription's events in [since, until]."""
        table = notifications
        with self.transaction() as db:
            rows = db.execute(
                select(table.c.event_number, table.c.claim_response_id, table.c.version, table.c.created)
                .where(table.c.subscription_id == sid, table.c.kind == "event-notification",
                       table.c.event_number >= since, table.c.event_number <= until)
                .order_by(table.c.event_number)
            ).all()  # fmt: skip
        return [(int(r.event_number), str(r.claim_response_id), int(r.version), str(r.created)) for r in rows]

    def due_notifications(self, limit: int = 20, lease: float = 60.0) -> list[JSON]:
        """The first undelivered notification of each subscription, when due and not leased (a later one waits
        for it: each subscription in order), leased to the caller."""
        table = notifications
        with self.transaction() as db:
            waiting = table.c.delivered_at.is_(None)
            heads = select(func.min(table.c.seq)).where(waiting).group_by(table.c.subscription_id)
            rows = db.execute(select(table).where(table.c.seq.in_(heads)).order_by(table.c.seq).limit(limit)
                              .with_for_update()).all()  # fmt: skip
            moment = time.time()
            due = [r for r in rows if r.next_attempt <= moment and r.lease_until <= moment]
            if due:
                leased = table.c.seq.in_([r.seq for r in due])
                db.execute(update(table).where(leased).values(lease_until=moment + lease))
        return [dict(r._mapping) for r in due]

    def notification_sent(self, seq: int) -> None:
        with self.transaction() as db:
            done = update(notifications).where(notifications.c.seq == seq)
            db.execute(done.values(delivered_at=now(), last_error=None))

    def notification_failed(self, seq: int, error: str, delay: float) -> None:
        with self.transaction() as db:
            db.execute(update(notifications).where(notifications.c.seq == seq).values(
                attempts=notifications.c.attempts + 1, next_attempt=time.time() + delay, last_error=error[:500],
                lease_until=0))  # fmt: skip

    def set_subscription_status(self, sid: str, status: str) -> None:
        """Move a Subscription to ``status`` (active after its handshake, error when its endpoint fails)."""
        with self.transaction() as db:
            row = db.execute(select(subscriptions.c.resource).where(subscriptions.c.id == sid)).scalar()
            if row is not None:
                resource = {**orjson.loads(row), "status": status}
                db.execute(update(subscriptions).where(subscriptions.c.id == sid).values(
                    status=status, resource=orjson.dumps(resource).decode()))  # fmt: skip

    @staticmethod
    def _version(db: Connection, response: JSON) -> None:
        """Keep this version of a ClaimResponse for _history."""
        version = int(response.get("meta", {}).get("versionId", 1))
        db.execute(insert(claim_response_versions).values(id=response["id"], version=version,
                                                           resource=orjson.dumps(response).decode()))  # fmt: skip

    def _replace(self, db: Connection, response: JSON) -> str:
        """Store the next version of a ClaimResponse (and keep it for _history); its lastUpdated."""
        updated = str(response["meta"]["lastUpdated"])
        db.execute(
            update(claim_responses)
            .where(claim_responses.c.id == response["id"])
            .values(outcome=response.get("outcome"), last_updated=updated, updated_us=micros(updated),
                    resource=orjson.dumps(response).decode())
        )  # fmt: skip
        self._version(db, response)
        return updated

    def claim_response_versions(self, rid: str) -> list[JSON]:
        """Every version of a ClaimResponse, newest first (none: no such ClaimResponse)."""
        table = claim_response_versions
        with self.transaction() as db:
            rows = db.execute(select(table.c.resource).where(table.c.id == rid).order_by(table.c.version.desc()))
            return [orjson.loads(r) for r in rows.scalars()]

    def resource(self, rtype: str, rid: str) -> JSON | None:
        """A resource a PAS request held, as stored with its answer."""
        with self.transaction() as db:
            row = db.execute(
                select(stored_resources.c.resource).where(
                    stored_resources.c.type == rtype, stored_resources.c.id == rid
                )
            ).scalar()
        return orjson.loads(row) if row else None

    def resources_of(self, rid: str) -> list[JSON]:
        """The resources stored with a ClaimResponse's requests (the first and its updates)."""
        table = stored_resources
        with self.transaction() as db:
            rows = db.execute(select(table.c.resource).where(table.c.claim_response_id == rid)).scalars()
            return [orjson.loads(r) for r in rows]

    def inquired(self, members: Sequence[str], providers: Sequence[str]) -> list[str]:
        """The ClaimResponses a PAS inquiry finds: submitted for one of these member ids with one of these
        provider NPIs (in a stable order)."""
        if not members or not providers:
            return []
        table = inquiry_keys
        with self.transaction() as db:
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
        where += _instants(table.c.updated_us, updated)
        with self.transaction() as db:
            total = db.execute(select(func.count()).select_from(table).where(*where)).scalar_one()
            rows = db.execute(
                select(table.c.resource)
                .where(*where)
                .order_by(table.c.updated_us, table.c.id)
                .limit(count)
                .offset(offset)
            ).scalars()
            return int(total), [orjson.loads(r) for r in rows]

    # --- review Tasks --------------------------------------------------------------------------------

    def task(self, task_id: str) -> tuple[JSON, list[tuple[str, str]]] | None:
        """A review Task and the clinical texts its evidence points into."""
        with self.transaction() as db:
            row = db.execute(select(tasks.c.resource, tasks.c.documents).where(tasks.c.id == task_id)).first()
        if row is None:
            return None
        return orjson.loads(row.resource), [(source, text) for source, text in orjson.loads(row.documents)]

    def search_tasks(
        self,
        *,
        status: Sequence[str] = (),
        owner: str | None = None,
        focus: str | None = None,
        patient: str | None = None,
        updated: Sequence[tuple[str, int]] = (),
        offset: int = 0,
        count: int = 20,
    ) -> tuple[int, list[JSON]]:
        """(total, one page) of review Tasks, soonest due first; ``status`` any of the codes given."""
        where = [column == value for column, value in ((tasks.c.owner, owner), (tasks.c.focus, focus),
                                                        (tasks.c.patient, patient)) if value is not None]  # fmt: skip
        if status:
            where.append(tasks.c.status.in_(list(status)))
        where += _instants(tasks.c.updated_us, updated)
        with self.transaction() as db:
            total = db.execute(select(func.count()).select_from(tasks).where(*where)).scalar_one()
            rows = db.execute(
                select(tasks.c.resource).where(*where).order_by(tasks.c.due_us, tasks.c.id).limit(count).offset(offset)
            ).scalars()
            return int(total), [orjson.loads(r) for r in rows]

    def open_reviews(self, now_us: int) -> tuple[int, int]:
        """(open review Tasks, of which overdue at ``now_us``)."""
        with self.transaction() as db:
            waiting = tasks.c.status == "requested"
            total = db.execute(select(func.count()).select_from(tasks).where(waiting)).scalar_one()
            late = db.execute(select(func.count()).select_from(tasks).where(waiting, tasks.c.due_us < now_us))
            return int(total), int(late.scalar_one())

    def completed_reviews(self, after_us: int, limit: int = 100) -> list[tuple[int, JSON]]:
        """Review Tasks completed (last changed) after ``after_us``, oldest first: (updated_us, Task)."""
        with self.transaction() as db:
            rows = db.execute(
                select(tasks.c.updated_us, tasks.c.resource)
                .where(tasks.c.status == "completed", tasks.c.updated_us > after_us)
                .order_by(tasks.c.updated_us, tasks.c.id)
                .limit(limit)
            ).all()
        return [(int(r.updated_us), orjson.loads(r.resource)) for r in rows]

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
            stored = db.execute(
                select(claim_responses.c.resource).where(claim_responses.c.id == response_id).with_for_update()
            ).scalar()
            if stored is None:
                raise StateError(f"the review Task {task_id} focuses a ClaimResponse that is not stored")
            task, response = decide(task, orjson.loads(stored))
            db.execute(update(tasks).where(tasks.c.id == task_id).values(**_task_row(task)))
            self._replace(db, response)
            self._notify(db, response)
            if forward is not None:
                payload = orjson.dumps(forward(response)).decode()
                db.execute(insert(outbox).values(claim_response_id=response_id, payload=payload))
            action = decision_of(task) or "?"
            target = f"Task/{task_id} ClaimResponse/{response_id}/_history/{response['meta']['versionId']}"
            db.execute(insert(audit).values(**_audit_row(who, f"review decision {action}", target, "completed")))
        return task, response

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
            self._senders(db, rid, senders)
            self._notify(db, response)
            focus = [f"ClaimResponse/{rid}", (response.get("request") or {}).get("reference") or ""]
            waiting = select(tasks.c.resource).where(tasks.c.focus.in_(focus), tasks.c.status == "requested")
            open_tasks = db.execute(waiting).scalars()
            for task in (orjson.loads(t) for t in open_tasks):
                if response_of(task) == rid and sequence_of(task) in cancel:
                    next_version = str(int(task["meta"]["versionId"]) + 1)
                    task.update(status="cancelled", lastModified=updated,
                                meta={**task["meta"], "versionId": next_version, "lastUpdated": updated})  # fmt: skip
                    db.execute(update(tasks).where(tasks.c.id == task["id"]).values(**_task_row(task)))
            for review in reviews:
                db.execute(insert(tasks).values(**_task_row(review.resource),
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
            db.execute(insert(audit).values(**_audit_row(who, action, target, str(response.get("outcome")))))
        return response

    def next_outbox_batch(self, limit: int, lease: float = 60.0) -> list[OutboxItem]:
        """Up to ``limit`` undelivered items from the head, in order, stopping before the first that is not
        due or is leased; all leased to the caller for ``lease`` seconds, so that no other forwarder (thread,
        process or replica) sends them at the same time. Delivery is in order: a failing head waits."""
        with self.transaction() as db:
            rows = db.execute(
                select(outbox)
                .where(outbox.c.delivered_at.is_(None))
                .order_by(outbox.c.seq)
                .limit(limit)
                .with_for_update()
            ).all()
            moment = time.time()
            due = []
            for row in rows:
                if row.next_attempt > moment or row.lease_until > moment:
                    break
                due.append(row)
            if due:
                seqs = [row.seq for row in due]
                db.execute(update(outbox).where(outbox.c.seq.in_(seqs)).values(lease_until=moment + lease))
        return [OutboxItem(int(r.seq), r.claim_response_id, orjson.loads(r.payload), int(r.attempts)) for r in due]

    def release(self, *seqs: int) -> None:
        """Give up the lease of items not sent after all (the next caller takes them at once)."""
        if seqs:
            with self.transaction() as db:
                db.execute(update(outbox).where(outbox.c.seq.in_(seqs)).values(lease_until=0))

    def delivered(self, *seqs: int) -> None:
        with self.transaction() as db:
            db.execute(update(outbox).where(outbox.c.seq.in_(seqs)).values(delivered_at=now(), last_error=None))

    def delivery_failed(self, seq: int, error: str, delay: float) -> None:
        with self.transaction() as db:
            db.execute(
                update(outbox)
                .where(outbox.c.seq == seq)
                .values(
                    attempts=outbox.c.attempts + 1,
                    next_attempt=time.time() + delay,
                    last_error=error[:500],
                    lease_until=0,
                )
            )

    def outbox_pending(self) -> int:
        with self.transaction() as db:
            return int(
                db.execute(select(func.count()).select_from(outbox).where(outbox.c.delivered_at.is_(None))).scalar_one()
            )

    def outbox_oldest(self) -> str | None:
        """When the oldest undelivered answer was made (its ClaimResponse's lastUpdated), if any is waiting."""
        with self.transaction() as db:
            return db.execute(
                select(claim_responses.c.last_updated)
                .join(outbox, outbox.c.claim_response_id == claim_responses.c.id)
                .where(outbox.c.delivered_at.is_(None))
                .order_by(outbox.c.seq)
                .limit(1)
            ).scalar()

    # --- worker: cursor and dead letters ------------------------------------------------------------

    def cursor(self, name: str) -> str | None:
        with self.transaction() as db:
            return db.execute(select(cursors.c.value).where(cursors.c.name == name)).scalar()

    def set_cursor(self, name: str, value: str) -> None:
        with self.transaction() as db:
            db.execute(
                self._insert(cursors)
                .values(name=name, value=value)
                .on_conflict_do_update(index_elements=["name"], set_={"value": value})
            )

    def lease(self, name: str, holder: str, seconds: float) -> bool:
        """Take or renew the lease ``name`` for ``holder`` for ``seconds``: True when it is now held by ``holder``,
        False while another holds it unexpired. One compare-and-set on the lease row (kept beside the cursors),
        so of several workers racing for it exactly one wins, on SQLite and PostgreSQL alike."""
        moment = time.time()
        value = f"{moment + seconds:.3f} {holder}"
        with self.transaction() as db:
            taken = db.execute(
                self._insert(cursors).values(name=name, value=value)
                .on_conflict_do_nothing(index_elements=["name"]).returning(cursors.c.name)
            ).first()  # fmt: skip
            if taken is not None:
                return True
            current = str(db.execute(select(cursors.c.value).where(cursors.c.name == name)).scalar_one())
            until, _, owner = current.partition(" ")
            if owner != holder and float(until or 0) > moment:
                return False
            done = db.execute(update(cursors).where(cursors.c.name == name, cursors.c.value == current)
                              .values(value=value))  # fmt: skip
            return bool(done.rowcount == 1)

    def end_lease(self, name: str, holder: str) -> None:
        """Give the lease ``name`` up, if ``holder`` holds it (another may take it at once)."""
        with self.transaction() as db:
            current = db.execute(select(cursors.c.value).where(cursors.c.name == name)).scalar()
            if current is not None and str(current).partition(" ")[2] == holder:
                db.execute(update(cursors).where(cursors.c.name == name, cursors.c.value == current)
                           .values(value=f"0 {holder}"))  # fmt: skip

    def dead_letter(
        self, source: str, key: str, reason: str, payload: JSON | None = None, *, processed: bool = False
    ) -> None:
        """Keep what could not be done, with the reason; with ``processed``, also mark ``key`` done in the
        same transaction, so a crash cannot leave one without the other (and a restart add a second letter)."""
        with self.transaction() as db:
            body = orjson.dumps(payload).decode() if payload else None
            db.execute(
                insert(dead_letters).values(
                    source=source, item_key=key, reason=reason[:1000], payload=body, created=now()
                )
            )
            if processed:
                self._claim(db, key, None)

    def dead_letters(self, *, include_replayed: bool = False, owed_before: float | None = None) -> list[DeadLetter]:
        """The dead letters (open ones unless ``include_replayed``); with ``owed_before`` (epoch seconds), only
        the EHR Tasks still owed that were kept before then (their worker had time to write them and did not)."""
        query = select(dead_letters).order_by(dead_letters.c.id)
        if not include_replayed:
            query = query.where(dead_letters.c.replayed_at.is_(None))
        if owed_before is not None:
            kept_before = datetime.fromtimestamp(owed_before, UTC).isoformat(timespec="milliseconds")
            letters = dead_letters.c
            query = query.where(letters.source == EHR_TASK, letters.reason == OWED, letters.created < kept_before)
        with self.transaction() as db:
            rows = db.execute(query).all()
        return [DeadLetter(int(r.id), r.source, r.item_key, r.reason, orjson.loads(r.payload) if r.payload else None)
                for r in rows]  # fmt: skip

    def dead_letter_count(self) -> int:
        with self.transaction() as db:
            query = select(func.count()).select_from(dead_letters).where(dead_letters.c.replayed_at.is_(None))
            return int(db.execute(query).scalar_one())

    def settle(self, source: str, key: str) -> None:
        """Mark the open dead letters of ``source`` under ``key`` done (an owed EHR Task, once written)."""
        with self.transaction() as db:
            letters = dead_letters.c
            open_ones = (letters.source == source, letters.item_key == key, letters.replayed_at.is_(None))
            db.execute(update(dead_letters).where(*open_ones).values(replayed_at=now()))

    def replayed(self, dead_letter_id: int) -> None:
        with self.transaction() as db:
            db.execute(update(dead_letters).where(dead_letters.c.id == dead_letter_id).values(replayed_at=now()))

    # --- documentation requests and attachments (issue 23) ------------------------------------------------

    def attachment_requests(self, *statuses: str, tracking: str | None = None) -> list[AttachmentRequest]:
        """The CDex requests asked of the EHR in these statuses (any, when none is named), oldest first; or the
        one with this tracking id."""
        table = attachment_requests
        query = select(table).order_by(table.c.updated, table.c.tracking)
        if statuses:
            query = query.where(table.c.status.in_(statuses))
        if tracking is not None:
            query = query.where(table.c.tracking == tracking)
        with self.transaction() as db:
            rows = db.execute(query).all()
        return [AttachmentRequest(r.tracking, r.claim_response_id, r.line, r.request, r.due, orjson.loads(r.task),
                                  r.status, r.ehr_id, r.updated) for r in rows]  # fmt: skip

    def set_attachment_request(
        self, tracking: str, status: str, ehr_id: str | None = None, *, task: JSON | None = None
    ) -> None:
        """A CDex request's new status (and, once written, the Task's id on the EHR and the Task as written)."""
        values: dict[str, Any] = {"status": status, "updated": now()}
        if ehr_id is not None:
            values["ehr_id"] = ehr_id
        if task is not None:
            values["task"] = orjson.dumps(task).decode()
        with self.transaction() as db:
            db.execute(update(attachment_requests).where(attachment_requests.c.tracking == tracking).values(**values))

    def hold_attachment(self, key: str, tracking: str, payload: JSON) -> None:
        """Keep an attachment as received, before anything is decided from it (the same key: kept once)."""
        statement = (
            self._insert(attachments)
            .values(key=key, tracking=tracking, received=now(), status="held", payload=orjson.dumps(payload).decode())
            .on_conflict_do_nothing(index_elements=["key"])
        )
        with self.transaction() as db:
            db.execute(statement)

    def held_attachments(self, limit: int = 50) -> list[HeldAttachment]:
        """Attachments kept and not yet answered or refused, oldest first."""
        table = attachments
        answered = select(processed.c.item_key)
        query = (select(table.c.key, table.c.tracking, table.c.payload)
                 .where(table.c.status == "held", table.c.key.not_in(answered))
                 .order_by(table.c.received, table.c.key).limit(limit))  # fmt: skip
        with self.transaction() as db:
            rows = db.execute(query).all()
        return [HeldAttachment(r.key, r.tracking, orjson.loads(r.payload)) for r in rows]

    def attachment_outcome(self, key: str, status: str, *, response: str | None = None, reason: str = "") -> None:
        """A held attachment answered (the ClaimResponse it made a version of) or refused (why)."""
        values = {"status": status, "claim_response_id": response, "reason": reason[:1000] or None}
        with self.transaction() as db:
            db.execute(update(attachments).where(attachments.c.key == key).values(**values))

    # --- audit --------------------------------------------------------------------------------------

    def audit(self, who: str, action: str, target: str | None, outcome: str) -> None:
        """One audit row; every field is cut to its column, so a client cannot make rows large."""
        with self.transaction() as db:
            db.execute(insert(audit).values(**_audit_row(who, action, target, outcome)))

    def audit_log(self, limit: int = 100) -> list[tuple[str, str, str, str | None, str]]:
        with self.transaction() as db:
            rows = db.execute(
                select(audit.c.at, audit.c.who, audit.c.action, audit.c.target, audit.c.outcome)
                .order_by(audit.c.id.desc())
                .limit(limit)
            ).all()
        return [tuple(r) for r in rows]


def _instants(column: Column[Any], bounds: Sequence[tuple[str, int]]) -> list[Any]:
    """Conditions on a microseconds column from (operator, microseconds) bounds, operator one of ge gt le lt."""
    operators = {"ge": column.__ge__, "gt": column.__gt__, "le": column.__le__, "lt": column.__lt__}
    return [operators[op](bound) for op, bound in bounds]


def _task_row(task: JSON) -> dict[str, Any]:
    """The searchable columns of a review Task (and the Task itself)."""
    identifier = (task.get("owner") or {}).get("identifier") or {}
    updated = task["meta"]["lastUpdated"]
    return {
        "id": task["id"],
        "status": task["status"],
        "owner": f"{identifier.get('system')}|{identifier.get('value')}" if identifier else None,
        "focus": (task.get("focus") or {}).get("reference") or "",
        "patient": (task.get("for") or {}).get("reference"),
        "due_us": micros(task["restriction"]["period"]["end"]),
        "last_updated": updated,
        "updated_us": micros(updated),
        "resource": orjson.dumps(task).decode(),
    }


def _ask_row(ask: AttachmentRequest) -> dict[str, Any]:
    """A CDex request as kept."""
    return {"tracking": ask.tracking, "claim_response_id": ask.claim_response_id, "line": ask.line,
            "request": ask.request, "status": ask.status, "ehr_id": ask.ehr_id, "due": ask.due, "updated": now(),
            "task": orjson.dumps(ask.task).decode()}  # fmt: skip


def _audit_row(who: str, action: str, target: str | None, outcome: str) -> dict[str, Any]:
    """An audit row, every field cut to its column (a client cannot make rows large)."""
    return {
        "at": now(),
        "who": _fit(audit.c.who, who),
        "action": _fit(audit.c.action, action),
        "target": _fit(audit.c.target, target) if target else None,
        "outcome": _fit(audit.c.outcome, outcome),
    }


def _fit(column: Column[Any], value: str) -> str:
    """``value`` cut to the column's length (a String column's)."""
    length: int | None = getattr(column.type, "length", None)
    return value[:length]


def _reason(exc: SQLAlchemyError) -> str:
    """The driver's one-line reason, without the statement or its parameters (which may hold content)."""
    original = getattr(exc, "orig", None)
    return (str(original) if original is not None else type(exc).__name__).splitlines()[0][:200]
