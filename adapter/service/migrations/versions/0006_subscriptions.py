"""PAS subscriptions (R4 backport, the PASSubscriptionTopic): the Subscriptions, the notifications owed to each
(in order, delivered through this outbox), which sending systems an answer belongs to, and which clients sent
for which sending systems (who may subscribe for them).

Revision ID: 0006
Revises: 0005
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "subscriptions",
        sa.Column("id", sa.Text, primary_key=True),
        sa.Column("owner", sa.Text, nullable=False),
        sa.Column("org", sa.Text, nullable=False),
        sa.Column("status", sa.Text, nullable=False),
        sa.Column("events", sa.Integer, nullable=False, server_default="0"),
        sa.Column("resource", sa.Text, nullable=False),
    )
    op.create_index("subscriptions_org", "subscriptions", ["org", "status"])
    op.create_table(
        "notifications",
        sa.Column("seq", sa.Integer().with_variant(sa.BigInteger, "postgresql"), primary_key=True, autoincrement=True),
        sa.Column("subscription_id", sa.Text, nullable=False),
        sa.Column("event_number", sa.Integer, nullable=False),
        sa.Column("kind", sa.Text, nullable=False),
        sa.Column("claim_response_id", sa.Text),
        sa.Column("version", sa.Integer),
        sa.Column("created", sa.Text, nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
        sa.Column("next_attempt", sa.Float, nullable=False, server_default="0"),
        sa.Column("lease_until", sa.Float, nullable=False, server_default="0"),
        sa.Column("delivered_at", sa.Text),
        sa.Column("last_error", sa.Text),
    )
    op.create_index("notifications_subscription", "notifications", ["subscription_id", "seq"])
    op.create_table(
        "response_orgs",
        sa.Column("claim_response_id", sa.Text, primary_key=True),
        sa.Column("org", sa.Text, primary_key=True),
    )
    op.create_table(
        "senders",
        sa.Column("org", sa.Text, primary_key=True),
        sa.Column("client", sa.Text, primary_key=True),
    )


def downgrade() -> None:
    for table in ("senders", "response_orgs", "notifications", "subscriptions"):
        op.drop_table(table)
