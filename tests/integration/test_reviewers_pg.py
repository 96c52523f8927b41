"""The reviewer table on PostgreSQL (the shared state of several replicas): reviewers recorded, signed in and
disabled as on SQLite, and the same NPI recorded by several processes at once kept once, the others told so
(a ReviewerError, never a database error)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest
from sqlalchemy import create_engine, text

from adapter.config import load_settings
from adapter.errors import ReviewerError
from adapter.service.reviewers import Reviewers
from adapter.service.state import Store
from tests.test_reviewers import ADA, PASSWORD


@pytest.fixture
def store() -> Iterator[Store]:
    """A PostgreSQL database of this test's own on the sandbox server (dropped after), at the newest schema."""
    server = load_settings().sandbox.postgres_url
    admin = create_engine(server, isolation_level="AUTOCOMMIT")
    database = f"imr_reviewers_{uuid.uuid4().hex[:8]}"
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{database}"'))
    opened = Store(f"{server.rsplit('/', 1)[0]}/{database}")
    try:
        yield opened
    finally:
        opened.close()
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)'))
        admin.dispose()


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
