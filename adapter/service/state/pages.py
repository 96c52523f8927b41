"""The worker's pages: the requests a sync worker read from the EHR, queued so that several workers share
them, each page taken by one worker at a time under a lease (``SELECT ... FOR UPDATE SKIP LOCKED`` on
PostgreSQL) and left to the others when its worker dies.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass

import orjson
from sqlalchemy import func, insert, or_, select, update

from adapter.service.schema import cursors, worker_pages
from adapter.service.state.db import Database, micros, now
from adapter.types import JSON


@dataclass
class QueuedPage:
    """A page of EHR requests a worker took from the queue: its id, the requests and what the search included."""

    id: int
    requests: list[JSON]
    included: list[JSON]


class Pages(Database):
    """The queue of the worker's pages (one part of ``Store``)."""

    def queue_page(self, name: str, requests: Sequence[JSON], included: Sequence[JSON], newest: str | None) -> None:
        """Keep a page of requests read under the cursor ``name`` for any worker to take, and move that cursor
        to ``newest`` in the same transaction: what was read is either queued or read again, never lost."""
        with self.transaction() as db:
            if requests:
                page = orjson.dumps({"requests": list(requests), "included": list(included)}).decode()
                db.execute(insert(worker_pages).values(source=name, page=page, created=now()))
            current = db.execute(select(cursors.c.value).where(cursors.c.name == name)).scalar()
            if newest and (current is None or micros(newest) > micros(str(current))):
                db.execute(
                    self._insert(cursors).values(name=name, value=newest)
                    .on_conflict_do_update(index_elements=["name"], set_={"value": newest})
                )  # fmt: skip

    def take_page(self, holder: str, seconds: float) -> QueuedPage | None:
        """The oldest queued page nobody holds, leased to ``holder`` for ``seconds`` (None: none free). On
        PostgreSQL ``FOR UPDATE SKIP LOCKED``: workers taking pages at once each get another, none waits on
        another's row; a page whose holder died is free again when its lease runs out. A page ``holder`` took
        itself is never handed back to it (its lease may run out while it still decides the page)."""
        moment = time.time()
        with self.transaction() as db:
            row = db.execute(
                select(worker_pages.c.id, worker_pages.c.page)
                .where(worker_pages.c.lease_until <= moment)
                .where(or_(worker_pages.c.holder.is_(None), worker_pages.c.holder != holder))
                .order_by(worker_pages.c.id)
                .limit(1)
                .with_for_update(skip_locked=True)
            ).first()
            if row is None:
                return None
            db.execute(update(worker_pages).where(worker_pages.c.id == row.id)
                       .values(lease_until=moment + seconds, holder=holder))  # fmt: skip
        page = orjson.loads(row.page)
        return QueuedPage(int(row.id), page["requests"], page["included"])

    def page_done(self, page_id: int) -> None:
        """A page's answers are recorded: it leaves the queue."""
        with self.transaction() as db:
            db.execute(worker_pages.delete().where(worker_pages.c.id == page_id))

    def pages_free(self) -> int:
        """Queued pages nobody holds now."""
        with self.transaction() as db:
            free = select(func.count()).select_from(worker_pages).where(worker_pages.c.lease_until <= time.time())
            return int(db.execute(free).scalar_one())
