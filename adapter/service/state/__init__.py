"""The service's durable state, one module per aggregate over one database:

    db             the engine (SQLite or PostgreSQL), the Alembic migrations, one transaction per call
    answers        each ClaimResponse with its versions, review Tasks, outbox entry and keys, written together
    reviews        the review Tasks as kept, searched and counted
    outbox         what waits for the payer, and the dead letters
    progress       idempotency keys, the worker's cursors and leases
    subscriptions  PAS subscriptions and the events of each answer version
    attachments    documentation requests and the attachments held for them
    audit          who did what to which resource (ids and outcomes, never clinical content)

SQLAlchemy Core over SQLite (a file, no set-up; the default) or PostgreSQL (``postgresql://...``, psycopg) so
that several replicas share one state; the same statements for both. Every write that must not be lost commits
before the caller answers; a request's answer, its outbox entry and its idempotency key are one transaction, and
the key is claimed with one atomic ``INSERT ... ON CONFLICT DO NOTHING``, so replicas racing on the same request
store one answer. Any database failure is a ``StateError``. ``Store`` is every part over one database.
"""

from __future__ import annotations

from adapter.service.state.answers import Answers, Recording
from adapter.service.state.attachments import AttachmentRequest, Attachments, HeldAttachment
from adapter.service.state.audit import Audit, AuditRow
from adapter.service.state.db import MIGRATIONS, micros, now
from adapter.service.state.outbox import EHR_TASK, OWED, DeadLetter, Outbox, OutboxItem
from adapter.service.state.pages import Pages, QueuedPage
from adapter.service.state.reviews import Reviews
from adapter.service.state.subscriptions import CONFIGURED, Subscriptions

__all__ = [
    "CONFIGURED",
    "EHR_TASK",
    "MIGRATIONS",
    "OWED",
    "AttachmentRequest",
    "AuditRow",
    "DeadLetter",
    "HeldAttachment",
    "OutboxItem",
    "QueuedPage",
    "Recording",
    "Store",
    "micros",
    "now",
]


class Store(Answers, Reviews, Outbox, Subscriptions, Attachments, Audit, Pages):
    """Thread-safe access to the state database (a pool of connections; one transaction per call), every
    aggregate's operations on one object."""
