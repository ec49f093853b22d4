"""Counters in Redis, shared by every worker and replica: one Lua script call per decision.

``admit`` and ``settle`` are each one script call (EVALSHA, or EVAL when the
server has not cached the script yet), so a decision is atomic and costs one
round trip. Calls go through our own pipelined client (``state.resp``):
redis-py's pool and layers cost more than the round trip itself. The scripts
read Redis's clock (``TIME``), so replicas' clock skew does not matter; they
decide exactly as ``MemoryCounterStore`` does (exact GCRA, see ``lua/admit.lua``;
both are tested against the same rational reference). Every key expires on its
own (PEXPIRE).

Failure is fast and explicit: connecting and each call time out after ``timeout``
seconds, nothing is retried here, and any error becomes ``StateUnavailableError``
(``ResilientStore`` decides what that means). All keys of one call must be on
one server: a single Redis (a cluster would need hash tags in every key).
"""

from __future__ import annotations

import hashlib
import itertools
import math
import os
from collections.abc import Callable, Sequence
from importlib.resources import files
from urllib.parse import urlsplit

from gatewise.state.base import (
    Adjustment,
    Check,
    CheckState,
    Outcome,
    Quota,
    Rate,
    Settlement,
    Slots,
    StateUnavailableError,
)
from gatewise.state.memory import MICROS, micros
from gatewise.state.resp import Address, Arg, RespClient, RespError


class _Script:
    """A Lua script from ``state/lua`` (after ``common.lua``, which both scripts use),
    called by its SHA1 once the server has it."""

    def __init__(self, name: str) -> None:
        lua = files("gatewise.state").joinpath("lua")
        self.source = lua.joinpath("common.lua").read_text() + lua.joinpath(name).read_text()
        self.sha = hashlib.sha1(self.source.encode()).hexdigest()

    async def __call__(
        self, client: RespClient, keys: Sequence[str], args: Sequence[Arg]
    ) -> object:
        try:
            return await client.call("EVALSHA", self.sha, len(keys), *keys, *args)
        except RespError as error:
            if not str(error).startswith("NOSCRIPT"):
                raise
            # First call on this server (or after SCRIPT FLUSH / restart): EVAL caches it.
            return await client.call("EVAL", self.source, len(keys), *keys, *args)


_ADMIT = _Script("admit.lua")
_SETTLE = _Script("settle.lua")


def server_name(url: str) -> str:
    """``host:port/db`` of a Redis URL: names the server in errors without the password."""
    return Address.from_url(url).name


def _ms(seconds: float) -> int:
    """A PX/PEXPIRE argument: whole milliseconds, at least 1 (0 is an error in Redis)."""
    return max(1, math.ceil(seconds * 1000))


class RedisCounterStore:
    """A ``CounterStore`` in Redis.

    ``clock`` is for tests only: when given, the scripts use it instead of
    Redis's ``TIME`` (so shared test cases can step time). All calls share one
    pipelined connection (Redis runs commands one at a time anyway);
    ``max_connections`` is accepted for compatibility and not used.
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
        self._address = Address.from_url(url)
        self._server = self._address.name
        self._prefix = prefix
        self._timeout = timeout
        self._max_connections = max_connections
        self._clock = clock
        self._client: RespClient | None = None
        # Slot members must be unique across processes: a random stem and a counter.
        self._stem = os.urandom(6).hex()
        self._serial = itertools.count()

    async def start(self) -> None:
        """Builds the client; it connects on first use (a down Redis does not stop start)."""
        self._redis()

    async def close(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            await client.close()

    async def admit(self, checks: list[Check], settlement: Settlement | None = None) -> Outcome:
        if not checks and settlement is None:
            return Outcome(True, None, 0.0, [])
        keys: list[str] = []
        token = f"{self._stem}.{next(self._serial)}"
        args: list[Arg] = [self._now_arg(), token]
        adjustments, release = settlement if settlement is not None else ([], [])
        args.append(f"{len(adjustments)} {len(release)}")
        self._settlement(adjustments, release, keys, args)
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
        end = 2 + 3 * len(checks)
        states = [
            CheckState(check.limit, numbers[i], numbers[i + 1] / MICROS, numbers[i + 2])
            for check, i in zip(checks, range(2, end, 3), strict=True)
        ]
        refused = numbers[0] - 1 if numbers[0] else None
        retry = numbers[1] / MICROS
        return Outcome(refused is None, refused, retry, states, numbers[end:], token)

    async def settle(self, adjustments: list[Adjustment], release: list[Slots]) -> list[int]:
        if not adjustments and not release:
            return []
        keys: list[str] = []
        args: list[Arg] = [self._now_arg(), len(adjustments)]
        self._settlement(adjustments, release, keys, args)
        reply = await self._call(_SETTLE, keys, args)
        assert isinstance(reply, list)
        return [int(used) for used in reply]

    def _settlement(
        self, adjustments: list[Adjustment], release: list[Slots], keys: list[str], args: list[Arg]
    ) -> None:
        """The keys and specs of a settlement, as both scripts take them (``settle()`` in
        ``lua/common.lua``): each correction's key and spec, then the slot keys and the
        members they give back."""
        for adjustment in adjustments:
            check = adjustment.check
            keys.append(self._prefix + check.key)
            if isinstance(check, Rate):
                args.append(f"r {check.limit} {micros(check.period)} {adjustment.delta}")
            else:
                args.append(f"q {adjustment.delta} {_ms(check.ttl)}")
        for slot in release:
            keys.append(self._prefix + slot.key)
            args.append(slot.member)

    async def once(self, key: str, ttl: float) -> bool:
        try:
            reply = await self._redis().call("SET", self._prefix + key, "1", "NX", "PX", _ms(ttl))
        except (RespError, OSError) as exc:
            raise self._unavailable(exc) from exc
        return reply is not None

    # -- plumbing -------------------------------------------------------------------

    def _redis(self) -> RespClient:
        if self._client is None:
            self._client = RespClient(self._address, timeout=self._timeout)
        return self._client

    def _now_arg(self) -> str:
        return "" if self._clock is None else str(micros(self._clock()))

    async def _call(self, script: _Script, keys: list[str], args: list[Arg]) -> object:
        # Connecting and each call have their own timeout, so the whole is bounded by
        # three of them (connect, EVALSHA, and the NOSCRIPT fallback's EVAL).
        try:
            return await script(self._redis(), keys, args)
        except (RespError, OSError) as exc:
            raise self._unavailable(exc) from exc

    def _unavailable(self, exc: BaseException) -> StateUnavailableError:
        detail = str(exc) or type(exc).__name__
        for secret in (self._address.password, urlsplit(self._url).password):
            if secret:
                detail = detail.replace(secret, "***")
        return StateUnavailableError(f"Redis at {self._server} is unavailable: {detail}")
