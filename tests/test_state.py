"""The state store by aggregate (adapter.service.state): what each part keeps, on a SQLite file as a single
replica runs it (the same statements run on PostgreSQL in tests/integration)."""

from __future__ import annotations

import multiprocessing
import threading
import time
from pathlib import Path

import pytest
from sqlalchemy import insert

from adapter.errors import StateError
from adapter.service.schema import audit
from adapter.service.state import Recording, Store
from adapter.service.state import db as state_db


@pytest.fixture
def store(tmp_path: Path) -> Store:
    return Store(f"sqlite:///{tmp_path / 'state.db'}")


def test_progress_a_key_is_claimed_once_and_a_cursor_kept(store: Store) -> None:
    """The worker's progress: a key marked done is claimed on every replica, with no answer; a cursor reads back."""
    assert not store.claimed("ehr:ServiceRequest/1")
    store.mark("ehr:ServiceRequest/1")
    assert store.claimed("ehr:ServiceRequest/1") and store.processed("ehr:ServiceRequest/1") is None
    assert store.cursor("ehr:ServiceRequest") is None
    store.set_cursor("ehr:ServiceRequest", "2026-12-03T12:00:00Z")
    store.set_cursor("ehr:ServiceRequest", "2026-12-03T13:00:00Z")
    assert store.cursor("ehr:ServiceRequest") == "2026-12-03T13:00:00Z"


def test_progress_a_lease_has_one_holder_until_it_is_given_up(store: Store) -> None:
    assert store.lease("reviews", "worker-1", 60)
    assert not store.lease("reviews", "worker-2", 60)
    assert store.lease("reviews", "worker-1", 60)  # renewed by its holder
    store.end_lease("reviews", "worker-2")  # not the holder: nothing changes
    assert not store.lease("reviews", "worker-2", 60)
    store.end_lease("reviews", "worker-1")
    assert store.lease("reviews", "worker-2", 60)


def test_outbox_a_dead_letter_marks_its_key_done_in_the_same_transaction(store: Store) -> None:
    store.dead_letter("ehr", "ehr:ServiceRequest/2", "the request names no patient", {"id": "2"}, processed=True)
    assert store.claimed("ehr:ServiceRequest/2")
    (letter,) = store.dead_letters()
    assert (letter.source, letter.item_key, letter.reason) == (
        "ehr",
        "ehr:ServiceRequest/2",
        "the request names no patient",
    )
    assert store.dead_letter_count() == 1


def test_audit_rows_are_cut_to_their_columns_newest_first(store: Store) -> None:
    """A client cannot make audit rows large: every field is cut to its column."""
    store.audit("ehr-client", "create", "ServiceRequest/1", "201")
    store.audit("x" * 10_000, "read", "ClaimResponse/" + "9" * 10_000, "200")
    newest, oldest = store.audit_log()
    assert oldest[1:] == ("ehr-client", "create", "ServiceRequest/1", "201")
    assert len(newest[1]) == audit.c.who.type.length and len(newest[3]) == audit.c.target.type.length


def test_db_a_read_does_not_wait_for_the_writer(store: Store) -> None:
    """A read (``processed``, ``claim_response``, ``audit_log``...) reads the last commit beside a writer in the
    middle of its transaction: it neither waits for it nor sees its uncommitted rows."""
    store.mark("before")
    writing, done = threading.Event(), threading.Event()

    def writer() -> None:
        with store.transaction() as db:
            db.execute(insert(audit), {"at": "2026-12-03T12:00:00Z", "who": "w", "action": "a", "outcome": "o"})
            writing.set()
            done.wait(timeout=30)

    thread = threading.Thread(target=writer)
    thread.start()
    try:
        assert writing.wait(timeout=30)
        started = time.monotonic()
        assert store.claimed("before") and store.processed("before") is None
        assert store.claim_response("none") is None and store.search() == (0, [])
        assert time.monotonic() - started < 5  # the writer's lock is held till ``done``: 30 s
    finally:
        done.set()
        thread.join(timeout=30)
    assert store.audit_log()[0][1] == "w"


def test_db_writers_in_several_processes_each_take_their_turn(store: Store, tmp_path: Path) -> None:
    """Writers in processes forked from one another (``serve --processes``) queue for the file's one writer:
    every write lands."""
    store.mark("parent")  # the parent has written (and holds its queue's lock file open) before it forks,
    store.close()  # as ``serve`` does, with no connection open (none crosses a fork)
    context = multiprocessing.get_context("fork")

    def marks(n: int) -> None:
        for i in range(40):
            store.mark(f"{n}-{i}")

    processes = [context.Process(target=marks, args=(n,)) for n in range(3)]
    for process in processes:
        process.start()
    marks(3)
    for process in processes:
        process.join(timeout=120)
    assert [p.exitcode for p in processes] == [0, 0, 0]
    assert all(store.claimed(f"{n}-{i}") for n in range(4) for i in range(40))


def test_db_a_transaction_inside_another_of_the_same_thread_fails_as_busy(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A transaction begun inside another on the same thread cannot have the writer's turn: after the busy wait
    it is a ``StateError``, as SQLite's own busy wait ends, not a hang."""
    monkeypatch.setattr(state_db, "BUSY_SECONDS", 0.2)
    with pytest.raises(StateError), store.transaction():
        store.mark("inner")


def test_a_service_checkpoints_beside_its_writers_not_inside_one(tmp_path: Path) -> None:
    """While checkpointing, no commit copies the WAL into the database (SQLite's default, inside one request's
    time): a thread does, so what is written reaches the database file all the same."""
    store = Store(f"sqlite:///{tmp_path}/s.db")
    database = tmp_path / "s.db"
    with store.checkpointing(every=0.05):
        with store.engine.connect() as connection:
            assert connection.exec_driver_sql("PRAGMA wal_autocheckpoint").scalar() == 0
        before = database.stat().st_size
        for n in range(40):
            response = {"id": f"r{n}", "outcome": "complete", "meta": {"lastUpdated": "2026-01-01T00:00:00Z"},
                        "text": "x" * 20_000}  # fmt: skip
            store.record_all([Recording(response, patient=None, request=None, forward=None)])
        deadline = time.monotonic() + 10
        while database.stat().st_size <= before and time.monotonic() < deadline:
            time.sleep(0.05)
        assert database.stat().st_size > before + 40 * 20_000
    assert store.claim_response("r39") is not None
