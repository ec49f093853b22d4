"""Live health of upstream deployments, per worker: load, latency, breaker, cool-down and
the upstream's own rate-limit headroom.

Pure state, no I/O and no clock: every method that depends on time takes ``now``
(``time.monotonic()`` seconds), so the router passes one reading per call and tests
step time by hand. ``started``/``finished`` and ``HealthBoard.available`` run for
every attempt, so they are a few attribute updates each.

The breaker opens after ``failures`` consecutive failures, or when the failure share
of the last ``window_s`` seconds reaches ``error_rate`` over at least ``min_requests``
attempts (checked when a failure arrives). It stays open ``cooldown_s``, then goes
half-open: one probe at a time (``admit`` claims it); the probe's "ok" closes it, its
"failure" opens it again, its "neutral" frees the slot. Outcomes that arrive while it
is open (attempts sent before it opened) do not move it.

Sharing between replicas (``routing.shared``): the board queues its own transitions
(breaker opened or closed, cool-down set) and ``HealthBoard.pending()`` drains them;
``SharedHealth.run`` does that and writes them to Redis, so the router makes no extra
call. State applied from other replicas (``force_open``, ``force_close``,
``cool_down(..., share=False)``) is not queued, so nothing echoes back.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Literal

from gatewise.routing.ratelimits import REQUESTS, TOKENS, lowest

Outcome = Literal["ok", "failure", "neutral"]
BreakerState = Literal["closed", "open", "half_open"]
Transition = Literal["open", "closed"]
#: What ``HealthBoard.pending()`` reports: (deployment id, kind, monotonic time): the
#: until of an "open" or "cool", the moment of a "closed".
Change = tuple[str, Literal["open", "closed", "cool"], float]

#: The error window is this many fixed buckets of ``window_s / BUCKETS`` seconds.
BUCKETS = 10


@dataclass(frozen=True, slots=True)
class BreakerSettings:
    """When a deployment's breaker opens and for how long (``BreakerSettings()``: defaults)."""

    failures: int = 5
    error_rate: float = 0.5
    min_requests: int = 20
    window_s: float = 30.0
    cooldown_s: float = 30.0
    ewma_alpha: float = 0.2
    #: Remaining tokens at or below this (before their reset) put a deployment on the
    #: board's ``troubled`` list, so the router checks ``headroom(tokens)`` for it.
    low_tokens: int = 4096

    def __post_init__(self) -> None:
        if self.failures < 1 or self.min_requests < 1:
            raise ValueError("failures and min_requests must be at least 1")
        if not 0.0 < self.error_rate <= 1.0 or not 0.0 < self.ewma_alpha <= 1.0:
            raise ValueError("error_rate and ewma_alpha must be in (0, 1]")
        if self.window_s <= 0 or self.cooldown_s <= 0:
            raise ValueError("window_s and cooldown_s must be positive")


class DeploymentHealth:
    """One deployment's live state in this worker (satisfies ``types.HealthView``)."""

    __slots__ = (
        "_alpha",
        "_bad",
        "_board",
        "_good",
        "_head",
        "_next",
        "_open_until",
        "_per_s",
        "_probe_since",
        "_requests_left",
        "_requests_reset",
        "_slot",
        "_tokens_left",
        "_tokens_reset",
        "_total_bad",
        "_total_good",
        "consecutive_failures",
        "cooldown_until",
        "id",
        "in_flight",
        "settings",
        "total_ewma_ms",
        "ttfb_ewma_ms",
    )

    def __init__(
        self,
        settings: BreakerSettings | None = None,
        *,
        id: str = "",
        board: HealthBoard | None = None,
    ) -> None:
        self.id = id
        self._board = board
        self.in_flight = 0
        self.ttfb_ewma_ms: float | None = None
        self.total_ewma_ms: float | None = None
        self.consecutive_failures = 0
        #: None: closed; else the breaker is open until then, half-open after.
        self._open_until: float | None = None
        #: When the half-open probe was claimed (None: the slot is free).
        self._probe_since: float | None = None
        self.cooldown_until: float | None = None
        self._requests_left: int | None = None
        self._requests_reset: float | None = None
        self._tokens_left: int | None = None
        self._tokens_reset: float | None = None
        self.settings = settings = settings or BreakerSettings()
        self._alpha = settings.ewma_alpha
        #: The error window: counts per bucket, their sums, and the newest bucket's number.
        self._good = [0] * BUCKETS
        self._bad = [0] * BUCKETS
        self._total_good = self._total_bad = self._head = self._slot = 0
        self._per_s = BUCKETS / settings.window_s
        self._next = 0.0  # when the current bucket (number ``_head``) ends

    def configure(self, settings: BreakerSettings) -> None:
        """New settings keep the live state; a new window length restarts the window."""
        if settings.window_s != self.settings.window_s:
            self._per_s = BUCKETS / settings.window_s
            self._reset_window()
            self._head = self._slot = 0
            self._next = 0.0
        self.settings = settings
        self._alpha = settings.ewma_alpha

    # -- attempts -------------------------------------------------------------------

    def started(self) -> None:
        self.in_flight += 1

    def finished(
        self,
        outcome: Outcome,
        now: float,
        ttfb_ms: float | None = None,
        total_ms: float | None = None,
    ) -> Transition | None:
        """An attempt ended; returns the breaker transition it caused (to log), if any."""
        if self.in_flight > 0:
            self.in_flight -= 1
        if outcome == "ok":
            if ttfb_ms is not None:
                old = self.ttfb_ewma_ms
                self.ttfb_ewma_ms = ttfb_ms if old is None else old + self._alpha * (ttfb_ms - old)
            if total_ms is not None:
                old = self.total_ewma_ms
                self.total_ewma_ms = (
                    total_ms if old is None else old + self._alpha * (total_ms - old)
                )
            self.consecutive_failures = 0
            if self._open_until is None:
                if now >= self._next:
                    self._tick(now)
                self._good[self._slot] += 1
                self._total_good += 1
                return None
            return self._close(now) if now >= self._open_until else None
        if outcome == "failure":
            self.consecutive_failures += 1
            until = self._open_until
            if until is None:
                self._tick(now)
                self._bad[self._slot] += 1
                self._total_bad += 1
                settings = self.settings
                total = self._total_good + self._total_bad
                if self.consecutive_failures >= settings.failures or (
                    total >= settings.min_requests
                    and self._total_bad >= settings.error_rate * total
                ):
                    return self._open(now)
                return None
            return self._open(now) if now >= until else None
        if self._open_until is not None:  # neutral: a probe's slot is free again
            self._probe_since = None
        return None

    # -- breaker --------------------------------------------------------------------

    def state(self, now: float) -> BreakerState:
        until = self._open_until
        return "closed" if until is None else "open" if now < until else "half_open"

    def admit(self, now: float) -> bool:
        """Whether an attempt may be sent now; in half-open this claims the one probe."""
        until = self._open_until
        if until is None:
            return True
        if now < until or not self._probe_free(now):
            return False
        self._probe_since = now
        return True

    def available(self, now: float) -> bool:
        """Whether the router may pick it now: the breaker lets an attempt through and it
        is not cooling down (no side effects: ``admit`` claims). Upstream headroom is
        advisory and separate (``headroom``): the router may still try it last."""
        until = self._open_until
        if until is not None and (now < until or not self._probe_free(now)):
            return False
        return not self.cooling(now)

    def troubled(self, now: float) -> bool:
        """Not closed, cooling down, or low on upstream headroom: needs a look per call."""
        return self._open_until is not None or self.cooling(now) or self._low(now)

    def force_open(self, until: float) -> bool:
        """Opens until ``until`` (another replica found it broken); not queued for sharing."""
        if self._open_until is not None and self._open_until >= until:
            return False
        self._open_until, self._probe_since = until, None
        self._flag()
        return True

    @property
    def open_until(self) -> float | None:
        """When the breaker goes half-open (None: closed)."""
        return self._open_until

    def force_close(self, opened_before: float | None = None) -> bool:
        """Closes (another replica's probe succeeded at ``opened_before``: only a breaker
        that opened earlier); not queued for sharing."""
        until = self._open_until
        if until is None:
            return False
        if opened_before is not None and until - self.settings.cooldown_s > opened_before:
            return False
        self._open_until = self._probe_since = None
        self.consecutive_failures = 0
        self._reset_window()
        return True

    def _probe_free(self, now: float) -> bool:
        # A probe that never reports (lost) frees its slot after another cool-down.
        since = self._probe_since
        return since is None or now - since >= self.settings.cooldown_s

    def _open(self, now: float) -> Transition:
        until = now + self.settings.cooldown_s
        self._open_until, self._probe_since = until, None
        self._flag()
        if self._board is not None:
            self._board._queue(self.id, "open", until)
        return "open"

    def _close(self, now: float) -> Transition:
        self.force_close()
        if self._board is not None:
            self._board._queue(self.id, "closed", now)
        return "closed"

    # -- error window ---------------------------------------------------------------

    def requests(self, now: float) -> int:
        """Attempts that ended ok or failed over the last window."""
        self._tick(now)
        return self._total_good + self._total_bad

    def error_rate(self, now: float) -> float | None:
        """Failure share over the last window (None: no attempts ended)."""
        total = self.requests(now)
        return self._total_bad / total if total else None

    def _tick(self, now: float) -> None:
        """Moves the window to ``now``'s bucket, dropping buckets that left it (a ``now``
        older than the current bucket counts in the current bucket)."""
        if now < self._next:
            return
        index, head = int(now * self._per_s), self._head
        if index > head:
            if index - head >= BUCKETS:
                self._reset_window()
            else:
                good, bad = self._good, self._bad
                for step in range(head + 1, index + 1):
                    slot = step % BUCKETS
                    self._total_good -= good[slot]
                    self._total_bad -= bad[slot]
                    good[slot] = bad[slot] = 0
            self._head, self._slot = index, index % BUCKETS
        self._next = (self._head + 1) / self._per_s

    def _reset_window(self) -> None:
        self._good[:] = self._bad[:] = [0] * BUCKETS
        self._total_good = self._total_bad = 0

    # -- cool-down and upstream headroom --------------------------------------------

    def cool_down(self, until: float, *, share: bool = True) -> None:
        """No attempts before ``until`` (a 429's retry-after, quota awareness)."""
        if self.cooldown_until is not None and self.cooldown_until >= until:
            return
        self.cooldown_until = until
        self._flag()
        if share and self._board is not None:
            self._board._queue(self.id, "cool", until)

    def cooling(self, now: float) -> bool:
        until = self.cooldown_until
        return until is not None and now < until

    def observe_headers(
        self, headers: Mapping[str, str], now: float, wall: float | None = None
    ) -> None:
        """Records the upstream's remaining requests and tokens (lower-case names; the
        smallest count wins; ``wall`` converts RFC 3339 resets, default ``time.time()``)."""
        requests = lowest(headers, REQUESTS, now, wall)
        if requests is not None:
            self._requests_left, self._requests_reset = requests
        tokens = lowest(headers, TOKENS, now, wall)
        if tokens is not None:
            self._tokens_left, self._tokens_reset = tokens
        if self._low(now):
            self._flag()

    def headroom(self, tokens: int, now: float) -> bool:
        """False while the upstream said it has no requests or fewer than ``tokens`` left
        (a call needs at least one), until that count's reset. Unknown: True, and so is a
        count without a usable reset (it could never be retired)."""
        left, reset = self._requests_left, self._requests_reset
        if left is not None and left <= 0 and reset is not None and now < reset:
            return False
        left, reset = self._tokens_left, self._tokens_reset
        return not (
            left is not None and left < max(tokens, 1) and reset is not None and now < reset
        )

    def _low(self, now: float) -> bool:
        return not self.headroom(self.settings.low_tokens + 1, now)

    def _flag(self) -> None:
        if self._board is not None:
            self._board.troubled.add(self.id)

    # -- admin ------------------------------------------------------------------------

    def snapshot(self, now: float) -> dict[str, object]:
        """A JSON-ready view (seconds are relative to ``now``)."""
        open_until = self._open_until
        return {
            "state": self.state(now),
            "open_remaining_s": _left(open_until, now),
            "probe_in_flight": open_until is not None and not self._probe_free(now),
            "cooldown_remaining_s": _left(self.cooldown_until, now),
            "in_flight": self.in_flight,
            "ttfb_ewma_ms": self.ttfb_ewma_ms,
            "total_ewma_ms": self.total_ewma_ms,
            "requests": self.requests(now),
            "error_rate": self.error_rate(now),
            "consecutive_failures": self.consecutive_failures,
            "headroom": {
                "remaining_requests": self._requests_left,
                "requests_reset_s": _left(self._requests_reset, now),
                "remaining_tokens": self._tokens_left,
                "tokens_reset_s": _left(self._tokens_reset, now),
            },
        }


class HealthBoard:
    """This worker's ``DeploymentHealth`` by deployment id.

    ``troubled`` holds the ids that need a look per call (breaker not closed, cooling,
    low headroom); when it is empty every deployment is available and the router
    skips all checks. Ids are added as trouble starts and dropped by ``available``
    once it finds the deployment recovered.
    """

    __slots__ = ("_items", "_pending", "settings", "troubled")

    def __init__(self, settings: BreakerSettings | None = None) -> None:
        self.settings = settings or BreakerSettings()
        self._items: dict[str, DeploymentHealth] = {}
        self.troubled: set[str] = set()
        # Latest change per (id, breaker|cool): bounded even when nobody drains it.
        self._pending: dict[tuple[str, bool], Change] = {}

    def get(self, id: str) -> DeploymentHealth:
        health = self._items.get(id)
        if health is None:
            health = self._items[id] = DeploymentHealth(self.settings, id=id, board=self)
        return health

    def peek(self, id: str) -> DeploymentHealth | None:
        """The deployment's state if it has any (does not create it)."""
        return self._items.get(id)

    def items(self) -> Iterator[tuple[str, DeploymentHealth]]:
        return iter(list(self._items.items()))

    def available(self, id: str, now: float) -> bool:
        """``DeploymentHealth.available``, and drops ``id`` from ``troubled`` once healthy."""
        if id not in self.troubled:
            return True
        health = self._items[id]
        if not health.troubled(now):
            self.troubled.discard(id)
            return True
        return health.available(now)

    def configure(self, settings: BreakerSettings) -> None:
        """Config reload: new settings, same live state."""
        self.settings = settings
        for health in self._items.values():
            health.configure(settings)

    def pending(self) -> list[Change]:
        """The transitions to share since the last call (then forgotten)."""
        changes = list(self._pending.values())
        self._pending.clear()
        return changes

    def has_pending(self, id: str) -> bool:
        """Whether a breaker transition of ``id`` waits to be shared."""
        return (id, True) in self._pending

    def _queue(self, id: str, kind: Literal["open", "closed", "cool"], at: float) -> None:
        self._pending[(id, kind != "cool")] = (id, kind, at)


def _left(until: float | None, now: float) -> float | None:
    return None if until is None or until <= now else until - now
