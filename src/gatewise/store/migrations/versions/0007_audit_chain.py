"""The audit trail becomes a hash chain: ``seq``, ``prev_hash`` and ``hash`` on every entry,
and the one-row ``audit_head`` that appenders lock (see ``gatewise.store.audit_chain``).

Existing entries are chained in ``id`` order (the order they were written in), so a trail
kept before this revision verifies from its first entry. Downgrading drops the chain.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

# The hash itself is imported, not copied: an entry's hash must be computed exactly as the
# verifier computes it, today and after any later revision.
from gatewise.store.audit_chain import CHAINED, GENESIS, chain_hash

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

_BATCH = 1000


def upgrade() -> None:
    op.add_column("audit_log", sa.Column("seq", sa.BigInteger, nullable=True))
    op.add_column("audit_log", sa.Column("prev_hash", sa.String(64), nullable=True))
    op.add_column("audit_log", sa.Column("hash", sa.String(64), nullable=True))
    head = op.create_table(
        "audit_head",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("seq", sa.BigInteger, nullable=False),
        sa.Column("hash", sa.String(64), nullable=False),
    )
    seq, last = _chain_existing()
    op.bulk_insert(head, [{"id": 1, "seq": seq, "hash": last}])
    with op.batch_alter_table("audit_log") as batch:
        batch.alter_column("seq", existing_type=sa.BigInteger, nullable=False)
        batch.alter_column("prev_hash", existing_type=sa.String(64), nullable=False)
        batch.alter_column("hash", existing_type=sa.String(64), nullable=False)
        batch.create_unique_constraint("uq_audit_log_seq", ["seq"])


def _chain_existing() -> tuple[int, str]:
    """Chain the rows already there, in id order; returns the last seq and hash."""
    connection = op.get_bind()
    json_document = sa.JSON()
    table = sa.table(
        "audit_log",
        sa.column("id", sa.BigInteger),
        sa.column("at", sa.Double),
        *(sa.column(name, json_document) for name in ("before", "after")),
        *(sa.column(name, sa.String) for name in CHAINED if name not in ("at", "before", "after")),
        sa.column("seq", sa.BigInteger),
        sa.column("prev_hash", sa.String),
        sa.column("hash", sa.String),
    )
    columns = [table.c.id, *(table.c[name] for name in CHAINED)]
    update = (
        sa.update(table)
        .where(table.c.id == sa.bindparam("row_id"))
        .values(
            seq=sa.bindparam("new_seq"),
            prev_hash=sa.bindparam("new_prev"),
            hash=sa.bindparam("new_hash"),
        )
    )
    seq, prev, after = 0, GENESIS, None
    while True:
        select = sa.select(*columns).order_by(table.c.id).limit(_BATCH)
        if after is not None:
            select = select.where(table.c.id > after)
        rows = connection.execute(select).all()
        if not rows:
            return seq, prev
        changes = []
        for row in rows:
            seq += 1
            entry = dict(zip(CHAINED, row[1:], strict=True))
            digest = chain_hash(prev, entry)
            changes.append({"row_id": row[0], "new_seq": seq, "new_prev": prev, "new_hash": digest})
            prev = digest
        connection.execute(update, changes)
        after = rows[-1][0]


def downgrade() -> None:
    with op.batch_alter_table("audit_log") as batch:
        batch.drop_constraint("uq_audit_log_seq", type_="unique")
        batch.drop_column("hash")
        batch.drop_column("prev_hash")
        batch.drop_column("seq")
    op.drop_table("audit_head")
