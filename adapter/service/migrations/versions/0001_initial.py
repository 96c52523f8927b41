"""The state as the first service wrote it (before migrations): tables already there are kept as they are.

Revision ID: 0001
Revises:
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

_SERIAL = sa.Integer().with_variant(sa.BigInteger, "postgresql")


def upgrade() -> None:
    existing = set(sa.inspect(op.get_bind()).get_table_names())
    if "claim_responses" not in existing:
        op.create_table(
            "claim_responses",
            sa.Column("id", sa.Text, primary_key=True),
            sa.Column("patient", sa.Text),
            sa.Column("request", sa.Text),
            sa.Column("outcome", sa.Text),
            sa.Column("last_updated", sa.Text, nullable=False),
            sa.Column("resource", sa.Text, nullable=False),
        )
        op.create_index("claim_responses_updated", "claim_responses", ["last_updated"])
    if "outbox" not in existing:
        op.create_table(
            "outbox",
            sa.Column("seq", _SERIAL, primary_key=True, autoincrement=True),
            sa.Column("claim_response_id", sa.Text, nullable=False),
            sa.Column("payload", sa.Text, nullable=False),
            sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
            sa.Column("next_attempt", sa.Float, nullable=False, server_default="0"),
            sa.Column("lease_until", sa.Float, nullable=False, server_default="0"),
            sa.Column("delivered_at", sa.Text),
            sa.Column("last_error", sa.Text),
        )
    if "dead_letters" not in existing:
        op.create_table(
            "dead_letters",
            sa.Column("id", _SERIAL, primary_key=True, autoincrement=True),
            sa.Column("source", sa.Text, nullable=False),
            sa.Column("item_key", sa.Text, nullable=False),
            sa.Column("reason", sa.Text, nullable=False),
            sa.Column("payload", sa.Text),
            sa.Column("created", sa.Text, nullable=False),
            sa.Column("replayed_at", sa.Text),
        )
    if "cursors" not in existing:
        op.create_table(
            "cursors", sa.Column("name", sa.Text, primary_key=True), sa.Column("value", sa.Text, nullable=False)
        )
    if "processed" not in existing:
        op.create_table(
            "processed",
            sa.Column("item_key", sa.Text, primary_key=True),
            sa.Column("claim_response_id", sa.Text),
            sa.Column("created", sa.Text, nullable=False),
        )
    if "audit" not in existing:
        op.create_table(
            "audit",
            sa.Column("id", _SERIAL, primary_key=True, autoincrement=True),
            sa.Column("at", sa.Text, nullable=False),
            sa.Column("who", sa.Text, nullable=False),
            sa.Column("action", sa.Text, nullable=False),
            sa.Column("target", sa.Text),
            sa.Column("outcome", sa.Text, nullable=False),
        )


def downgrade() -> None:
    for table in ("audit", "processed", "cursors", "dead_letters", "outbox", "claim_responses"):
        op.drop_table(table)
