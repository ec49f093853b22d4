"""Request records: one row per request (ids, caller, route, attempts, timing, tokens, cost,
guardrail verdicts, bodies per the tenant's privacy mode).

On PostgreSQL the table is partitioned by range of ``at`` (epoch seconds): the writer makes a
partition per day ahead of time and retention drops whole partitions; a default partition
catches any row no partition covers yet. SQLite has one plain table.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

# Spelled out here, not imported from tables.py: a migration is a snapshot in time.
Epoch: sa.Double[float] = sa.Double()
JSONDocument = sa.JSON().with_variant(JSONB(), "postgresql")
TABLE = "request_records"
INDEXES = {
    "ix_request_records_tenant_at": ["tenant_id", "at"],
    "ix_request_records_at": ["at"],
    "ix_request_records_key_at": ["key_id", "at"],
}


def _columns() -> list[sa.Column[object]]:
    return [
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("at", Epoch, primary_key=True),
        sa.Column("trace_id", sa.String(32), nullable=True),
        sa.Column("tenant_id", sa.String(32), nullable=True),
        sa.Column("team_id", sa.String(32), nullable=True),
        sa.Column("app_id", sa.String(32), nullable=True),
        sa.Column("user_id", sa.String(32), nullable=True),
        sa.Column("key_id", sa.String(32), nullable=True),
        sa.Column("front_door", sa.String(16), nullable=False),
        sa.Column("operation", sa.String(32), nullable=False),
        sa.Column("method", sa.String(8), nullable=False),
        sa.Column("path", sa.String(256), nullable=False),
        sa.Column("model", sa.String(256), nullable=True),
        sa.Column("deployment", sa.String(128), nullable=True),
        sa.Column("provider", sa.String(64), nullable=True),
        sa.Column("stream", sa.Boolean, nullable=False),
        sa.Column("status", sa.Integer, nullable=False),
        sa.Column("error_type", sa.String(64), nullable=True),
        sa.Column("duration_ms", sa.Double, nullable=False),
        sa.Column("first_byte_ms", sa.Double, nullable=True),
        sa.Column("overhead_ms", sa.Double, nullable=True),
        sa.Column("prompt_tokens", sa.BigInteger, nullable=False),
        sa.Column("completion_tokens", sa.BigInteger, nullable=False),
        sa.Column("cached_tokens", sa.BigInteger, nullable=False),
        sa.Column("usage_estimated", sa.Boolean, nullable=False),
        sa.Column("cost_micros", sa.BigInteger, nullable=True),
        sa.Column("cache", sa.String(16), nullable=True),
        sa.Column("attempts", JSONDocument, nullable=True),
        sa.Column("guardrails", JSONDocument, nullable=True),
        sa.Column("decisions", JSONDocument, nullable=True),
        sa.Column("client_ip", sa.String(64), nullable=True),
        sa.Column("user_agent", sa.String(512), nullable=True),
        sa.Column("privacy", sa.String(16), nullable=False),
        sa.Column("request_body", sa.Text, nullable=True),
        sa.Column("response_body", sa.Text, nullable=True),
    ]


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.create_table(TABLE, *_columns(), postgresql_partition_by="RANGE (at)")
        op.execute(f"CREATE TABLE {TABLE}_default PARTITION OF {TABLE} DEFAULT")
    else:
        op.create_table(TABLE, *_columns())
    for name, columns in INDEXES.items():
        op.create_index(name, TABLE, columns)


def downgrade() -> None:
    for name in INDEXES:
        op.drop_index(name, table_name=TABLE)
    op.drop_table(TABLE)  # on PostgreSQL this drops every partition with it
