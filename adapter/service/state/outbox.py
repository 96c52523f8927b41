"""The outbox to the payer (leased in batches, released, delivered or retried later) and the dead letters of
what could not be done, kept to be replayed.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import UTC, datetime

import orjson
from sqlalchemy import func, insert, select, update

from adapter.service.schema import (
    claim_responses,
    dead_letters,
    outbox,
)
from adapter.service.state.db import now
from adapter.service.state.progress import Progress
from adapter.types import JSON

#: The dead letters of EHR Tasks: owed (written with their answer, not yet sent) or failed.
EHR_TASK = "ehr-task"


OWED = "[owed] not yet written to the EHR"


@dataclass
class OutboxItem:
    seq: int
    claim_response_id: str
    payload: JSON
    attempts: int


@dataclass
class DeadLetter:
    id: int
    source: str
    item_key: str
    reason: str
    payload: JSON | None


class Outbox(Progress):
    """The outbox of the state store (one part of ``Store``)."""

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
