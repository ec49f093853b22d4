"""One worker's metric counts: plain numbers in plain lists, shared with the others as snapshots.

Why not prometheus-client's multiprocess mode: there every ``inc``/``observe`` takes a
lock and writes into a memory-mapped file, and a histogram's bucket is found by a Python
loop; the dozen updates a request needs cost about 20-30 µs there. Here a request does
one dict lookup for its series and a few list increments (``bisect`` finds a bucket),
about 3-5 µs (``bench/metrics_cost.py`` measures it), and each worker writes its totals
to a file in the server's metrics folder once every ``share_interval_s``
(``observe.metrics_share``); a scrape merges the files of every worker.

Histograms keep one count per bucket (not cumulative) and the sum in the last slot.
Everything here is a counter (only grows) except ``gauges`` and ``breakers``, which the
worker sets from its live state when it shares or answers a scrape.
"""

from __future__ import annotations

from bisect import bisect_left
from dataclasses import dataclass, field
from typing import TypeVar

#: Request duration and time to first byte, in seconds (model calls take seconds).
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120)
#: Time spent in the gateway itself, in seconds (the hot path is sub-millisecond).
OVERHEAD_BUCKETS = (
    0.0001,
    0.00025,
    0.0005,
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
)
#: OpenTelemetry GenAI semantic conventions' advised boundaries.
TOKEN_BUCKETS = tuple(4**n for n in range(14))  # 1, 4, 16 ... 67,108,864
OPERATION_BUCKETS = tuple(0.01 * 2**n for n in range(14))  # 0.01, 0.02 ... 81.92
TTFT_BUCKETS = (
    0.001,
    0.005,
    0.01,
    0.02,
    0.04,
    0.06,
    0.08,
    0.1,
    0.25,
    0.5,
    0.75,
    1,
    2.5,
    5,
    7.5,
    10,
)

#: (front_door, operation, model, provider, status, tenant)
RequestKey = tuple[str, str, str, str, str, str]
#: (provider, provider type, model, operation, error type or "")
AttemptKey = tuple[str, str, str, str, str]
#: (guardrail, category, action, direction)
VerdictKey = tuple[str, str, str, str]
#: (front_door, kind, limit name)
LimitKey = tuple[str, str, str]


def histogram(buckets: tuple[float, ...]) -> list[float]:
    """Counts per bucket, one for +Inf, and the sum last."""
    return [0] * (len(buckets) + 2)


def observe(counts: list[float], buckets: tuple[float, ...], value: float) -> None:
    counts[bisect_left(buckets, value)] += 1  # le: a value on a boundary is in its bucket
    counts[-1] += value


class RequestSeries:
    """Everything counted about the requests of one label set."""

    __slots__ = (
        "cost_micros",
        "latency",
        "overhead",
        "requests",
        "tokens_in",
        "tokens_out",
        "ttfb",
        "ttft",
        "usage_in",
        "usage_out",
    )

    def __init__(self) -> None:
        self.requests = 0
        self.latency = histogram(LATENCY_BUCKETS)
        self.ttfb = histogram(LATENCY_BUCKETS)
        self.overhead = histogram(OVERHEAD_BUCKETS)
        self.tokens_in = 0
        self.tokens_out = 0
        self.cost_micros = 0
        #: gen_ai.client.token.usage (per call, by token type).
        self.usage_in = histogram(TOKEN_BUCKETS)
        self.usage_out = histogram(TOKEN_BUCKETS)
        #: gen_ai.server.time_to_first_token (successful streams).
        self.ttft = histogram(TTFT_BUCKETS)

    def dump(self) -> list[object]:
        return [
            self.requests,
            self.latency,
            self.ttfb,
            self.overhead,
            self.tokens_in,
            self.tokens_out,
            self.cost_micros,
            self.usage_in,
            self.usage_out,
            self.ttft,
        ]


class AttemptSeries:
    """Upstream attempts of one label set: gen_ai.client.operation.duration and errors."""

    __slots__ = ("attempts", "duration")

    def __init__(self) -> None:
        self.attempts = 0
        self.duration = histogram(OPERATION_BUCKETS)

    def dump(self) -> list[object]:
        return [self.attempts, self.duration]


@dataclass
class Snapshot:
    """One worker's totals as plain data (what the share files hold; ``marshal``-able)."""

    requests: dict[RequestKey, list[object]] = field(default_factory=dict)
    attempts: dict[AttemptKey, list[object]] = field(default_factory=dict)
    verdicts: dict[VerdictKey, int] = field(default_factory=dict)
    limits: dict[LimitKey, int] = field(default_factory=dict)
    #: Sampled from live state: in-flight requests, writer queue depths ... by name.
    gauges: dict[str, float] = field(default_factory=dict)
    #: Sampled counters (the usage writer's drops ...): totals kept by their owner.
    sampled: dict[str, float] = field(default_factory=dict)
    #: (deployment, state) -> 1 for this worker's breaker of each deployment.
    breakers: dict[tuple[str, str], int] = field(default_factory=dict)

    def as_tuple(self) -> tuple[object, ...]:
        return (
            self.requests,
            self.attempts,
            self.verdicts,
            self.limits,
            self.gauges,
            self.sampled,
            self.breakers,
        )


class MetricsStore:
    """This worker's counts (lives as long as the worker: counts survive config reloads)."""

    __slots__ = ("attempts", "limits", "requests", "verdicts")

    def __init__(self) -> None:
        self.requests: dict[RequestKey, RequestSeries] = {}
        self.attempts: dict[AttemptKey, AttemptSeries] = {}
        self.verdicts: dict[VerdictKey, int] = {}
        self.limits: dict[LimitKey, int] = {}

    def request_series(self, key: RequestKey) -> RequestSeries:
        series = self.requests.get(key)
        if series is None:
            series = self.requests[key] = RequestSeries()
        return series

    def attempt_series(self, key: AttemptKey) -> AttemptSeries:
        series = self.attempts.get(key)
        if series is None:
            series = self.attempts[key] = AttemptSeries()
        return series

    def snapshot(self) -> Snapshot:
        """The counts as plain data (deep copies: the live lists go on changing)."""
        return Snapshot(
            requests={key: _copy(s.dump()) for key, s in self.requests.items()},
            attempts={key: _copy(s.dump()) for key, s in self.attempts.items()},
            verdicts=dict(self.verdicts),
            limits=dict(self.limits),
        )


def _copy(values: list[object]) -> list[object]:
    return [list(v) if isinstance(v, list) else v for v in values]


def merge(snapshots: list[Snapshot]) -> Snapshot:
    """Every worker's totals summed (breaker states: how many workers are in each)."""
    total = Snapshot()
    for snap in snapshots:
        _add_series(total.requests, snap.requests)
        _add_series(total.attempts, snap.attempts)
        _add_numbers(total.verdicts, snap.verdicts)
        _add_numbers(total.limits, snap.limits)
        _add_numbers(total.gauges, snap.gauges)
        _add_numbers(total.sampled, snap.sampled)
        _add_numbers(total.breakers, snap.breakers)
    return total


K = TypeVar("K")
N = TypeVar("N", int, float)


def _add_numbers(target: dict[K, N], source: dict[K, N]) -> None:
    for key, value in source.items():
        target[key] = target.get(key, 0) + value


def _add_series(target: dict[K, list[object]], source: dict[K, list[object]]) -> None:
    for key, values in source.items():
        mine = target.get(key)
        if mine is None:
            target[key] = _copy(values)
            continue
        for index, value in enumerate(values):
            into = mine[index]
            if isinstance(value, list):
                assert isinstance(into, list)
                for slot, number in enumerate(value):
                    into[slot] += number
            else:
                assert isinstance(value, (int, float)) and isinstance(into, (int, float))
                mine[index] = into + value
