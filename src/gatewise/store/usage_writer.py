"""The usage writer: records batched into the database off the request path.

The request path only calls ``UsageWriter.submit``: a bounds check and an append,
never an await. A background task drains the queue in batches every
``flush_interval`` seconds, or sooner when a batch is full; the repository
(``usage``) sums each batch into per-minute rows. A failing insert keeps its
batch and retries with backoff, a bounded number of times; ``close`` writes
everything still queued, so a clean stop loses nothing. With a spool
(``usage_spool``), the records queued also go to a local file every 50 ms, and a
start replays what a killed process left there: a ``kill -9`` loses at most the
last 50 ms of records. When the queue is full (the database is down or too slow
for the traffic), records are dropped and counted rather than slowing the
gateway down.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import time
from collections import deque
from collections.abc import Callable
from pathlib import Path
from typing import Any

from gatewise.store.engine import describe_error
from gatewise.store.usage import UsageRecord, UsageSink
from gatewise.store.usage_spool import SPOOL_INTERVAL, UsageSpool
from gatewise.store.usage_spool import available as spool_available
from gatewise.store.usage_spool import replay as spool_replay

log = logging.getLogger("gatewise.usage")

_WARN_EVERY = 10.0


class UsageWriter:
    """Batches usage records into the database from a background task (see the module doc).

    A batch becomes a few rollup rows, so batches are large: a full one (5,000 records)
    goes before the interval only above 5,000 calls a second per process; each early
    flush costs a thread hand-off and a commit. The queue holds four batches (about 300
    bytes a record: ~6 MB while the database is down).

    ``spool``: a folder for the local write-ahead spool (``store.usage_spool``): records
    reach a file there within ``SPOOL_INTERVAL`` of ``submit``; the writer's task first
    replays what stopped processes left in it. New records wait in ``_fresh`` until they
    are spooled, then join the queue."""

    def __init__(
        self,
        repository: UsageSink,
        *,
        max_queue: int = 20_000,
        batch_size: int = 5_000,
        flush_interval: float = 1.0,
        max_retries: int = 5,
        retry_delay: float = 0.5,
        clock: Callable[[], float] = time.monotonic,
        spool: Path | None = None,
    ) -> None:
        if max_queue < 1 or batch_size < 1 or flush_interval <= 0 or max_retries < 0:
            raise ValueError("need max_queue, batch_size >= 1, flush_interval > 0, retries >= 0")
        self._repository = repository
        self._max_queue = max_queue
        self._batch_size = batch_size
        self._flush_interval = flush_interval
        self._max_retries = max_retries
        self._retry_delay = retry_delay
        self._clock = clock
        self._queue: deque[UsageRecord] = deque()
        self._fresh: list[UsageRecord] = []  # submitted, not yet spooled (with a spool)
        self._spool = UsageSpool(spool) if spool is not None and spool_available() else None
        self._spool_timer: asyncio.TimerHandle | None = None
        self._wake = asyncio.Event()  # a full batch is waiting, or close
        self._stop = asyncio.Event()  # close: cuts a retry's backoff short
        self._closing = False
        self._task: asyncio.Task[None] | None = None
        self._last_warning = -math.inf
        self._unreported = 0
        #: Records refused by ``submit`` (queue full, or the writer closed).
        self.dropped = 0
        #: Records inserted.
        self.written = 0
        #: Records given up on after the insert failed every retry.
        self.failed = 0

    @property
    def queued(self) -> int:
        return len(self._queue) + len(self._fresh)

    @property
    def depth(self) -> int:
        """Records waiting to be written (the metrics' queue-depth gauge)."""
        return self.queued

    def start(self) -> None:
        """Start the background task (call from inside the running event loop)."""
        if self._task is None and not self._closing:
            self._task = asyncio.get_running_loop().create_task(self._run(), name="usage-writer")

    def submit(self, record: UsageRecord) -> bool:
        """Queue ``record`` for writing; False (and a drop counted) when full or closed."""
        if self._spool is not None:
            fresh = self._fresh
            if self._closing or len(self._queue) + len(fresh) >= self._max_queue:
                self._drop()
                return False
            fresh.append(record)
            if self._spool_timer is None:
                self._spool_timer = asyncio.get_running_loop().call_later(
                    SPOOL_INTERVAL, self._spool_fresh
                )
            return True
        if self._closing or len(self._queue) >= self._max_queue:
            self._drop()
            return False
        self._queue.append(record)
        if len(self._queue) == self._batch_size:
            self._wake.set()
        return True

    def _spool_fresh(self) -> None:
        """Spool the records submitted since the last time (one write), then queue them."""
        self._spool_timer = None
        fresh = self._fresh
        if not fresh:
            return
        assert self._spool is not None
        self._spool.append(fresh)
        self._fresh = []
        queue = self._queue
        before = len(queue)
        queue.extend(fresh)
        if before < self._batch_size <= len(queue):
            self._wake.set()

    async def close(self) -> None:
        """Write everything still queued (a last attempt for a failing batch), then stop."""
        self._closing = True
        self._wake.set()
        self._stop.set()
        if self._task is not None:
            await self._task
        else:
            await self._drain()
            if self._spool is not None:
                self._spool.close()

    def _drop(self) -> None:
        self.dropped += 1
        self._unreported += 1
        now = self._clock()
        if now - self._last_warning >= _WARN_EVERY:
            reason = "the writer is closed" if self._closing else "the queue is full"
            log.warning(
                "usage records dropped: %d since the last warning (%s; %d queued)",
                self._unreported,
                reason,
                len(self._queue),
            )
            self._last_warning = now
            self._unreported = 0

    async def _run(self) -> None:
        if self._spool is not None:  # first what stopped processes left in the spool
            await spool_replay(self._spool.folder, self._replay, self._batch_size)
        while not self._closing:
            await wait_or_timeout(self._wake, self._flush_interval)
            self._wake.clear()
            await self._drain()
        await self._drain()
        if self._spool is not None:
            self._spool.close()

    async def _replay(self, rows: list[tuple[Any, ...]]) -> None:
        records = [UsageRecord(*fields) for fields in rows]
        await self._repository.insert_many(records)
        self.written += len(records)

    async def _drain(self) -> None:
        """Write the queue batch by batch (on close: until it is empty)."""
        spool = self._spool
        if spool is not None:
            if self._spool_timer is not None:
                self._spool_timer.cancel()
            self._spool_fresh()  # everything taken below is in the spool, sealed
            spool.seal()
        while self._queue:
            count = min(self._batch_size, len(self._queue))
            batch = [self._queue.popleft() for _ in range(count)]
            await self._write(batch)
            if spool is not None:
                spool.written(count)  # in the database (or given up on): off the spool
            if not self._closing and len(self._queue) < self._batch_size:
                return  # wait for a full batch or the next tick

    async def _write(self, batch: list[UsageRecord]) -> None:
        """Insert ``batch``, retrying with backoff; once closing, one last attempt only."""
        attempt = 0
        while True:
            try:
                await self._repository.insert_many(batch)
            except Exception as exc:  # any failure: the writer must outlive it
                attempt += 1
                final = self._closing or attempt > self._max_retries
                log.error(
                    "usage insert of %d records failed (attempt %d, %s): %s",
                    len(batch),
                    attempt,
                    "giving up" if final else "will retry",
                    describe_error(exc, limit=200),
                )
                if final:
                    self.failed += len(batch)
                    return
                # Backoff, cut short by ``close`` (which then makes the last attempt).
                await wait_or_timeout(self._stop, min(self._retry_delay * 2 ** (attempt - 1), 30.0))
            else:
                self.written += len(batch)
                return


async def wait_or_timeout(event: asyncio.Event, seconds: float) -> None:
    """Until ``event`` is set or ``seconds`` have passed."""
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(event.wait(), seconds)
