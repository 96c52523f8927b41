"""The review Tasks as kept: one Task, a search of them, the cases they belong to, and the counts the metrics
read. A decision changes the answer too, so it is written by ``adapter.service.state.answers``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import orjson
from sqlalchemy import func, select

from adapter.review.cases import CaseContext
from adapter.review.tasks import response_of, sequence_of
from adapter.service.schema import (
    review_cases,
    tasks,
)
from adapter.service.state.db import Database, instants, micros
from adapter.types import JSON


def task_row(task: JSON) -> dict[str, Any]:
    """The searchable columns of a review Task (and the Task itself)."""
    identifier = (task.get("owner") or {}).get("identifier") or {}
    updated = task["meta"]["lastUpdated"]
    return {
        "id": task["id"],
        "status": task["status"],
        "owner": f"{identifier.get('system')}|{identifier.get('value')}" if identifier else None,
        "focus": (task.get("focus") or {}).get("reference") or "",
        "patient": (task.get("for") or {}).get("reference"),
        "due_us": micros(task["restriction"]["period"]["end"]),
        "claim_response": response_of(task),
        "last_updated": updated,
        "updated_us": micros(updated),
        "resource": orjson.dumps(task).decode(),
    }


class Reviews(Database):
    """The reviews of the state store (one part of ``Store``)."""

    def task(self, task_id: str) -> tuple[JSON, list[tuple[str, str]]] | None:
        """A review Task and the clinical texts its evidence points into."""
        with self.transaction() as db:
            row = db.execute(select(tasks.c.resource, tasks.c.documents).where(tasks.c.id == task_id)).first()
        if row is None:
            return None
        return orjson.loads(row.resource), [(source, text) for source, text in orjson.loads(row.documents)]

    def search_tasks(
        self,
        *,
        status: Sequence[str] = (),
        owner: str | None = None,
        focus: str | None = None,
        patient: str | None = None,
        updated: Sequence[tuple[str, int]] = (),
        offset: int = 0,
        count: int = 20,
    ) -> tuple[int, list[JSON]]:
        """(total, one page) of review Tasks, soonest due first; ``status`` any of the codes given."""
        where = [column == value for column, value in ((tasks.c.owner, owner), (tasks.c.focus, focus),
                                                        (tasks.c.patient, patient)) if value is not None]  # fmt: skip
        if status:
            where.append(tasks.c.status.in_(list(status)))
        where += instants(tasks.c.updated_us, updated)
        with self.transaction() as db:
            total = db.execute(select(func.count()).select_from(tasks).where(*where)).scalar_one()
            rows = db.execute(
                select(tasks.c.resource).where(*where).order_by(tasks.c.due_us, tasks.c.id).limit(count).offset(offset)
            ).scalars()
            return int(total), [orjson.loads(r) for r in rows]

    def cases(self, rids: Sequence[str]) -> dict[str, CaseContext]:
        """The cases these ClaimResponses answer, as read when they were decided (those kept), by id."""
        with self.transaction() as db:
            rows = db.execute(select(review_cases.c.context).where(review_cases.c.id.in_(list(rids)))).scalars()
            found = [CaseContext.model_validate_json(r) for r in rows]
        return {c.id: c for c in found}

    def cases_of(self, patients: Sequence[str], since_us: int = 0, limit: int = 200) -> list[CaseContext]:
        """The cases of these patients received since ``since_us``, newest first."""
        table = review_cases
        with self.transaction() as db:
            rows = db.execute(
                select(table.c.context)
                .where(table.c.patient.in_(list(patients)), table.c.received_us >= since_us)
                .order_by(table.c.received_us.desc(), table.c.id)
                .limit(limit)
            ).scalars()
            return [CaseContext.model_validate_json(r) for r in rows]

    def case_tasks(self, rid: str) -> list[tuple[JSON, list[tuple[str, str]]]]:
        """The review Tasks of a case (the items of one ClaimResponse) with their texts, by item sequence."""
        with self.transaction() as db:
            rows = db.execute(select(tasks.c.resource, tasks.c.documents).where(tasks.c.claim_response == rid)).all()
        found = [(orjson.loads(r.resource), [(s, t) for s, t in orjson.loads(r.documents)]) for r in rows]
        return sorted(found, key=lambda pair: (sequence_of(pair[0]), pair[0]["meta"]["lastUpdated"]))

    def open_reviews(self, now_us: int) -> tuple[int, int]:
        """(open review Tasks, of which overdue at ``now_us``)."""
        with self.transaction() as db:
            waiting = tasks.c.status == "requested"
            total = db.execute(select(func.count()).select_from(tasks).where(waiting)).scalar_one()
            late = db.execute(select(func.count()).select_from(tasks).where(waiting, tasks.c.due_us < now_us))
            return int(total), int(late.scalar_one())

    def completed_reviews(self, after_us: int, limit: int = 100) -> list[tuple[int, JSON]]:
        """Review Tasks completed (last changed) after ``after_us``, oldest first: (updated_us, Task)."""
        with self.transaction() as db:
            rows = db.execute(
                select(tasks.c.updated_us, tasks.c.resource)
                .where(tasks.c.status == "completed", tasks.c.updated_us > after_us)
                .order_by(tasks.c.updated_us, tasks.c.id)
                .limit(limit)
            ).all()
        return [(int(r.updated_us), orjson.loads(r.resource)) for r in rows]
