"""Schema migrations (Alembic), applied when the gateway starts and by ``gatewise db upgrade``.

Start-up first reads ``alembic_version``: when the schema is already at
``HEAD`` (every start but the first) Alembic is not even imported. Otherwise
the upgrade runs under locks, so several workers starting together migrate
once: a file lock beside a SQLite database, a transaction-scoped advisory lock
on PostgreSQL (taken in ``env.py``), and a process-wide lock, because Alembic
keeps its migration context in module globals (two migrations at once in one
process, e.g. two gateways in threads, would share it).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import threading
from collections.abc import AsyncIterator
from pathlib import Path

from sqlalchemy import text
from sqlalchemy.engine import Connection
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine

from gatewise.store.urls import sqlite_path

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows: no concurrent workers to guard against
    fcntl = None  # type: ignore[assignment]

#: The newest revision in ``versions/`` (a test checks they agree).
HEAD = "0007"
SCRIPT_LOCATION = Path(__file__).parent
_PROCESS_LOCK = threading.Lock()


async def current_revision(engine: AsyncEngine) -> str | None:
    """The schema's revision, or None when it was never migrated."""
    try:
        async with engine.connect() as connection:
            result = await connection.execute(text("SELECT version_num FROM alembic_version"))
            row = result.first()
    except DBAPIError:
        return None
    return str(row[0]) if row is not None else None


async def upgrade_engine(engine: AsyncEngine, url: str) -> bool:
    """Bring the schema to ``HEAD``; returns whether a migration ran."""
    if await current_revision(engine) == HEAD:
        return False
    async with _migration_lock(url), engine.connect() as connection:
        await connection.run_sync(_run_alembic)
        await connection.commit()
    return True


def _run_alembic(connection: Connection, revision: str = "head") -> None:
    from alembic import command
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(SCRIPT_LOCATION).replace("%", "%%"))
    config.attributes["connection"] = connection
    command.upgrade(config, revision)


@contextlib.asynccontextmanager
async def _migration_lock(url: str) -> AsyncIterator[None]:
    await asyncio.to_thread(_PROCESS_LOCK.acquire)
    try:
        path = sqlite_path(url)
        if path is None or fcntl is None:
            yield  # PostgreSQL locks inside the migration transaction (env.py)
            return
        descriptor = os.open(f"{path}.migrate-lock", os.O_RDWR | os.O_CREAT, 0o600)
        try:
            await asyncio.to_thread(fcntl.flock, descriptor, fcntl.LOCK_EX)
            yield
        finally:
            os.close(descriptor)  # closing releases the lock
    finally:
        _PROCESS_LOCK.release()
