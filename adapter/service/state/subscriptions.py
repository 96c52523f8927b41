"""PAS subscriptions: who may subscribe, the subscriptions, and the event of each answer version for every
active subscription of its sending systems (written with the version, so none is lost or made twice).
"""

from __future__ import annotations

import time
from collections.abc import Sequence

import orjson
from sqlalchemy import Connection, bindparam, func, insert, select, update

from adapter.service.schema import (
    notifications,
    response_orgs,
    senders,
    subscriptions,
)
from adapter.service.state.db import Database, dialect_insert, now
from adapter.types import JSON

#: The owner of the Subscriptions the service keeps for configured sending systems (``service.senders``).
CONFIGURED = "configured"


def add_senders(db: Connection, rid: str, pairs: Sequence[tuple[str, str]]) -> None:
    """Which sending systems an answer belongs to, and which clients sent for them (new pairs only)."""
    if not pairs:
        return
    insert_new = dialect_insert(db.dialect.name)
    orgs = sorted({org for org, _ in pairs})
    db.execute(insert_new(response_orgs).on_conflict_do_nothing(), [{"claim_response_id": rid, "org": o} for o in orgs])
    db.execute(insert_new(senders).on_conflict_do_nothing(), [{"org": o, "client": c} for o, c in sorted(set(pairs))])


#: The active subscriptions of the sending systems an answer (``rid``) belongs to, locked for their event count
#: (one statement object: made anew per answer, it cost more than running it).
_ORGS = select(response_orgs.c.org).where(response_orgs.c.claim_response_id == bindparam("rid"))
_SUBSCRIBED = (
    select(subscriptions.c.id, subscriptions.c.events)
    .where(subscriptions.c.org.in_(_ORGS), subscriptions.c.status == "active")
    .with_for_update()
)


def notify(db: Connection, response: JSON) -> None:
    """An event for every active subscription of the answer's sending systems: this version, numbered in
    each subscription's own order (written with the version, so none is lost or made twice)."""
    for sid, events in db.execute(_SUBSCRIBED, {"rid": response["id"]}).all():
        db.execute(update(subscriptions).where(subscriptions.c.id == sid).values(events=events + 1))
        version = int(response["meta"]["versionId"])
        db.execute(insert(notifications).values(
            subscription_id=sid, event_number=events + 1, kind="event-notification",
            claim_response_id=response["id"], version=version, created=now()))  # fmt: skip


class Subscriptions(Database):
    """The subscriptions of the state store (one part of ``Store``)."""

    def may_subscribe(self, org: str, client: str) -> bool:
        """Whether ``client`` sent a request for the sending system ``org``."""
        with self.transaction() as db:
            found = db.execute(select(senders.c.org).where(senders.c.org == org, senders.c.client == client))
            return found.first() is not None

    def add_subscription(self, resource: JSON, owner: str, org: str) -> None:
        """Keep a new Subscription and owe it its handshake (event 0); one already kept under its id (a
        configured one, made by two replicas starting at once) is left as it is."""
        with self.transaction() as db:
            made = db.execute(
                self._insert(subscriptions)
                .values(id=resource["id"], owner=owner, org=org, status=resource["status"],
                        resource=orjson.dumps(resource).decode())
                .on_conflict_do_nothing(index_elements=["id"]).returning(subscriptions.c.id)
            ).first()  # fmt: skip
            if made is not None:
                db.execute(insert(notifications).values(subscription_id=resource["id"], event_number=0,
                                                        kind="handshake", created=now()))  # fmt: skip

    def subscriptions_of(self, owner: str) -> list[tuple[JSON, str]]:
        """Every Subscription ``owner`` made, with its id."""
        with self.transaction() as db:
            rows = db.execute(select(subscriptions.c.resource, subscriptions.c.id)
                              .where(subscriptions.c.owner == owner).order_by(subscriptions.c.id)).all()  # fmt: skip
        return [(orjson.loads(r.resource), str(r.id)) for r in rows]

    def search_subscriptions(
        self, *, owner: str, configured: Sequence[str], status: Sequence[str] = (), offset: int = 0, count: int = 20
    ) -> tuple[int, list[JSON]]:
        """(total, one page) of the Subscriptions a client may read: those it made, and the configured ones
        (owner ``configured``) of the sending systems ``configured`` it speaks for; ``status`` any of these."""
        table = subscriptions
        mine = table.c.owner == owner
        theirs = (table.c.owner == CONFIGURED) & table.c.org.in_(list(configured))
        where = [mine | theirs if configured else mine]
        if status:
            where.append(table.c.status.in_(list(status)))
        with self.transaction() as db:
            total = db.execute(select(func.count()).select_from(table).where(*where)).scalar_one()
            rows = db.execute(select(table.c.resource).where(*where).order_by(table.c.id).limit(count).offset(offset))
            return int(total), [orjson.loads(r) for r in rows.scalars()]

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
