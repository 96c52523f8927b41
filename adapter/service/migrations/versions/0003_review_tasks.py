"""Review Tasks: one per pended item, with the clinical texts its evidence points into.

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "tasks",
        sa.Column("id", sa.Text, primary_key=True),
        sa.Column("status", sa.Text, nullable=False),
        sa.Column("owner", sa.Text),
        sa.Column("focus", sa.Text, nullable=False),
        sa.Column("patient", sa.Text),
        sa.Column("due_us", sa.BigInteger, nullable=False),
        sa.Column("last_updated", sa.Text, nullable=False),
        sa.Column("updated_us", sa.BigInteger, nullable=False),
        sa.Column("resource", sa.Text, nullable=False),
        sa.Column("documents", sa.Text, nullable=False),
    )
    op.create_index("tasks_status_due", "tasks", ["status", "due_us", "id"])
    op.create_index("tasks_focus", "tasks", ["focus"])


def downgrade() -> None:
    op.drop_index("tasks_focus", "tasks")
    op.drop_index("tasks_status_due", "tasks")
    op.drop_table("tasks")
