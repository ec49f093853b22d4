"""The semantic cache's shared mode: entries every worker and replica sees, in Redis.

Searching stays local. Each worker mirrors every entry's vector into its own
in-memory index (``semantic_index.py``) by reading one Redis stream, and asks
Redis only for the reply of a hit (one GET). A lookup therefore costs the same as
in memory mode, and a miss (the common case) never waits on Redis at all.

- Storing: ``SET {prefix}r:{id} <reply> PX <ttl>`` and ``XADD {prefix}log MAXLEN ~
  <max_entries>`` with the entry's partition, id, vector (float32 bytes), expiry
  (Unix ms) and question (for the lexical guard), sent in the background; the
  storing worker indexes the entry at once.
- Following: every ``sync_interval_s`` each worker reads what the stream gained
  since its last id (from the start when it starts, so a new worker knows every
  live entry). Entries already expired are skipped.
- Expiry: Redis drops the reply at its TTL; the local row expires at the same time,
  and a hit whose reply is gone (evicted, flushed) is a miss.

Why not a vector index in the database: pgvector is not packaged for this
project's Debian PostgreSQL 15, and Redis's own vector search needs the Redis
Stack modules, which a plain Redis (what ``state.backend: redis`` needs) lacks.
Brute force over the partition fetched from Redis on every lookup would move up
to megabytes per request; the mirror moves each vector once per worker.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from typing import Any, cast

import numpy as np

from gatewise.cache.semantic import Partition, Question
from gatewise.cache.semantic_guard import signature
from gatewise.cache.semantic_index import SemanticIndex
from gatewise.state.resp import Address, RespClient, RespError

log = logging.getLogger("gatewise")

#: Separates tenant and model in a stream entry's partition field (neither contains it).
_SEP = "\x1f"
_BATCH = 500


class RedisEntries:
    """Replies in Redis, vectors mirrored into ``index`` (the cache's own index)."""

    def __init__(
        self,
        url: str,
        index: SemanticIndex[Any],
        *,
        prefix: str = "gw:sc:",
        max_entries: int = 10_000,
        interval_s: float = 0.25,
        timeout_s: float = 0.2,
        guard: bool = True,
    ) -> None:
        self.guard = guard
        self.client = RespClient(Address.from_url(url), timeout=timeout_s)
        self.index = index
        self.prefix = prefix
        self.log_key = prefix + "log"
        self.max_entries = max_entries
        self.interval_s = interval_s
        self.origin = os.urandom(6).hex()  # this worker: its own entries are not re-read
        self.last_id = b"0"
        self._task: asyncio.Task[None] | None = None
        self._writes: set[asyncio.Task[None]] = set()
        self._failing = False

    # --- storing ----------------------------------------------------------------------

    def publish(
        self, partition: Partition, vector: Any, reply: bytes, ttl_s: float, text: Question | None
    ) -> None:
        entry = os.urandom(9).hex()
        now = time.monotonic()
        question = text if self.guard else None
        stored = signature(question[1], question[0]) if question is not None else None
        self.index.add(partition, vector, (stored, entry), now + ttl_s, now)
        system, user = question or ("", "")
        task = asyncio.ensure_future(
            self._write(partition, vector, entry, reply, ttl_s, system, user)
        )
        self._writes.add(task)
        task.add_done_callback(self._writes.discard)

    async def _write(
        self,
        partition: Partition,
        vector: Any,
        entry: str,
        reply: bytes,
        ttl_s: float,
        system: str,
        user: str,
    ) -> None:
        ttl_ms = max(1, int(ttl_s * 1000))
        expires = int(time.time() * 1000) + ttl_ms
        vector_bytes = np.asarray(vector, dtype="<f4").tobytes()
        try:
            await self.client.call("SET", self.prefix + "r:" + entry, reply, "PX", ttl_ms)
            await self.client.call(
                "XADD", self.log_key, "MAXLEN", "~", self.max_entries, "*",
                "o", self.origin, "p", partition[0] + _SEP + partition[1],
                "i", entry, "v", vector_bytes, "x", expires, "s", system, "q", user,
            )  # fmt: skip
            self._recovered()
        except (OSError, TimeoutError, RespError) as exc:
            self._failed("store", exc)

    # --- reading ----------------------------------------------------------------------

    async def fetch(self, entry: str) -> bytes | None:
        try:
            reply = await self.client.call("GET", self.prefix + "r:" + entry)
        except (OSError, TimeoutError, RespError) as exc:
            self._failed("lookup", exc)
            return None
        return reply if isinstance(reply, bytes) else None

    async def sync(self) -> int:
        """Read what the stream gained since the last call; returns how many entries were
        indexed."""
        added = 0
        while True:
            reply = await self.client.call(
                "XREAD", "COUNT", _BATCH, "STREAMS", self.log_key, self.last_id
            )
            if not isinstance(reply, list) or not reply:
                return added
            entries = cast("list[list[Any]]", cast("list[Any]", reply[0])[1])
            wall, now = time.time() * 1000, time.monotonic()
            for stream_id, fields in entries:
                self.last_id = stream_id
                added += self._index(fields, wall, now)
            if len(entries) < _BATCH:
                return added

    def _index(self, fields: list[bytes], wall_ms: float, now: float) -> int:
        values = dict(zip(fields[::2], fields[1::2], strict=True))
        if values.get(b"o", b"").decode() == self.origin:
            return 0
        left_s = (int(values[b"x"]) - wall_ms) / 1000
        vector = np.frombuffer(values[b"v"], dtype="<f4")
        if left_s <= 0 or len(vector) != self.index.dimensions:
            return 0
        tenant, _, model = values[b"p"].decode().partition(_SEP)
        question = values.get(b"q", b"").decode()
        system = values.get(b"s", b"").decode()
        stored = signature(question, system) if question and self.guard else None
        self.index.add((tenant, model), vector, (stored, values[b"i"].decode()), now + left_s, now)
        return 1

    async def _follow(self) -> None:
        while True:
            try:
                await self.sync()
                self._recovered()
            except (OSError, TimeoutError, RespError, ValueError, KeyError) as exc:
                self._failed("sync", exc)
            await asyncio.sleep(self.interval_s)

    # --- lifetime ---------------------------------------------------------------------

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.ensure_future(self._follow())

    async def close(self) -> None:
        if self._writes:  # what was stored before the stop reaches Redis
            await asyncio.gather(*self._writes, return_exceptions=True)
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None
        await self.client.close()

    def _failed(self, what: str, exc: BaseException) -> None:
        if not self._failing:  # once per outage, not once per request
            self._failing = True
            log.warning("semantic cache: Redis %s failed (%s); serving without it", what, exc)

    def _recovered(self) -> None:
        if self._failing:
            self._failing = False
            log.info("semantic cache: Redis reachable again")
