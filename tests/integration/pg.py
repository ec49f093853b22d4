"""PostgreSQL for tests: find the test server, and give each test a schema of its own.

Tests skip when the server at 127.0.0.1:5432/test is unreachable, unless
``GATEWISE_REQUIRE_SERVICES`` is set: then a missing PostgreSQL is a failure.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import uuid
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from functools import cache
from pathlib import Path

import pytest
import sqlalchemy as sa

from gatewise.store.engine import Database, make_engine

PG_URL = "postgresql+asyncpg://{user}@127.0.0.1:5432/test"


@cache
def postgres_url() -> str | None:
    """The URL of a reachable test database (user postgres, then root), or None."""
    import asyncpg

    async def probe(user: str) -> bool:
        try:
            connection = await asyncpg.connect(
                host="127.0.0.1", port=5432, user=user, database="test", timeout=3
            )
        except (TimeoutError, OSError, asyncpg.PostgresError):
            return False
        await connection.close()
        return True

    # Called from async fixtures too: probe on a loop of its own, in another thread.
    with ThreadPoolExecutor(1) as pool:
        for user in ("postgres", "root"):
            if pool.submit(asyncio.run, probe(user)).result():
                return PG_URL.format(user=user)
    return None


def require_postgres() -> str:
    url = postgres_url()
    if url is None:
        if os.environ.get("GATEWISE_REQUIRE_SERVICES"):
            pytest.fail("PostgreSQL at 127.0.0.1:5432/test is required but unreachable")
        pytest.skip(
            "PostgreSQL at 127.0.0.1:5432/test is unreachable (set GATEWISE_REQUIRE_SERVICES to fail)"
        )
    return url


class Backend:
    """Makes databases for one test: a SQLite file, or a PostgreSQL schema of its own."""

    def __init__(self, kind: str, tmp_path: Path) -> None:
        self.kind = kind
        self.url = f"sqlite+aiosqlite:///{tmp_path}/records.db"
        self.schema = f"gw_test_{uuid.uuid4().hex[:12]}"
        self.connect_args: dict[str, object] | None = None
        if kind == "postgresql":
            self.url = require_postgres()
            self.connect_args = {"server_settings": {"search_path": self.schema}}

    def database(self) -> Database:
        return Database(self.url, connect_args=self.connect_args)

    async def setup(self) -> None:
        if self.kind == "postgresql":
            await self._admin(f'CREATE SCHEMA "{self.schema}"')

    async def teardown(self) -> None:
        if self.kind == "postgresql":
            await self._admin(f'DROP SCHEMA IF EXISTS "{self.schema}" CASCADE')

    async def _admin(self, statement: str) -> None:
        admin = make_engine(self.url)
        async with admin.begin() as connection:
            await connection.execute(sa.text(statement))
        await admin.dispose()


@contextlib.asynccontextmanager
async def started_database(kind: str, tmp_path: Path) -> AsyncIterator[Database]:
    """A migrated records database of ``kind`` (sqlite or postgresql) for one test."""
    backend = Backend(kind, tmp_path)
    await backend.setup()
    database = backend.database()
    await database.start()
    try:
        yield database
    finally:
        await database.close()
        await backend.teardown()
