"""Request records for the life of a worker: the repository, the writer, the purge job.

Built once per worker (``runtime.services``) when ``observability.records.enabled``;
each config generation calls ``configure``: the privacy modes and retentions of
a reloaded config apply at once (a new ``RecordBodies`` step for the new
generation's corridor), while the writer and its queue stay.

The purge job runs in every worker, every ``purge_interval_s`` (first after a
random part of a minute, so workers do not start together): purges serialise
on the database (an advisory lock on PostgreSQL) and a second one finds
nothing left to remove.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from gatewise.config.records import RecordsConfig
from gatewise.observe.record_bodies import RecordBodies, privacy_of
from gatewise.observe.records import prepare
from gatewise.store.engine import Database, describe_error
from gatewise.store.records import PurgeResult, RecordsRepository
from gatewise.store.records_spill import SpillFiles, available, spill_folder
from gatewise.store.records_writer import RecordsWriter

if TYPE_CHECKING:
    from gatewise.identity.directory import Directory

log = logging.getLogger("gatewise.records")


class RecordsService:
    def __init__(
        self,
        config: RecordsConfig,
        database: Database,
        store_url: str,
        config_dir: Path | None,
        directory: Callable[[], Directory | None],
    ) -> None:
        self.config = config
        self.repository = RecordsRepository(database)
        spill = None
        if config.overflow == "spill" and available():
            spill = SpillFiles(spill_folder(config.spool, store_url, config_dir))
        self.writer = RecordsWriter(
            self.repository,
            prepare,
            max_queue=config.queue_size,
            batch_size=config.batch_size,
            flush_interval=config.flush_interval_ms / 1000,
            overflow=config.overflow,
            spill=spill,
        )
        self._directory = directory
        #: The step that keeps bodies (None: every tenant's mode is ``off``).
        self.bodies: RecordBodies | None = None
        self._purging: asyncio.Task[None] | None = None
        self.configure(config)

    def configure(self, config: RecordsConfig) -> None:
        """A (re)loaded config's privacy modes and retentions (the writer stays)."""
        self.config = config
        self.bodies = (
            RecordBodies(privacy_of(config, self._directory)) if config.keeps_bodies else None
        )
        # Rows with bodies (redaction of up to 100,000 characters each) are made in a
        # thread; without, in short slices on the event loop (see RecordsWriter._prepared).
        self.writer.prepare_on_loop = not config.keeps_bodies

    def start(self) -> None:
        self.writer.start()
        self._purging = asyncio.get_running_loop().create_task(
            self._purge_loop(), name="records-purge"
        )

    async def close(self) -> None:
        if self._purging is not None:
            self._purging.cancel()
            await asyncio.gather(self._purging, return_exceptions=True)
        await self.writer.close()  # writes (or spills) every queued record
        await self.repository.close()

    async def purge(self, now: float | None = None) -> PurgeResult:
        """Remove the records past their retention (tenants' own, by name, else the default)."""
        config = self.config
        tenant_days: dict[str, int] = {}
        directory = self._directory()
        if directory is not None:
            for name in config.tenants:
                tenant = directory.tenants_by_name.get(name)
                if tenant is not None:
                    tenant_days[tenant.id] = config.retention_of(name)
        return await self.repository.purge(
            time.time() if now is None else now, config.retention_days, tenant_days
        )

    async def _purge_loop(self) -> None:
        await asyncio.sleep(random.uniform(1.0, 60.0))
        while True:
            try:
                result = await self.purge()
                if result.partitions_dropped or result.rows_deleted:
                    log.info(
                        "request records purged: %d partitions dropped, %d rows deleted",
                        result.partitions_dropped,
                        result.rows_deleted,
                    )
            except Exception as exc:
                log.error("request records purge failed: %s", describe_error(exc, limit=200))
            await asyncio.sleep(self.config.purge_interval_s)
