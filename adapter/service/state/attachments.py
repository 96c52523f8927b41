"""CDex documentation requests as kept (one per line item asked for) and the attachments held until they
can be decided.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson
from sqlalchemy import select, update

from adapter.service.schema import (
    attachment_requests,
    attachments,
    processed,
)
from adapter.service.state.db import Database, now
from adapter.types import JSON


@dataclass
class AttachmentRequest:
    """A documentation request asked of the EHR as a CDex Task: its tracking id, the answer and line it is for,
    the EHR request whose context is read again, its status and the Task."""

    tracking: str
    claim_response_id: str
    line: int
    request: str
    due: str
    task: JSON
    status: str = "owed"
    ehr_id: str | None = None
    #: When it was kept or last changed.
    updated: str = ""


@dataclass
class HeldAttachment:
    """An attachment received and not yet answered (its request not known yet, or its process killed first)."""

    key: str
    tracking: str
    payload: JSON


def ask_row(ask: AttachmentRequest) -> dict[str, Any]:
    """A CDex request as kept."""
    return {"tracking": ask.tracking, "claim_response_id": ask.claim_response_id, "line": ask.line,
            "request": ask.request, "status": ask.status, "ehr_id": ask.ehr_id, "due": ask.due, "updated": now(),
            "task": orjson.dumps(ask.task).decode()}  # fmt: skip


class Attachments(Database):
    """The attachments of the state store (one part of ``Store``)."""

    def attachment_requests(
        self, *statuses: str, tracking: str | None = None, answer: str | None = None
    ) -> list[AttachmentRequest]:
        """The CDex requests asked of the EHR in these statuses (any, when none is named), oldest first; or the
        one with this tracking id; or those of one answer (its ClaimResponse id)."""
        table = attachment_requests
        query = select(table).order_by(table.c.updated, table.c.tracking)
        if statuses:
            query = query.where(table.c.status.in_(statuses))
        if tracking is not None:
            query = query.where(table.c.tracking == tracking)
        if answer is not None:
            query = query.where(table.c.claim_response_id == answer)
        with self.transaction() as db:
            rows = db.execute(query).all()
        return [AttachmentRequest(r.tracking, r.claim_response_id, r.line, r.request, r.due, orjson.loads(r.task),
                                  r.status, r.ehr_id, r.updated) for r in rows]  # fmt: skip

    def set_attachment_request(
        self, tracking: str, status: str, ehr_id: str | None = None, *, task: JSON | None = None
    ) -> None:
        """A CDex request's new status (and, once written, the Task's id on the EHR and the Task as written)."""
        values: dict[str, Any] = {"status": status, "updated": now()}
        if ehr_id is not None:
            values["ehr_id"] = ehr_id
        if task is not None:
            values["task"] = orjson.dumps(task).decode()
        with self.transaction() as db:
            db.execute(update(attachment_requests).where(attachment_requests.c.tracking == tracking).values(**values))

    def hold_attachment(self, key: str, tracking: str, payload: JSON) -> None:
        """Keep an attachment as received, before anything is decided from it (the same key: kept once)."""
        statement = (
            self._insert(attachments)
            .values(key=key, tracking=tracking, received=now(), status="held", payload=orjson.dumps(payload).decode())
            .on_conflict_do_nothing(index_elements=["key"])
        )
        with self.transaction() as db:
            db.execute(statement)

    def held_attachments(self, limit: int = 50) -> list[HeldAttachment]:
        """Attachments kept and not yet answered or refused, oldest first."""
        table = attachments
        answered = select(processed.c.item_key)
        query = (select(table.c.key, table.c.tracking, table.c.payload)
                 .where(table.c.status == "held", table.c.key.not_in(answered))
                 .order_by(table.c.received, table.c.key).limit(limit))  # fmt: skip
        with self.transaction() as db:
            rows = db.execute(query).all()
        return [HeldAttachment(r.key, r.tracking, orjson.loads(r.payload)) for r in rows]

    def attachment_outcome(self, key: str, status: str, *, response: str | None = None, reason: str = "") -> None:
        """A held attachment answered (the ClaimResponse it made a version of) or refused (why)."""
        values = {"status": status, "claim_response_id": response, "reason": reason[:1000] or None}
        with self.transaction() as db:
            db.execute(update(attachments).where(attachments.c.key == key).values(**values))
