"""The service's durable state: ClaimResponses made, the outbox to the payer, the worker's cursor, dead
letters, idempotency keys and the audit log.

SQLite by default (a file, no set-up); PostgreSQL by URL (``postgresql://...``, psycopg) so several
replicas share one state. Every write that must not be lost commits before the caller answers. The audit
log holds ids, actions and outcomes, never clinical content.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson

JSON = dict[str, Any]

_SCHEMA = [
    """CREATE TABLE IF NOT EXISTS claim_responses (
        id TEXT PRIMARY KEY, patient TEXT, request TEXT, outcome TEXT, last_updated TEXT NOT NULL,
        resource TEXT NOT NULL)""",
    "CREATE INDEX IF NOT EXISTS claim_responses_updated ON claim_responses (last_updated)",
    """CREATE TABLE IF NOT EXISTS outbox (
        seq {serial} PRIMARY KEY, claim_response_id TEXT NOT NULL, payload TEXT NOT NULL,
        attempts INTEGER NOT NULL DEFAULT 0, next_attempt DOUBLE PRECISION NOT NULL DEFAULT 0,
        lease_until DOUBLE PRECISION NOT NULL DEFAULT 0, delivered_at TEXT, last_error TEXT)""",
    """CREATE TABLE IF NOT EXISTS dead_letters (
        id {serial} PRIMARY KEY, source TEXT NOT NULL, item_key TEXT NOT NULL, reason TEXT NOT NULL,
        payload TEXT, created TEXT NOT NULL, replayed_at TEXT)""",
    "CREATE TABLE IF NOT EXISTS cursors (name TEXT PRIMARY KEY, value TEXT NOT NULL)",
    "CREATE TABLE IF NOT EXISTS processed (item_key TEXT PRIMARY KEY, claim_response_id TEXT, created TEXT NOT NULL)",
    """CREATE TABLE IF NOT EXISTS audit (
        id {serial} PRIMARY KEY, at TEXT NOT NULL, who TEXT NOT NULL, action TEXT NOT NULL,
        target TEXT, outcome TEXT NOT NULL)""",
]


def now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


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


class Store:
    """Thread-safe access to the state database."""

    def __init__(self, url: str) -> None:
        self.url = url
        self._lock = threading.RLock()
        if url.startswith(("postgresql://", "postgres://")):
            import psycopg

            self._conn: Any = psycopg.connect(url, autocommit=False)
            self._param = "%s"
            serial = "BIGSERIAL"
        else:
            path = url.removeprefix("sqlite:///") if url.startswith("sqlite:///") else url
            if path != ":memory:":
                Path(path).parent.mkdir(parents=True, exist_ok=True)
            self._conn = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
            self._conn.execute("PRAGMA journal_mode=WAL")
            self._conn.execute("PRAGMA synchronous=FULL")
            self._conn.execute("PRAGMA busy_timeout=10000")
            self._param = "?"
            serial = "INTEGER"
        with self.transaction() as cur:
            for statement in _SCHEMA:
                cur.execute(statement.format(serial=serial + (" " if serial == "INTEGER" else "")))

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    @contextmanager
    def transaction(self) -> Iterator[Any]:
        """One atomic unit of work (committed on success, rolled back on error)."""
        with self._lock:
            cur = self._conn.cursor()
            if self._param == "?":
                cur.execute("BEGIN IMMEDIATE")
            try:
                yield _Cursor(cur, self._param)
            except BaseException:
                self._conn.rollback() if self._param != "?" else cur.execute("ROLLBACK")
                raise
            else:
                self._conn.commit() if self._param != "?" else cur.execute("COMMIT")

    # --- claim responses and the outbox (one transaction: nothing made is left undelivered) -------

    def record(
        self, response: JSON, *, patient: str | None, request: str | None, forward: JSON | None, key: str | None = None
    ) -> None:
        """Store a ClaimResponse, queue it for the payer, and remember the idempotency key, atomically."""
        with self.transaction() as cur:
            cur.execute(
                "INSERT INTO claim_responses (id, patient, request, outcome, last_updated, resource) "
                "VALUES (?,?,?,?,?,?)",
                (
                    response["id"],
                    patient,
                    request,
                    response.get("outcome"),
                    response["meta"]["lastUpdated"],
                    orjson.dumps(response).decode(),
                ),
            )
            if forward is not None:
                cur.execute(
                    "INSERT INTO outbox (claim_response_id, payload) VALUES (?, ?)",
                    (response["id"], orjson.dumps(forward).decode()),
                )
            if key is not None:
                cur.execute(
                    "INSERT INTO processed (item_key, claim_response_id, created) VALUES (?,?,?)",
                    (key, response["id"], now()),
                )

    def processed(self, key: str) -> str | None:
        with self.transaction() as cur:
            row = cur.execute("SELECT claim_response_id FROM processed WHERE item_key = ?", (key,)).fetchone()
        return row[0] if row else None

    def mark_processed(self, key: str, claim_response_id: str | None) -> None:
        with self.transaction() as cur:
            cur.execute(
                "INSERT INTO processed (item_key, claim_response_id, created) VALUES (?,?,?) "
                "ON CONFLICT (item_key) DO NOTHING",
                (key, claim_response_id, now()),
            )

    def claim_response(self, rid: str) -> JSON | None:
        with self.transaction() as cur:
            row = cur.execute("SELECT resource FROM claim_responses WHERE id = ?", (rid,)).fetchone()
        return orjson.loads(row[0]) if row else None

    def search(
        self,
        *,
        patient: str | None = None,
        request: str | None = None,
        outcome: str | None = None,
        since: str | None = None,
        before: str | None = None,
        offset: int = 0,
        count: int = 20,
    ) -> tuple[int, list[JSON]]:
        where, args = [], []
        for column, value in (("patient", patient), ("request", request), ("outcome", outcome)):
            if value is not None:
                where.append(f"{column} = ?")
                args.append(value)
        if since is not None:
            where.append("last_updated >= ?")
            args.append(since)
        if before is not None:
            where.append("last_updated < ?")
            args.append(before)
        clause = (" WHERE " + " AND ".join(where)) if where else ""
        with self.transaction() as cur:
            total = cur.execute(f"SELECT COUNT(*) FROM claim_responses{clause}", tuple(args)).fetchone()[0]
            rows = cur.execute(
                f"SELECT resource FROM claim_responses{clause} ORDER BY last_updated, id LIMIT ? OFFSET ?",
                (*args, count, offset),
            ).fetchall()
        return int(total), [orjson.loads(r[0]) for r in rows]

    def next_outbox(self, lease: float = 60.0) -> OutboxItem | None:
        """The oldest undelivered item when it is due, leased to the caller for ``lease`` seconds so that no
        other forwarder (thread, process or replica) sends it at the same time. Delivery is in order: a
        failing head waits."""
        lock = " FOR UPDATE" if self._param != "?" else ""
        with self.transaction() as cur:
            row = cur.execute(
                "SELECT seq, claim_response_id, payload, attempts, next_attempt, lease_until FROM outbox "
                f"WHERE delivered_at IS NULL ORDER BY seq LIMIT 1{lock}"
            ).fetchone()
            moment = time.time()
            if row is None or row[4] > moment or row[5] > moment:
                return None
            cur.execute("UPDATE outbox SET lease_until = ? WHERE seq = ?", (moment + lease, row[0]))
        return OutboxItem(int(row[0]), row[1], orjson.loads(row[2]), int(row[3]))

    def delivered(self, seq: int) -> None:
        with self.transaction() as cur:
            cur.execute("UPDATE outbox SET delivered_at = ?, last_error = NULL WHERE seq = ?", (now(), seq))

    def delivery_failed(self, seq: int, error: str, delay: float) -> None:
        with self.transaction() as cur:
            cur.execute(
                "UPDATE outbox SET attempts = attempts + 1, next_attempt = ?, last_error = ?, lease_until = 0 "
                "WHERE seq = ?",
                (time.time() + delay, error[:500], seq),
            )

    def outbox_pending(self) -> int:
        with self.transaction() as cur:
            return int(cur.execute("SELECT COUNT(*) FROM outbox WHERE delivered_at IS NULL").fetchone()[0])

    # --- worker: cursor and dead letters ------------------------------------------------------------

    def cursor(self, name: str) -> str | None:
        with self.transaction() as cur:
            row = cur.execute("SELECT value FROM cursors WHERE name = ?", (name,)).fetchone()
        return row[0] if row else None

    def set_cursor(self, name: str, value: str) -> None:
        with self.transaction() as cur:
            cur.execute(
                "INSERT INTO cursors (name, value) VALUES (?, ?) ON CONFLICT (name) DO UPDATE SET value = ?",
                (name, value, value),
            )

    def dead_letter(
        self, source: str, key: str, reason: str, payload: JSON | None = None, *, processed: bool = False
    ) -> None:
        """Keep what could not be done, with the reason; with ``processed``, also mark ``key`` done in the
        same transaction, so a crash cannot leave one without the other (and a restart add a second letter)."""
        with self.transaction() as cur:
            body = orjson.dumps(payload).decode() if payload else None
            cur.execute(
                "INSERT INTO dead_letters (source, item_key, reason, payload, created) VALUES (?,?,?,?,?)",
                (source, key, reason[:1000], body, now()),
            )
            if processed:
                cur.execute(
                    "INSERT INTO processed (item_key, claim_response_id, created) VALUES (?,?,?)", (key, None, now())
                )

    def dead_letters(self, *, include_replayed: bool = False) -> list[DeadLetter]:
        query = "SELECT id, source, item_key, reason, payload FROM dead_letters"
        if not include_replayed:
            query += " WHERE replayed_at IS NULL"
        with self.transaction() as cur:
            rows = cur.execute(query + " ORDER BY id").fetchall()
        return [DeadLetter(int(r[0]), r[1], r[2], r[3], orjson.loads(r[4]) if r[4] else None) for r in rows]

    def replayed(self, dead_letter_id: int) -> None:
        with self.transaction() as cur:
            cur.execute("UPDATE dead_letters SET replayed_at = ? WHERE id = ?", (now(), dead_letter_id))

    # --- audit --------------------------------------------------------------------------------------

    def audit(self, who: str, action: str, target: str | None, outcome: str) -> None:
        with self.transaction() as cur:
            cur.execute(
                "INSERT INTO audit (at, who, action, target, outcome) VALUES (?,?,?,?,?)",
                (now(), who, action, target, outcome),
            )

    def audit_log(self, limit: int = 100) -> list[tuple[str, str, str, str | None, str]]:
        with self.transaction() as cur:
            rows = cur.execute(
                "SELECT at, who, action, target, outcome FROM audit ORDER BY id DESC LIMIT ?", (limit,)
            ).fetchall()
        return [tuple(r) for r in rows]


class _Cursor:
    """A DB-API cursor that takes ``?`` placeholders whatever the driver's style."""

    def __init__(self, cursor: Any, param: str) -> None:
        self._cursor = cursor
        self._param = param

    def execute(self, sql: str, args: Sequence[Any] = ()) -> _Cursor:
        self._cursor.execute(sql if self._param == "?" else sql.replace("?", "%s"), tuple(args))
        return self

    def fetchone(self) -> Any:
        return self._cursor.fetchone()

    def fetchall(self) -> list[Any]:
        return list(self._cursor.fetchall())
