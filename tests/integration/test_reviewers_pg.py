"""The reviewer table on PostgreSQL (the shared state of several replicas): reviewers recorded, signed in and
disabled as on SQLite, and the same NPI recorded by several processes at once kept once, the others told so
(a ReviewerError, never a database error)."""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest

from adapter import sandbox
from adapter.config import load_settings
from adapter.errors import ReviewerError
from adapter.service.reviewers import Reviewers
from adapter.service.state import Store
from tests.test_reviewers import ADA, PASSWORD


@pytest.fixture
def store() -> Iterator[Store]:
    """A PostgreSQL database of this test's own on the sandbox server (dropped after), at the newest schema."""
    with sandbox.scratch_database(load_settings().sandbox) as url:
        opened = Store(url)
        yield opened
        opened.close()


def test_the_reviewer_table_on_postgres(store: Store) -> None:
    def add(n: int) -> str:
        try:
            Reviewers(store).add(npi=ADA, name=f"Dr. Ada Reyes {n}", password=PASSWORD)
        except ReviewerError as exc:
            return exc.code
        return "added"

    with ThreadPoolExecutor(max_workers=4) as pool:
        outcomes = sorted(pool.map(add, range(4)))
    assert outcomes == ["added", "reviewer", "reviewer", "reviewer"]
    (recorded,) = Reviewers(store).all()
    assert Reviewers(store).sign_in(ADA, PASSWORD) == recorded
    Reviewers(store).disable(ADA)
    assert Reviewers(store).sign_in(ADA, PASSWORD) is None
