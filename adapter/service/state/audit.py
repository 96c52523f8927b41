"""The audit log: ids, actions and outcomes, never clinical content; one path (``write_audit``) for the
routes, the worker and the reviews, every field cut to its column so a client cannot make rows large.
"""

from __future__ import annotations

from typing import Any, NamedTuple

from sqlalchemy import Connection, insert, select

from adapter.service.schema import (
    audit,
)
from adapter.service.state.db import Database, fit, now


class AuditRow(NamedTuple):
    """Who did what (action) to which resource (target), and how it ended (outcome)."""

    who: str
    action: str
    target: str | None
    outcome: str


def audit_row(who: str, action: str, target: str | None, outcome: str) -> dict[str, Any]:
    """An audit row, every field cut to its column (a client cannot make rows large)."""
    return {
        "at": now(),
        "who": fit(audit.c.who, who),
        "action": fit(audit.c.action, action),
        "target": fit(audit.c.target, target) if target else None,
        "outcome": fit(audit.c.outcome, outcome),
    }


_INSERT_AUDIT = insert(audit)  # built once: it is written with every exchange


def write_audit(db: Connection, who: str, action: str, target: str | None, outcome: str) -> None:
    """One audit row, in the caller's transaction (with the change it records)."""
    db.execute(_INSERT_AUDIT, audit_row(who, action, target, outcome))


class Audit(Database):
    """The audit of the state store (one part of ``Store``)."""

    def audit(self, who: str, action: str, target: str | None, outcome: str) -> None:
        """One audit row; every field is cut to its column, so a client cannot make rows large."""
        with self.transaction() as db:
            write_audit(db, who, action, target, outcome)

    def audit_log(self, limit: int = 100) -> list[tuple[str, str, str, str | None, str]]:
        with self.transaction() as db:
            rows = db.execute(
                select(audit.c.at, audit.c.who, audit.c.action, audit.c.target, audit.c.outcome)
                .order_by(audit.c.id.desc())
                .limit(limit)
            ).all()
        return [tuple(r) for r in rows]
