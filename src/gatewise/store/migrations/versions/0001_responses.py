"""The responses table: stored Responses API responses.

Revision ID: 0001
Revises:
Create Date: 2026-11-20
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

# Spelled out here, not imported from tables.py: a migration is a snapshot in time.
JSONDocument = sa.JSON().with_variant(JSONB(), "postgresql")


def upgrade() -> None:
    op.create_table(
        "responses",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("owner", sa.String(64), nullable=False),
        sa.Column("created_at", sa.BigInteger, nullable=False),
        sa.Column("model", sa.String(256), nullable=False),
        sa.Column("status", sa.String(32), nullable=False),
        sa.Column("previous_response_id", sa.String(64), nullable=True),
        sa.Column("request", JSONDocument, nullable=False),
        sa.Column("response", JSONDocument, nullable=False),
        sa.Column("input_items", JSONDocument, nullable=False),
        sa.Column("output_items", JSONDocument, nullable=False),
    )
    op.create_index("ix_responses_owner_id", "responses", ["owner", "id"])


def downgrade() -> None:
    op.drop_index("ix_responses_owner_id", table_name="responses")
    op.drop_table("responses")
