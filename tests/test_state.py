"""The state store by aggregate (adapter.service.state): what each part keeps, on a SQLite file as a single
replica runs it (the same statements run on PostgreSQL in tests/integration)."""

from __future__ import annotations

from pathlib import Path

import pytest

from adapter.service.schema import audit
from adapter.service.state import Store


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
