"""Inquiry keys: which ClaimResponses a PAS inquiry finds, by the patient's member id and the provider's NPI.

Revision ID: 0004
Revises: 0003
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "inquiry_keys",
        sa.Column("member", sa.Text, primary_key=True),
        sa.Column("provider", sa.Text, primary_key=True),
        sa.Column("claim_response_id", sa.Text, primary_key=True),
    )


def downgrade() -> None:
    op.drop_table("inquiry_keys")
