"""Alembic's environment: runs on the connection ``gatewise.store.migrations`` hands over."""

from __future__ import annotations

from alembic import context
from sqlalchemy import text
from sqlalchemy.engine import Connection

from gatewise.store.tables import metadata

# Serialises concurrent migrations of one schema on PostgreSQL (other schemas, e.g. other
# deployments or test runs in the same database, migrate independently).
ADVISORY_LOCK_CLASS = 0x6777  # "gw"
LOCK = "SELECT pg_advisory_xact_lock(:lock_class, hashtext(current_schema()))"


def run_migrations() -> None:
    connection: Connection | None = context.config.attributes.get("connection")
    if connection is None or context.is_offline_mode():
        raise RuntimeError(
            "run migrations with `gatewise db upgrade` (gatewise.commands.db.upgrade)"
        )
    context.configure(connection=connection, target_metadata=metadata, render_as_batch=True)
    with context.begin_transaction():
        if connection.dialect.name == "postgresql":
            connection.execute(text(LOCK), {"lock_class": ADVISORY_LOCK_CLASS})
        context.run_migrations()


run_migrations()
