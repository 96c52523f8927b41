"""Review cases: the case each answer is (its patient, history and items, as read when it was decided), by
patient for earlier and duplicate requests; and each review Task's ClaimResponse as a column, so a case's Tasks
are found together (the Tasks made before are given theirs).

Revision ID: 0009
Revises: 0008
"""

from __future__ import annotations

import json
from typing import Any

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def _claim_response(task: Any) -> str:
    """The id of the ClaimResponse a stored Task decides (as ``adapter.review.tasks.response_of``, frozen here)."""
    for output in task.get("output") or []:
        if (output.get("type") or {}).get("text") == "claim-response":
            return str(output["valueReference"]["reference"]).removeprefix("ClaimResponse/")
    return str((task.get("focus") or {}).get("reference", "")).removeprefix("ClaimResponse/")


def upgrade() -> None:
    op.create_table(
        "review_cases",
        sa.Column("id", sa.Text, primary_key=True),
        sa.Column("patient", sa.Text),
        sa.Column("received_us", sa.BigInteger, nullable=False),
        sa.Column("context", sa.Text, nullable=False),
    )
    op.create_index("review_cases_patient", "review_cases", ["patient", "received_us"])
    op.add_column("tasks", sa.Column("claim_response", sa.Text))
    op.create_index("tasks_claim_response", "tasks", ["claim_response"])
    bind = op.get_bind()
    for row in bind.execute(sa.text("SELECT id, resource FROM tasks")).all():
        bind.execute(sa.text("UPDATE tasks SET claim_response = :cr WHERE id = :id"),
                     {"cr": _claim_response(json.loads(row.resource)), "id": row.id})  # fmt: skip


def downgrade() -> None:
    with op.batch_alter_table("tasks") as batch:  # SQLite drops a column by copying the table
        batch.drop_index("tasks_claim_response")
        batch.drop_column("claim_response")
    op.drop_table("review_cases")
