"""ClaimResponse times as instants (searches compared them as text, so zones and ``gt`` went wrong), and
audit columns bounded (client-supplied ids were kept whole).

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def _micros(text: str) -> int | None:
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return int(moment.timestamp() * 1_000_000)


def upgrade() -> None:
    with op.batch_alter_table("claim_responses") as batch:
        batch.add_column(sa.Column("updated_us", sa.BigInteger))
    table = sa.table("claim_responses", sa.column("id", sa.Text), sa.column("last_updated", sa.Text),
                     sa.column("updated_us", sa.BigInteger))  # fmt: skip
    bind = op.get_bind()
    rows = bind.execute(sa.select(table.c.id, table.c.last_updated)).all()
    for rid, updated in rows:
        bind.execute(table.update().where(table.c.id == rid).values(updated_us=_micros(updated)))
    op.drop_index("claim_responses_updated", "claim_responses")
    op.create_index("claim_responses_updated_us", "claim_responses", ["updated_us", "id"])
    audit = sa.table("audit", sa.column("who", sa.Text), sa.column("target", sa.Text))
    bind.execute(audit.update().values(who=sa.func.substr(audit.c.who, 1, 80),
                                       target=sa.func.substr(audit.c.target, 1, 160)))  # fmt: skip
    with op.batch_alter_table("audit") as batch:
        batch.alter_column("who", type_=sa.String(80), existing_nullable=False)
        batch.alter_column("action", type_=sa.String(80), existing_nullable=False)
        batch.alter_column("target", type_=sa.String(160))
        batch.alter_column("outcome", type_=sa.String(80), existing_nullable=False)


def downgrade() -> None:
    op.drop_index("claim_responses_updated_us", "claim_responses")
    op.create_index("claim_responses_updated", "claim_responses", ["last_updated"])
    with op.batch_alter_table("claim_responses") as batch:
        batch.drop_column("updated_us")
