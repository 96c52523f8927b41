"""Worker pages: the requests a sync worker read from the EHR, queued in the state so that several workers
share them (each page taken by one worker at a time, under a lease), instead of one worker per request type.

Revision ID: 0010
Revises: 0009
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "worker_pages",
        sa.Column("id", sa.Integer().with_variant(sa.BigInteger, "postgresql"), primary_key=True, autoincrement=True),
        sa.Column("source", sa.Text, nullable=False),
        sa.Column("page", sa.Text, nullable=False),
        sa.Column("lease_until", sa.Float, nullable=False, server_default="0"),
        sa.Column("holder", sa.Text),
        sa.Column("created", sa.Text, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("worker_pages")
