"""The worker's progress: idempotency keys claimed once (one atomic ``INSERT ... ON CONFLICT DO NOTHING``),
the cursors it polls from, and the leases that let one replica run a job at a time.
"""

from __future__ import annotations

import time
from collections.abc import Sequence

from sqlalchemy import Connection, Executable, select, update

from adapter.service.schema import (
    cursors,
    processed,
)
from adapter.service.state.db import Database, now


class Progress(Database):
    """The progress of the state store (one part of ``Store``)."""

    _claiming: Executable | None = None

    def _claim(self, db: Connection, key: str, claim_response_id: str | None) -> bool:
        """Claim an idempotency key in one atomic statement: False when it was already claimed."""
        if self._claiming is None:  # built once: made anew per key, the statement cost more than running it
            self._claiming = (
                self._insert(processed)
                .on_conflict_do_nothing(index_elements=["item_key"])
                .returning(processed.c.item_key)
            )
        row = {"item_key": key, "claim_response_id": claim_response_id, "created": now()}
        return db.execute(self._claiming, row).first() is not None

    def processed(self, key: str) -> str | None:
        """The ClaimResponse recorded under an idempotency key (None: none, or the key is not claimed)."""
        return self.processed_of([key]).get(key)

    def processed_of(self, keys: Sequence[str]) -> dict[str, str | None]:
        """Of ``keys``, those claimed, each with the ClaimResponse recorded under it (None: marked with none)."""
        with self.reading() as db:
            rows = db.execute(select(processed.c.item_key, processed.c.claim_response_id)
                              .where(processed.c.item_key.in_(keys)))  # fmt: skip
            return {key: rid for key, rid in rows}

    def claimed(self, key: str) -> bool:
        """Whether an idempotency key is done: recorded with its answer, or marked with a dead letter."""
        with self.reading() as db:
            return db.execute(select(processed.c.item_key).where(processed.c.item_key == key)).first() is not None

    def mark(self, key: str) -> None:
        """Mark a key done with no answer (a review session signed out: ``claimed`` on every replica)."""
        with self.transaction() as db:
            self._claim(db, key, None)

    def cursor(self, name: str) -> str | None:
        with self.reading() as db:
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

    def lease_of(self, name: str) -> tuple[float, str] | None:
        """(until when, by whom) the lease ``name`` was last taken: until 0 once given up, a time past when its
        holder stopped renewing it (died); None when it was never taken."""
        with self.reading() as db:
            current = db.execute(select(cursors.c.value).where(cursors.c.name == name)).scalar()
        if current is None:
            return None
        until, _, owner = str(current).partition(" ")
        return float(until or 0), owner
