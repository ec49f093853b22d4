"""The records database: one async SQLAlchemy engine, created and migrated at start.

The same Core statements run on SQLite (aiosqlite) and PostgreSQL (asyncpg).
SQLite runs in WAL mode with a busy timeout, so several worker processes can
share one file; PostgreSQL is for several gateway instances.
"""

from __future__ import annotations

import logging
from typing import Any

import orjson
from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine
from sqlalchemy.pool import StaticPool

from gatewise.store.migrations import upgrade_engine
from gatewise.store.urls import SQLITE, redacted, sqlite_path

log = logging.getLogger("gatewise.store")


class StoreError(Exception):
    """The records database cannot be opened or migrated (a start-up failure)."""


def _json_dumps(value: Any) -> str:
    return orjson.dumps(value).decode()


def make_engine(url: str, connect_args: dict[str, Any] | None = None) -> AsyncEngine:
    """An engine for a resolved URL (secrets filled in, SQLite path absolute)."""
    options: dict[str, Any] = {
        "json_serializer": _json_dumps,
        "json_deserializer": orjson.loads,
        "connect_args": connect_args or {},
    }
    if url.startswith(SQLITE):
        if sqlite_path(url) is None:
            options["poolclass"] = StaticPool  # in-memory: every session must share one
        engine = create_async_engine(url, **options)
        event.listen(engine.sync_engine, "connect", _sqlite_pragmas)
        return engine
    return create_async_engine(url, pool_size=10, max_overflow=20, **options)


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    for pragma in (
        "PRAGMA journal_mode=WAL",
        "PRAGMA synchronous=NORMAL",
        "PRAGMA busy_timeout=10000",
    ):
        cursor.execute(pragma)
    cursor.close()


class Database:
    """The records database of one worker: ``start`` opens and migrates, ``close`` disposes."""

    def __init__(self, url: str, connect_args: dict[str, Any] | None = None) -> None:
        self.url = url
        self._connect_args = connect_args
        self._engine: AsyncEngine | None = None

    @property
    def engine(self) -> AsyncEngine:
        if self._engine is None:
            raise RuntimeError("the records database is not started")
        return self._engine

    @property
    def shown_url(self) -> str:
        return redacted(self.url)

    async def start(self, *, migrate: bool = True) -> None:
        path = sqlite_path(self.url)
        if path is not None and not path.parent.is_dir():
            raise StoreError(
                f"store.url: the folder {path.parent} of the SQLite database does not exist"
            )
        engine = make_engine(self.url, self._connect_args)
        try:
            if migrate:
                await upgrade_engine(engine, self.url)
        except StoreError:
            await engine.dispose()
            raise
        except Exception as exc:
            await engine.dispose()
            # The driver's message may quote the URL: show only the redacted one.
            reason = describe_error(exc)
            raise StoreError(
                f"store.url: cannot open the records database {self.shown_url}: {reason}"
            ) from exc
        self._engine = engine

    async def close(self) -> None:
        if self._engine is not None:
            await self._engine.dispose()
            self._engine = None


def describe_error(exc: BaseException, *, limit: int = 300) -> str:
    """The error's type and the driver's first line about it, at most ``limit`` characters;
    never the URL (the driver may quote it, password included)."""
    cause = getattr(exc, "orig", None) or exc
    text = str(cause).strip().splitlines()
    message = f"{type(cause).__name__}: {text[0]}" if text else type(cause).__name__
    return message[:limit]
