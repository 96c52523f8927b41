"""The state database: the engine over SQLite or PostgreSQL, the Alembic migrations, one transaction per
call (driver errors become ``StateError``), and the helpers every part shares.
"""

from __future__ import annotations

import fcntl
import logging
import os
import sqlite3
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Column, Connection, Engine, create_engine, event, text
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.pool import StaticPool

from adapter.errors import StateError

MIGRATIONS = Path(__file__).resolve().parents[1] / "migrations"


log = logging.getLogger(__name__)

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


#: How long a writer waits for its turn before its transaction fails (SQLite's busy timeout too).
BUSY_SECONDS = 10
#: Seconds between the WAL checkpoints a service runs beside its writers (``Database.checkpointing``).
CHECKPOINT_SECONDS = 1.0


def _engine(url: str) -> Engine:
    if url.startswith(("postgresql://", "postgres://")):
        return create_engine("postgresql+psycopg://" + url.split("://", 1)[1], pool_pre_ping=True)
    if url in ("sqlite://", "sqlite:///:memory:", ":memory:"):
        engine = create_engine("sqlite://", poolclass=StaticPool, connect_args={"check_same_thread": False})
    else:
        path = Path(url.removeprefix("sqlite:///"))
        path.parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(f"sqlite:///{path}", connect_args={"check_same_thread": False, "timeout": BUSY_SECONDS})

    @event.listens_for(engine, "connect")
    def _connect(connection: Any, _: Any) -> None:
        connection.isolation_level = None  # the driver's own transaction handling off: BEGIN below decides
        for pragma in ("journal_mode=WAL", "synchronous=FULL", f"busy_timeout={BUSY_SECONDS * 1000}"):
            connection.execute(f"PRAGMA {pragma}")

    @event.listens_for(engine, "begin")
    def _begin(connection: Connection) -> None:
        # a write takes the write lock now, not at its first write; a read (``Database.reading``) takes none:
        # in WAL mode it reads its snapshot beside the writer
        connection.exec_driver_sql("BEGIN" if connection.get_execution_options().get(_READING) else "BEGIN IMMEDIATE")

    return engine


class _Writers:
    """The queue for a SQLite file's one writer: a thread lock in this process, and ``flock`` on a file beside the
    database across processes (``serve --processes``). A writer waiting inside SQLite polls with sleeps of up to
    100 ms (its busy handler), and keeps a request thread while it sleeps; one waiting here wakes when the
    writer before it commits."""

    def __init__(self, database: Path) -> None:
        self.path = database.with_name(database.name + ".lock")
        self._lock = threading.Lock()
        self._fd: int | None = None
        self._pid = 0

    @contextmanager
    def turn(self) -> Iterator[None]:
        """The writer's turn; ``StateError`` after ``BUSY_SECONDS`` waiting in this process (as SQLite's busy
        wait ends: a transaction begun inside another on one thread fails rather than hangs)."""
        if not self._lock.acquire(timeout=BUSY_SECONDS):
            raise StateError("the state database failed: database is locked")
        try:
            if self._pid != os.getpid():  # a forked process opens its own: a lock on the parent's is shared
                self._fd, self._pid = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600), os.getpid()
            assert self._fd is not None
            fcntl.flock(self._fd, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(self._fd, fcntl.LOCK_UN)
        finally:
            self._lock.release()


#: The execution option that marks a read-only transaction (``Database.reading``).
_READING = "imr_reading"


def _alembic(connection: Connection) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["connection"] = connection
    return config


def dialect_insert(dialect: str) -> Any:
    """The INSERT of a database ``dialect`` ("sqlite", "postgresql"): one that can skip or update a row whose key
    exists (``on_conflict_do_nothing``, ``on_conflict_do_update``)."""
    return postgresql.insert if dialect == "postgresql" else sqlite.insert


def instants(column: Column[Any], bounds: Sequence[tuple[str, int]]) -> list[Any]:
    """Conditions on a microseconds column from (operator, microseconds) bounds, operator one of ge gt le lt."""
    operators = {"ge": column.__ge__, "gt": column.__gt__, "le": column.__le__, "lt": column.__lt__}
    return [operators[op](bound) for op, bound in bounds]


def fit(column: Column[Any], value: str) -> str:
    """``value`` cut to the column's length (a String column's)."""
    length: int | None = getattr(column.type, "length", None)
    return value[:length]


def reason(exc: SQLAlchemyError) -> str:
    """The driver's one-line reason, without the statement or its parameters (which may hold content)."""
    original = getattr(exc, "orig", None)
    return (str(original) if original is not None else type(exc).__name__).splitlines()[0][:200]


class Database:
    """Thread-safe access to the state database (a pool of connections; one transaction per call)."""

    def __init__(self, url: str, *, migrate: bool = True) -> None:
        self.url = url
        path = url.removeprefix("sqlite:///")
        self._writers = _Writers(Path(path)) if url.startswith("sqlite:///") and path != ":memory:" else None
        #: The thread that checkpoints the WAL while ``checkpointing`` (connections then leave it to it).
        self._checkpointer: threading.Thread | None = None
        try:
            self.engine = _engine(url)
            if self._writers is not None:
                event.listen(self.engine, "connect", self._connected)
            self._insert = dialect_insert(self.engine.dialect.name)
            if migrate:
                self.upgrade()
        except SQLAlchemyError as exc:
            raise StateError(f"the state database cannot be opened: {reason(exc)}") from exc

    def close(self) -> None:
        self.engine.dispose()

    def _connected(self, connection: Any, _: Any) -> None:
        if self._checkpointer is not None:
            connection.execute("PRAGMA wal_autocheckpoint=0")

    @contextmanager
    def checkpointing(self, every: float = CHECKPOINT_SECONDS) -> Iterator[None]:
        """SQLite: while in here, the WAL is copied into the database by a thread every ``every`` seconds, in a
        PASSIVE checkpoint (it waits for no reader or writer), instead of by whichever commit crosses the WAL's
        size (by default a copy of megabytes, with its fsync, inside one request's time and while the next
        writer waits: the service's slowest answers). The pool's connections leave it to the thread meanwhile.
        Nothing on PostgreSQL or in memory."""
        if self._writers is None:
            yield
            return
        stop = threading.Event()

        def run() -> None:
            while not stop.wait(every):
                try:
                    raw = self.engine.raw_connection()  # no transaction: a checkpoint cannot run inside one
                    try:
                        raw.driver_connection.execute("PRAGMA wal_checkpoint(PASSIVE)")  # type: ignore[union-attr]
                    finally:
                        raw.close()
                except (SQLAlchemyError, sqlite3.Error) as exc:
                    log.warning("the WAL checkpoint failed: %s", exc)

        self._checkpointer = threading.Thread(target=run, name="wal-checkpoint", daemon=True)
        self.engine.dispose()  # the pool's connections made anew, leaving checkpoints to the thread
        self._checkpointer.start()
        try:
            yield
        finally:
            stop.set()
            self._checkpointer.join()
            self._checkpointer = None
            self.engine.dispose()  # and anew again, each checkpointing as SQLite does by default

    @staticmethod
    def head() -> str:
        return str(ScriptDirectory(str(MIGRATIONS)).get_current_head())

    def revision(self) -> str | None:
        """The schema revision the database is at (None: no migration has run on it)."""
        try:
            with self.engine.connect() as connection:
                return MigrationContext.configure(connection).get_current_revision()
        except SQLAlchemyError as exc:
            raise StateError(f"the state database cannot be opened: {reason(exc)}") from exc

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
            if self._writers is None:
                with self.engine.begin() as connection:
                    yield connection
            else:
                with self._writers.turn(), self.engine.begin() as connection:
                    yield connection
        except SQLAlchemyError as exc:
            raise StateError(f"the state database failed: {reason(exc)}") from exc

    @contextmanager
    def reading(self) -> Iterator[Connection]:
        """One consistent read that writes nothing: on SQLite it neither waits for the writer nor holds the
        next one up (a snapshot of the last commit); driver errors -> StateError."""
        try:
            with self.engine.connect().execution_options(**{_READING: True}) as connection, connection.begin():
                yield connection
        except SQLAlchemyError as exc:
            raise StateError(f"the state database failed: {reason(exc)}") from exc
