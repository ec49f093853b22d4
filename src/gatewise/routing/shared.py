"""Breaker and cool-down state shared by every worker and replica through Redis.

With ``state.backend: redis`` a deployment one replica found broken must be avoided
by all of them, without a Redis round trip per request: requests only ever read the
local ``HealthBoard``, and one background loop per worker (``SharedHealth.run``)
carries changes both ways every ``interval`` seconds.

Publishing: the board queues its own transitions (a breaker opened or closed, a
cool-down set: ``DeploymentHealth.finished`` and ``cool_down`` do it), so the router
makes no extra call; ``flush`` drains ``board.pending()`` and writes each change.
Reading: ``refresh`` does one HGETALL and applies what other replicas wrote.

Format: one hash ``{prefix}routing:health`` with two fields per deployment, each a
compact string with an epoch-milliseconds time: ``breaker:<id>`` holds
``open:<until>`` or ``closed:<when>`` and ``cool:<id>`` holds ``cool:<until>``. Two
fields hold both kinds and make every write a single HSET (no read-modify-write racing
another replica). A close is written, not deleted, so a replica whose breaker opened
before it closes too, while one that opened after keeps its own (newer) verdict.
Times cross replicas as wall-clock times and become monotonic ones on arrival.
Expired entries (and close marks older than ``closed_ttl``) are pruned now and then.

Best effort: a Redis error is logged once per outage and swallowed; routing keeps
working on local state, and changes made during an outage are not replayed.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time

from gatewise.routing.health import HealthBoard
from gatewise.state.resp import Address, Arg, RespClient, RespError

log = logging.getLogger("gatewise.routing")

#: Deletes fields only if they still hold the (expired) value read: a replica that
#: rewrote one in the meantime keeps its new value.
_PRUNE = """
local removed = 0
for i = 1, #ARGV, 2 do
  if redis.call('HGET', KEYS[1], ARGV[i]) == ARGV[i + 1] then
    removed = removed + redis.call('HDEL', KEYS[1], ARGV[i])
  end
end
return removed
"""


class SharedHealth:
    """Publishes this worker's breaker/cool-down changes and applies everyone else's.

    Takes a ``RespClient`` (which it does not close: the caller owns it) or a Redis URL
    (then it owns the client it builds).
    """

    def __init__(
        self,
        redis: RespClient | str,
        *,
        prefix: str = "gw:",
        timeout: float = 0.5,
        prune_every: float = 30.0,
        closed_ttl: float = 60.0,
    ) -> None:
        self._owned = isinstance(redis, str)
        if isinstance(redis, str):
            redis = RespClient(Address.from_url(redis), timeout=timeout)
        self._client = redis
        self.key = prefix + "routing:health"
        self._prune_every = prune_every
        self._closed_ttl_ms = closed_ttl * 1000.0
        self._pruned_at = -math.inf
        self._down = False

    # -- writes -----------------------------------------------------------------------

    async def publish_open(self, id: str, until_wall: float) -> bool:
        """Every replica should avoid ``id`` until ``until_wall`` (epoch seconds).
        Returns whether Redis took it."""
        return await self._hset("breaker:" + id, f"open:{_ms(until_wall)}")

    async def publish_cooldown(self, id: str, until_wall: float) -> bool:
        return await self._hset("cool:" + id, f"cool:{_ms(until_wall)}")

    async def publish_closed(self, id: str, at_wall: float | None = None) -> bool:
        """A probe succeeded at ``at_wall`` (default: now): breakers opened before close."""
        at = time.time() if at_wall is None else at_wall
        return await self._hset("breaker:" + id, f"closed:{_ms(at)}")

    async def flush(self, board: HealthBoard, now: float, wall: float) -> None:
        """Writes the board's queued transitions (monotonic times become wall times)."""
        for id, kind, at in board.pending():
            if kind == "open":
                await self.publish_open(id, wall + (at - now))
            elif kind == "cool":
                await self.publish_cooldown(id, wall + (at - now))
            else:
                await self.publish_closed(id, wall + (at - now))

    # -- reads ------------------------------------------------------------------------

    async def refresh(self, board: HealthBoard, now: float, wall: float) -> None:
        """Applies other replicas' entries to ``board``; ``now``/``wall`` are one reading of
        ``time.monotonic()`` and ``time.time()`` (to convert between the two)."""
        reply = await self._call("HGETALL", self.key)
        if not isinstance(reply, list):
            return
        wall_ms = wall * 1000.0
        expired: list[Arg] = []
        for field, value in zip(reply[::2], reply[1::2], strict=True):
            if not isinstance(field, bytes) or not isinstance(value, bytes):
                continue
            id = field.decode(errors="replace").partition(":")[2]
            kind, _, number = value.decode(errors="replace").partition(":")
            ms = int(number) if number.isascii() and number.isdigit() else 0  # garbage: pruned
            if ms <= (wall_ms - self._closed_ttl_ms if kind == "closed" else wall_ms):
                expired += [field, value]
                continue
            at = now + (ms - wall_ms) / 1000.0
            if kind == "cool":
                board.get(id).cool_down(at, share=False)
            elif board.has_pending(id):  # our own newer transition wins
                continue
            elif kind == "open":
                health = board.get(id)
                # Our own entry comes back a millisecond off: not a new opening.
                if health.open_until is None or at > health.open_until + 1.0:
                    health.force_open(at)
            elif kind == "closed" and (known := board.peek(id)) is not None:
                known.force_close(opened_before=at)
        if expired and now - self._pruned_at >= self._prune_every:
            self._pruned_at = now
            await self._call("EVAL", _PRUNE, 1, self.key, *expired)

    # -- the loop ---------------------------------------------------------------------

    async def run(self, board: HealthBoard, interval: float = 0.5) -> None:
        """Flushes and refreshes every ``interval`` seconds until cancelled."""
        while True:
            try:
                await self.flush(board, time.monotonic(), time.time())
                await self.refresh(board, time.monotonic(), time.time())
            except Exception:  # a bug must not end sharing for the process's lifetime
                log.exception("sharing routing health failed")
            await asyncio.sleep(interval)

    async def close(self) -> None:
        if self._owned:
            await self._client.close()

    async def _hset(self, field: str, value: str) -> bool:
        return await self._call("HSET", self.key, field, value) is not None

    async def _call(self, *args: Arg) -> object:
        """One command; None when Redis is unavailable (warned once per outage)."""
        try:
            reply = await self._client.call(*args)
        except (RespError, OSError) as exc:
            if not self._down:
                self._down = True
                log.warning(
                    "routing health: Redis at %s unavailable (%s); using local state only",
                    self._client.address.name,
                    str(exc) or type(exc).__name__,
                )
            return None
        if self._down:
            self._down = False
            log.info("routing health: Redis at %s reachable again", self._client.address.name)
        return reply


def _ms(wall: float) -> int:
    return math.ceil(wall * 1000.0)
