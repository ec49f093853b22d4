"""Counters in Redis, shared by every worker and replica: one Lua script call per decision.

``admit`` and ``settle`` are each one script call (EVALSHA, or EVAL when the
server has not cached the script yet), so a decision is atomic and costs one
round trip. The scripts read Redis's clock (``TIME``), so replicas' clock skew
does not matter; they compute exactly what ``MemoryCounterStore`` computes (same
integer GCRA, see ``memory.Gcra``). Every key expires on its own (PEXPIRE).

Failure is fast and explicit: connect and read time out after ``timeout``
seconds, nothing is retried here, and any error becomes ``StateUnavailableError``
(``ResilientStore`` decides what that means). All keys of one call must be on
one server: a single Redis (a cluster would need hash tags in every key).
"""

from __future__ import annotations

import asyncio
import hashlib
import itertools
import math
import os
from collections.abc import Callable, Sequence
from importlib.resources import files
from urllib.parse import urlsplit

from redis.asyncio import BlockingConnectionPool, Redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import NoScriptError, RedisError

from gatewise.state.base import (
    Adjustment,
    Check,
    CheckState,
    Outcome,
    Quota,
    Rate,
    Slots,
    StateUnavailableError,
)
from gatewise.state.memory import MICROS, micros

Arg = str | int


class _Script:
    """A Lua script from ``state/lua``, called by its SHA1 once the server has it."""

    def __init__(self, name: str) -> None:
        self.source = files("gatewise.state").joinpath("lua", name).read_text()
        self.sha = hashlib.sha1(self.source.encode()).hexdigest()

    async def __call__(self, client: Redis, keys: Sequence[str], args: Sequence[Arg]) -> object:
        try:
            return await client.execute_command(  # type: ignore[no-untyped-call]
                "EVALSHA", self.sha, len(keys), *keys, *args
            )
        except NoScriptError:
            # First call on this server (or after SCRIPT FLUSH / restart): EVAL caches it.
            return await client.execute_command(  # type: ignore[no-untyped-call]
                "EVAL", self.source, len(keys), *keys, *args
            )


_ADMIT = _Script("admit.lua")
_SETTLE = _Script("settle.lua")


def server_name(url: str) -> str:
    """``host:port/db`` of a Redis URL: names the server in errors without the password."""
    parts = urlsplit(url)
    if parts.scheme == "unix":
        return f"unix:{parts.path}"
    db = parts.path.strip("/") or "0"
    return f"{parts.hostname or 'localhost'}:{parts.port or 6379}/{db}"


def _ms(seconds: float) -> int:
    """A PX/PEXPIRE argument: whole milliseconds, at least 1 (0 is an error in Redis)."""
    return max(1, math.ceil(seconds * 1000))


class RedisCounterStore:
    """A ``CounterStore`` in Redis.

    ``clock`` is for tests only: when given, the scripts use it instead of
    Redis's ``TIME`` (so shared test cases can step time). ``max_connections``
    bounds the pool; a request waits at most ``timeout`` for a free connection.
    """

    def __init__(
        self,
        url: str,
        *,
        prefix: str = "gw:",
        timeout: float = 0.1,
        max_connections: int = 64,
        clock: Callable[[], float] | None = None,
    ) -> None:
        self._url = url
        self._server = server_name(url)
        self._prefix = prefix
        self._timeout = timeout
        self._max_connections = max_connections
        self._clock = clock
        self._client: Redis | None = None
        # Slot members must be unique across processes: a random stem and a counter.
        self._stem = os.urandom(6).hex()
        self._serial = itertools.count()

    async def start(self) -> None:
        """Builds the pool; connections open on first use (a down Redis does not stop start)."""
        self._redis()

    async def close(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            await client.connection_pool.aclose()

    async def admit(self, checks: list[Check]) -> Outcome:
        if not checks:
            return Outcome(True, None, 0.0, [])
        keys: list[str] = []
        args: list[Arg] = [self._now_arg(), f"{self._stem}.{next(self._serial)}"]
        for check in checks:
            keys.append(self._prefix + check.key)
            if isinstance(check, Rate):
                args.append(f"r {check.limit} {micros(check.period)} {check.cost}")
            elif isinstance(check, Quota):
                hard = 1 if check.hard else 0
                args.append(f"q {check.limit} {check.cost} {_ms(check.ttl)} {hard}")
            else:
                args.append(f"s {check.limit} {micros(check.ttl)}")
        reply = await self._call(_ADMIT, keys, args)
        assert isinstance(reply, bytes)
        numbers = [int(field) for field in reply.split()]
        states = [
            CheckState(check.limit, numbers[i], numbers[i + 1] / MICROS, numbers[i + 2])
            for check, i in zip(checks, range(2, len(numbers), 3), strict=True)
        ]
        refused = numbers[0] - 1 if numbers[0] else None
        return Outcome(refused is None, refused, numbers[1] / MICROS, states)

    async def settle(self, adjustments: list[Adjustment], release: list[Slots]) -> list[int]:
        if not adjustments and not release:
            return []
        keys: list[str] = []
        args: list[Arg] = [self._now_arg(), len(adjustments)]
        for adjustment in adjustments:
            check = adjustment.check
            keys.append(self._prefix + check.key)
            if isinstance(check, Rate):
                args.append(f"r {check.limit} {micros(check.period)} {adjustment.delta}")
            else:
                args.append(f"q {adjustment.delta} {_ms(check.ttl)}")
        keys += [self._prefix + slot.key for slot in release]
        reply = await self._call(_SETTLE, keys, args)
        assert isinstance(reply, list)
        return [int(used) for used in reply]

    async def once(self, key: str, ttl: float) -> bool:
        command = ("SET", self._prefix + key, "1", "NX", "PX", _ms(ttl))
        try:
            async with asyncio.timeout(self._timeout * 3):
                reply = await self._redis().execute_command(*command)  # type: ignore[no-untyped-call]
        except (RedisError, OSError, TimeoutError) as exc:
            raise self._unavailable(exc) from exc
        return reply is not None

    # -- plumbing -------------------------------------------------------------------

    def _redis(self) -> Redis:
        if self._client is None:
            pool = BlockingConnectionPool.from_url(
                self._url,
                max_connections=self._max_connections,
                timeout=self._timeout,  # waiting for a free connection
                socket_timeout=self._timeout,
                socket_connect_timeout=self._timeout,
                retry=Retry(NoBackoff(), 0),
            )
            self._client = Redis(connection_pool=pool)
        return self._client

    def _now_arg(self) -> str:
        return "" if self._clock is None else str(micros(self._clock()))

    async def _call(self, script: _Script, keys: list[str], args: list[Arg]) -> object:
        # Each step has its own timeout; the outer one bounds their sum (pool wait,
        # connect, write, read, and the NOSCRIPT fallback).
        try:
            async with asyncio.timeout(self._timeout * 3):
                return await script(self._redis(), keys, args)
        except (RedisError, OSError, TimeoutError) as exc:
            raise self._unavailable(exc) from exc

    def _unavailable(self, exc: BaseException) -> StateUnavailableError:
        detail = str(exc) or type(exc).__name__
        password = urlsplit(self._url).password
        if password:
            detail = detail.replace(password, "***")
        return StateUnavailableError(f"Redis at {self._server} is unavailable: {detail}")
