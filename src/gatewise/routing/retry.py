"""Retries that cannot make an outage worse: jittered exponential backoff, and a budget
that caps retries at a share of the calls a worker makes.

A *retry* here is a second attempt on a deployment the call already tried (its plan
walked again). Moving on to the next deployment of the plan is failover, free of the
budget: it is what the plan is for, and the circuit breakers stop a broken deployment
from costing every call an attempt for long.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from gatewise.config.routing import RetryBudgetConfig

_BUCKETS = 10


def backoff_s(retry: int, base_ms: float, cap_ms: float, rng: random.Random) -> float:
    """Seconds to wait before the ``retry``-th retry (1, 2 ...): "full jitter", uniform in
    [0, min(cap, base * 2 ** (retry - 1))], so retrying clients do not move in step."""
    ceiling = min(cap_ms, base_ms * 2.0 ** max(0, retry - 1))
    return rng.uniform(0.0, ceiling) / 1000.0


@dataclass(slots=True)
class _Bucket:
    start: float = -1.0
    calls: int = 0
    retries: int = 0


class RetryBudget:
    """At most ``ratio`` retries per call over the last ``window_s`` seconds, plus
    ``min_per_s`` retries a second whatever the traffic. Per worker, in memory."""

    __slots__ = ("_buckets", "_span", "min_per_s", "ratio", "window_s")

    def __init__(self, config: RetryBudgetConfig) -> None:
        self.ratio = config.ratio
        self.window_s = config.window_s
        self.min_per_s = config.min_per_s
        self._span = config.window_s / _BUCKETS
        self._buckets = [_Bucket() for _ in range(_BUCKETS)]

    def _bucket(self, now: float) -> _Bucket:
        start = now - now % self._span
        bucket = self._buckets[int(now / self._span) % _BUCKETS]
        if bucket.start != start:
            bucket.start, bucket.calls, bucket.retries = start, 0, 0
        return bucket

    def called(self, now: float) -> None:
        """A call made its first attempt."""
        self._bucket(now).calls += 1

    def try_retry(self, now: float) -> bool:
        """Spend one retry if the budget has it (and count it)."""
        oldest = now - self.window_s
        calls = retries = 0
        for bucket in self._buckets:
            if bucket.start > oldest:
                calls += bucket.calls
                retries += bucket.retries
        if retries >= self.ratio * calls + self.min_per_s * self.window_s:
            return False
        self._bucket(now).retries += 1
        return True

    def snapshot(self, now: float) -> dict[str, float]:
        oldest = now - self.window_s
        live = [b for b in self._buckets if b.start > oldest]
        return {
            "calls": sum(b.calls for b in live),
            "retries": sum(b.retries for b in live),
            "ratio": self.ratio,
            "window_s": self.window_s,
        }
