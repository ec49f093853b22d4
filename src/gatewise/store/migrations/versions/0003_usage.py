"""Usage: one row per model call (tokens, cost, status), written in batches.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-04
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

# Spelled out here, not imported from tables.py: a migration is a snapshot in time.
Epoch: sa.Double[float] = sa.Double()
INDEXES = {
    "ix_usage_tenant_at": ["tenant_id", "at"],
    "ix_usage_at": ["at"],
}


def upgrade() -> None:
    op.create_table(
        "usage",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), primary_key=True),
        sa.Column("request_id", sa.String(128), nullable=False),
        sa.Column("at", Epoch, nullable=False),
        sa.Column("tenant_id", sa.String(32), nullable=True),
        sa.Column("team_id", sa.String(32), nullable=True),
        sa.Column("app_id", sa.String(32), nullable=True),
        sa.Column("user_id", sa.String(32), nullable=True),
        sa.Column("key_id", sa.String(32), nullable=True),
        sa.Column("model", sa.String(256), nullable=False),
        sa.Column("provider", sa.String(64), nullable=True),
        sa.Column("operation", sa.String(32), nullable=False),
        sa.Column("stream", sa.Boolean, nullable=False),
        sa.Column("status", sa.Integer, nullable=False),
        sa.Column("prompt_tokens", sa.BigInteger, nullable=False),
        sa.Column("completion_tokens", sa.BigInteger, nullable=False),
        sa.Column("cached_tokens", sa.BigInteger, nullable=False),
        sa.Column("cost_micros", sa.BigInteger, nullable=True),
        sa.Column("usage_estimated", sa.Boolean, nullable=False),
        sa.Column("duration_ms", sa.Double, nullable=False),
    )
    for name, columns in INDEXES.items():
        op.create_index(name, "usage", columns)


def downgrade() -> None:
    for name in INDEXES:
        op.drop_index(name, table_name="usage")
    op.drop_table("usage")
