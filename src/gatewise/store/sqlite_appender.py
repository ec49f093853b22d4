"""Appending rows to a SQLite table from a thread of its own, with its own connection.

Usage records are written for every model call; through SQLAlchemy and aiosqlite
each batch costs a pool checkout, a transaction in greenlets and several hops
between the event loop and aiosqlite's thread, about 9 µs of CPU per row in all.
Here one long-lived thread holds one ``sqlite3`` connection and inserts whole
batches as multi-row INSERTs: the GIL is given up once per statement (not once
per row, which would make the writer wait for the busy event loop at every
row), and a batch costs ~4 µs per row, most of it inside SQLite.

Only for file databases: an in-memory SQLite cannot be shared between
connections, so it keeps the engine's path.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from itertools import chain
from pathlib import Path
from typing import Any

#: Rows per INSERT statement (SQLite allows 32,766 parameters in one).
ROWS_PER_STATEMENT = 500


class SQLiteAppender:
    """Inserts batches of rows into ``table`` (``columns`` in the rows' order)."""

    def __init__(
        self,
        path: Path,
        table: str,
        columns: Sequence[str],
        *,
        rows_per_statement: int = ROWS_PER_STATEMENT,
    ) -> None:
        self._path = path
        self._rows_per_statement = rows_per_statement
        self._head = f"INSERT INTO {table} ({', '.join(columns)}) VALUES "
        self._row = "(" + ", ".join("?" * len(columns)) + ")"
        self._statements: dict[int, str] = {}
        self._connection: sqlite3.Connection | None = None
        self._thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="gatewise-sqlite")

    async def append(self, rows: Sequence[tuple[Any, ...]]) -> None:
        """All ``rows`` in one transaction, or none of them (the error is raised)."""
        if rows:
            await asyncio.get_running_loop().run_in_executor(self._thread, self._insert, rows)

    async def close(self) -> None:
        await asyncio.get_running_loop().run_in_executor(self._thread, self._disconnect)
        self._thread.shutdown(wait=True)

    # -- in the appender's thread --------------------------------------------------------

    def _insert(self, rows: Sequence[tuple[Any, ...]]) -> None:
        connection = self._connect()
        try:
            connection.execute("BEGIN IMMEDIATE")
            step = self._rows_per_statement
            for start in range(0, len(rows), step):
                chunk = rows[start : start + step]
                connection.execute(self._statement(len(chunk)), tuple(chain.from_iterable(chunk)))
            connection.execute("COMMIT")
        except BaseException:
            self._disconnect()  # rolls back; the next batch starts on a fresh connection
            raise

    def _statement(self, rows: int) -> str:
        statement = self._statements.get(rows)
        if statement is None:
            statement = self._statements[rows] = self._head + ", ".join([self._row] * rows)
        return statement

    def _connect(self) -> sqlite3.Connection:
        if self._connection is None:
            connection = sqlite3.connect(self._path, isolation_level=None, timeout=10.0)
            # WAL is set on the file by the engine's connections; these are per connection.
            connection.execute("PRAGMA synchronous=NORMAL")
            connection.execute("PRAGMA busy_timeout=10000")
            self._connection = connection
        return self._connection

    def _disconnect(self) -> None:
        connection, self._connection = self._connection, None
        if connection is not None:
            connection.close()
