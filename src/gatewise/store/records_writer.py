"""The request records writer: records batched into the database off the request path.

The request path only calls ``RecordsWriter.submit``: a bounds check and an
append, never an await. A background task takes the queue in batches (every
``flush_interval`` seconds, or sooner when a batch is full), turns the raw
records into rows in slices on the event loop (``prepare``: JSON, redaction of
bodies; see ``_prepared``) and
inserts them (``RecordsRepository.insert``: COPY on PostgreSQL).

When the queue is full, or the database refuses a batch, ``overflow`` decides:
``spill`` writes the rows to a local file (``records_spill``) and replays it
once inserts succeed again (or at the next start); ``drop`` drops and counts
them. ``close`` (a clean stop, SIGTERM) writes everything still queued, and
spills what the database does not take: nothing is lost on a clean stop.

``depth`` (records waiting in memory) and ``dropped`` are read by metrics.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections import deque
from collections.abc import Callable, Sequence
from typing import Any, Literal, Protocol

from gatewise.store.engine import describe_error
from gatewise.store.records_spill import SpillFiles
from gatewise.store.usage_writer import wait_or_timeout

#: Raw records made into rows between two yields to the event loop.
PREPARE_SLICE = 64

log = logging.getLogger("gatewise.records")

Row = tuple[Any, ...]
Prepare = Callable[[Sequence[Any]], list[Row]]
_WARN_EVERY = 10.0
#: Seconds between two looks for spilled rows to replay, while inserts succeed.
REPLAY_EVERY = 5.0
#: Seconds between writes of overflowing records to the spill file.
SPILL_EVERY = 0.05


class RecordsSink(Protocol):
    async def insert(self, rows: Sequence[Row]) -> None: ...


class RecordsWriter:
    """Batches request records into the database from a background task (module doc)."""

    def __init__(
        self,
        sink: RecordsSink,
        prepare: Prepare,
        *,
        max_queue: int = 50_000,
        batch_size: int = 2_000,
        flush_interval: float = 0.5,
        overflow: Literal["spill", "drop"] = "spill",
        spill: SpillFiles | None = None,
        max_retries: int = 3,
        retry_delay: float = 0.5,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if max_queue < 1 or batch_size < 1 or flush_interval <= 0 or max_retries < 0:
            raise ValueError("need max_queue, batch_size >= 1, flush_interval > 0, retries >= 0")
        self._sink = sink
        self._prepare = prepare
        self._max_queue = max_queue
        self._batch_size = batch_size
        self._flush_interval = flush_interval
        self._spill = spill if overflow == "spill" else None
        self._max_retries = max_retries
        self._retry_delay = retry_delay
        self._clock = clock
        self._queue: deque[Any] = deque()
        self._overflow: list[Any] = []  # past the queue's bound, to be spilled
        self._spill_timer: asyncio.TimerHandle | None = None
        self._wake = asyncio.Event()
        self._stop = asyncio.Event()
        self._closing = False
        self._task: asyncio.Task[None] | None = None
        self._healthy = True  # the last insert succeeded
        self._next_replay = 0.0
        self._last_warning = -math.inf
        self._unreported = 0
        #: Records dropped: queue full or database down with ``overflow: drop``, or the
        #: writer closed.
        self.dropped = 0
        #: Make rows on the event loop in slices (False: in a thread; see ``_prepared``).
        self.prepare_on_loop = True
        #: Records inserted (replayed ones included).
        self.written = 0
        #: Records written to spill files, and replayed from them.
        self.spilled = 0
        self.replayed = 0

    @property
    def depth(self) -> int:
        """Records waiting in memory."""
        return len(self._queue) + len(self._overflow)

    def start(self) -> None:
        """Start the background task (inside the running event loop)."""
        if self._task is None and not self._closing:
            self._task = asyncio.get_running_loop().create_task(self._run(), name="records-writer")

    def submit(self, record: Any) -> bool:
        """Queue ``record``; False when it could not be (spilled soon, or dropped)."""
        queue = self._queue
        if len(queue) < self._max_queue and not self._closing:
            queue.append(record)
            if len(queue) == self._batch_size:
                self._wake.set()
            return True
        if self._spill is not None and not self._closing:
            self._overflow.append(record)
            if self._spill_timer is None:
                self._spill_timer = asyncio.get_running_loop().call_later(
                    SPILL_EVERY, self._spill_overflow
                )
            return False
        self._drop(1)
        return False

    def replay_soon(self) -> None:
        """Look for spilled rows at the next tick (else every ``REPLAY_EVERY`` seconds)."""
        self._next_replay = 0.0
        self._wake.set()

    async def close(self) -> None:
        """Write everything queued (spill what the database does not take), then stop."""
        self._closing = True
        self._wake.set()
        self._stop.set()
        if self._task is not None:
            await self._task
        else:
            await self._drain()
            if self._spill is not None:
                self._spill.close()

    # --- the background task --------------------------------------------------------------

    async def _run(self) -> None:
        await self._replay()  # what earlier processes (or this one) left
        while not self._closing:
            await wait_or_timeout(self._wake, self._flush_interval)
            self._wake.clear()
            try:
                await self._drain()
                if self._spill is not None and self._clock() >= self._next_replay:
                    await self._replay()
            except Exception:  # the writer must outlive anything
                log.exception("request records writer")
        await self._drain()
        if self._spill is not None:
            self._spill.close()

    async def _drain(self) -> None:
        """Write the queue batch by batch (once closing: until it is empty)."""
        self._spill_overflow()
        while self._queue:
            queue = self._queue
            if len(queue) <= self._batch_size:  # the usual case: take the queue whole
                batch = list(queue)
                queue.clear()
            else:
                batch = [queue.popleft() for _ in range(self._batch_size)]
            rows = await self._prepared(batch)
            await self._write(rows)
            if not self._closing and len(self._queue) < self._batch_size:
                return
        self._spill_overflow()

    async def _prepared(self, batch: list[Any]) -> list[Row]:
        """``batch`` as rows: on the event loop ``PREPARE_SLICE`` at a time with a yield
        between slices, unless ``prepare_on_loop`` is off (rows with bodies to redact: a
        thread). In a thread a batch held the GIL for milliseconds at a stretch (the switch
        interval is 5 ms) and requests waited behind it. Measured with ``bench/run.py`` at
        c=1, the gateway's p99: 0.6 ms without records, 5.8 ms with the thread, 2.2-3.0 ms
        with slices (and 50-row SQLite statements); the rest is not found yet."""
        prepare = self._prepare
        if not self.prepare_on_loop:
            return await asyncio.to_thread(prepare, batch)
        if len(batch) <= PREPARE_SLICE:
            return prepare(batch)
        rows: list[Row] = []
        for start in range(0, len(batch), PREPARE_SLICE):
            rows += prepare(batch[start : start + PREPARE_SLICE])
            await asyncio.sleep(0)
        return rows

    async def _write(self, rows: list[Row]) -> None:
        """Insert ``rows``, retrying with backoff while the database was healthy; then
        spill them (or drop and count)."""
        if not self._healthy and self._spill is not None and self._clock() < self._next_replay:
            self._spill_rows(rows)  # the database failed a moment ago: no wait for it now
            return
        attempt = 0
        while True:
            try:
                await self._sink.insert(rows)
            except Exception as exc:
                attempt += 1
                final = self._closing or not self._healthy or attempt > self._max_retries
                log.error(
                    "request records: insert of %d failed (attempt %d, %s): %s",
                    len(rows),
                    attempt,
                    "giving up" if final else "will retry",
                    describe_error(exc, limit=200),
                )
                if final:
                    self._healthy = False
                    self._next_replay = self._clock() + REPLAY_EVERY
                    self._spill_rows(rows)
                    return
                await wait_or_timeout(self._stop, min(self._retry_delay * 2 ** (attempt - 1), 10.0))
            else:
                self.written += len(rows)
                if not self._healthy:
                    self._healthy = True
                    self._next_replay = 0.0  # the database is back: replay soon
                return

    async def _replay(self) -> None:
        spill = self._spill
        if spill is None:
            return
        self._next_replay = self._clock() + REPLAY_EVERY
        if not spill.waiting():
            return
        try:
            count = await spill.replay(self._sink.insert, self._batch_size)
        except Exception as exc:
            self._healthy = False
            log.error("request records: replay failed: %s", describe_error(exc, limit=200))
            return
        self._healthy = True
        self.replayed += count
        self.written += count

    # --- overflow ----------------------------------------------------------------------

    def _spill_overflow(self) -> None:
        if self._spill_timer is not None:
            self._spill_timer.cancel()
            self._spill_timer = None
        overflow, self._overflow = self._overflow, []
        if overflow:
            self._spill_rows(self._prepare(overflow))

    def _spill_rows(self, rows: list[Row]) -> None:
        if self._spill is not None and self._spill.append(rows):
            self.spilled += len(rows)
            return
        self._drop(len(rows))

    def _drop(self, count: int) -> None:
        self.dropped += count
        self._unreported += count
        now = self._clock()
        if now - self._last_warning >= _WARN_EVERY:
            log.warning(
                "request records dropped: %d since the last warning (%d queued)",
                self._unreported,
                len(self._queue),
            )
            self._last_warning = now
            self._unreported = 0
