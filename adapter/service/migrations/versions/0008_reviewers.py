"""The reviewer table: the physician reviewers who may sign in to the review page (by password, or through
OpenID Connect as a subject), each with the NPI their decisions carry.

Revision ID: 0008
Revises: 0007
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "reviewers",
        sa.Column("id", sa.Text, primary_key=True),
        sa.Column("npi", sa.Text, nullable=False, unique=True),
        sa.Column("name", sa.Text, nullable=False),
        sa.Column("email", sa.Text, unique=True),
        sa.Column("password", sa.Text),
        sa.Column("subject", sa.Text, unique=True),
        sa.Column("created", sa.Text, nullable=False),
        sa.Column("disabled", sa.Text),
    )


def downgrade() -> None:
    op.drop_table("reviewers")
