"""Usage rows become per-minute rollups: a row counts ``requests`` calls.

Rows written from now on sum the calls of one minute that share every id, the
model, provider, operation, status and flags; rows written before stay as they
are (one call each, which is what the new columns' defaults say). A call
without a price is counted in ``cost_unknown`` instead of being a NULL cost.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-28
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("usage") as batch:
        batch.add_column(
            sa.Column("requests", sa.BigInteger, nullable=False, server_default=sa.text("1"))
        )
        batch.add_column(
            sa.Column("cost_unknown", sa.BigInteger, nullable=False, server_default=sa.text("0"))
        )
        batch.alter_column("request_id", existing_type=sa.String(128), nullable=True)
    op.execute("UPDATE usage SET cost_unknown = 1 WHERE cost_micros IS NULL")


def downgrade() -> None:
    with op.batch_alter_table("usage") as batch:
        batch.alter_column("request_id", existing_type=sa.String(128), nullable=False)
        batch.drop_column("cost_unknown")
        batch.drop_column("requests")
