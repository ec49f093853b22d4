"""The exact cache in Redis, shared by every worker and replica (``cache.backend: redis``).

One ``GET`` per lookup and one ``SET ... PX`` per stored reply, through the
project's pipelined RESP client (``state.resp``: one persistent connection,
8-15 µs a command against redis-py's 36-57 µs). Redis expires entries itself;
``maxmemory-policy allkeys-lru`` on the server bounds them by bytes.

A cache must never turn into an outage: a Redis that cannot be reached is a
miss, never an error, and it is logged once (and once more when it is back).
After a failure the store does not try again for ``retry_s`` seconds, so calls
made meanwhile do not each wait out a timeout. Writes go in the background
(``put`` returns at once); the few in flight are awaited on close.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections.abc import Callable

from gatewise.state.resp import Address, RespClient, RespError

log = logging.getLogger("gatewise")


class RedisCacheStore:
    """A ``CacheStore`` in Redis; keys are ``<prefix>cache:<key>``."""

    synchronous = False

    def __init__(
        self,
        url: str,
        *,
        prefix: str = "gw:",
        timeout: float = 0.1,
        retry_s: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        address = Address.from_url(url)
        self._server = address.name  # never the password
        self._client = RespClient(address, timeout=timeout)
        self._prefix = prefix + "cache:"
        self._retry_s = retry_s
        self._clock = clock
        self._down_until = 0.0
        self._down = False
        self._writes: set[asyncio.Future[None]] = set()

    @property
    def available(self) -> bool:
        """False while the store is waiting to try Redis again after a failure."""
        return not self._down or self._clock() >= self._down_until

    def get_now(self, key: str) -> bytes | None:
        raise TypeError("RedisCacheStore is not synchronous: await get()")

    async def get(self, key: str) -> bytes | None:
        if self._down and self._clock() < self._down_until:
            return None
        try:
            reply = await self._client.call("GET", self._prefix + key)
        except (RespError, OSError) as error:
            self._failed(error)
            return None
        self._up()
        return reply if isinstance(reply, bytes) else None

    def put(self, key: str, data: bytes, ttl_s: float) -> None:
        if self._down and self._clock() < self._down_until:
            return
        write = asyncio.ensure_future(self._set(self._prefix + key, data, ttl_s))
        self._writes.add(write)
        write.add_done_callback(self._writes.discard)

    async def _set(self, key: str, data: bytes, ttl_s: float) -> None:
        try:
            await self._client.call("SET", key, data, "PX", max(1, math.ceil(ttl_s * 1000)))
        except (RespError, OSError) as error:
            self._failed(error)
        else:
            self._up()

    async def close(self) -> None:
        if self._writes:
            await asyncio.wait(set(self._writes), timeout=1.0)
        await self._client.close()

    def _failed(self, error: BaseException) -> None:
        self._down_until = self._clock() + self._retry_s
        if not self._down:
            self._down = True
            log.warning(
                "response cache: Redis at %s is unavailable (%s); calls are misses until it "
                "is back",
                self._server,
                type(error).__name__,
            )

    def _up(self) -> None:
        if self._down:
            self._down = False
            log.warning("response cache: Redis at %s is available again", self._server)
