"""Documentation requests and attachments: the CDex attachment-request Tasks asked of the EHR (owed until
written, then followed to their end), and every attachment received, kept before it is decided (so a process
killed before the new version loses nothing) and held while its tracking id names no request known here.

Revision ID: 0007
Revises: 0006
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "attachment_requests",
        sa.Column("tracking", sa.Text, primary_key=True),
        sa.Column("claim_response_id", sa.Text, nullable=False),
        sa.Column("line", sa.Integer, nullable=False),
        sa.Column("request", sa.Text, nullable=False),
        sa.Column("status", sa.Text, nullable=False),
        sa.Column("ehr_id", sa.Text),
        sa.Column("due", sa.Text, nullable=False),
        sa.Column("updated", sa.Text, nullable=False),
        sa.Column("task", sa.Text, nullable=False),
    )
    op.create_index("attachment_requests_status", "attachment_requests", ["status"])
    op.create_table(
        "attachments",
        sa.Column("key", sa.Text, primary_key=True),
        sa.Column("tracking", sa.Text, nullable=False),
        sa.Column("received", sa.Text, nullable=False),
        sa.Column("status", sa.Text, nullable=False),
        sa.Column("claim_response_id", sa.Text),
        sa.Column("reason", sa.Text),
        sa.Column("payload", sa.Text, nullable=False),
    )
    op.create_index("attachments_status", "attachments", ["status", "received"])


def downgrade() -> None:
    op.drop_table("attachments")
    op.drop_table("attachment_requests")
