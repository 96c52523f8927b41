"""Stored resources: what a PAS request held (Claim, Patient, ...), served at /fhir/{type}/{id}; and every
version of each ClaimResponse, for _history (the versions already made keep their current one).

Revision ID: 0005
Revises: 0004
"""

from __future__ import annotations

import json

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "resources",
        sa.Column("type", sa.Text, primary_key=True),
        sa.Column("id", sa.Text, primary_key=True),
        sa.Column("claim_response_id", sa.Text, nullable=False),
        sa.Column("resource", sa.Text, nullable=False),
    )
    versions = op.create_table(
        "claim_response_versions",
        sa.Column("id", sa.Text, primary_key=True),
        sa.Column("version", sa.Integer, primary_key=True),
        sa.Column("resource", sa.Text, nullable=False),
    )
    current = op.get_bind().execute(sa.text("SELECT id, resource FROM claim_responses")).all()
    rows = [{"id": r.id, "version": int(json.loads(r.resource).get("meta", {}).get("versionId", 1)),
             "resource": r.resource} for r in current]  # fmt: skip
    if rows:
        op.bulk_insert(versions, rows)


def downgrade() -> None:
    op.drop_table("claim_response_versions")
    op.drop_table("resources")
