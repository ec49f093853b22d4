"""Keeps each worker's ``Directory`` in step with the identity records.

A worker loads one snapshot at start, then asks the records store for the
identity version every ``poll_seconds`` (one single-row SELECT, never per
request). Every mutation bumps that version in the same transaction, so a
revoked key stops working on every worker of every replica within
``poll_seconds`` plus one snapshot load — the store is the one source of
truth for SQLite (workers of one host) and PostgreSQL (many hosts) alike.
When the store is unreachable the last directory keeps serving and the poll
retries; a worker that never loaded one refuses to start.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Protocol

from gatewise.identity.directory import Directory
from gatewise.identity.records import Snapshot

log = logging.getLogger("gatewise.identity")


class SnapshotSource(Protocol):
    async def version(self) -> int: ...

    async def snapshot(self) -> Snapshot: ...


class IdentityCache:
    def __init__(self, source: SnapshotSource, poll_seconds: float = 0.5) -> None:
        self._source = source
        self._poll_seconds = poll_seconds
        self._directory: Directory | None = None
        self._task: asyncio.Task[None] | None = None
        self._refresh_lock = asyncio.Lock()

    @property
    def directory(self) -> Directory:
        if self._directory is None:
            raise RuntimeError("the identity cache is not started")
        return self._directory

    async def start(self) -> None:
        self._directory = Directory(await self._source.snapshot())
        self._task = asyncio.create_task(self._poll(), name="gatewise-identity-poll")

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def refresh(self) -> bool:
        """Reload if the records changed; True when a new directory was swapped in."""
        async with self._refresh_lock:
            version = await self._source.version()
            if self._directory is not None and version == self._directory.version:
                return False
            snapshot = await self._source.snapshot()
            self._directory = Directory(snapshot)
            log.debug("identity directory reloaded at version %s", snapshot.version)
            return True

    async def _poll(self) -> None:
        failing = False
        while True:
            await asyncio.sleep(self._poll_seconds)
            try:
                await self.refresh()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # keep serving the last directory
                if not failing:
                    log.warning("identity refresh failed, serving cached identities: %s", exc)
                failing = True
            else:
                if failing:
                    log.info("identity refresh recovered")
                failing = False
