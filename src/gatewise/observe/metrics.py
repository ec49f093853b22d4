"""The metrics observer: counts every finished request into this worker's ``MetricsStore``.

One call per request, on the hot path: a handful of dict lookups for bounded label
values (``metrics_labels``), one for the series, then list increments. No I/O and no
await: the store is shared with other workers by ``metrics_share`` in the background,
and gauges (in flight, queue depths, breakers) are read from live state only then.

Gateway overhead is the request's time minus the time its upstream attempts took
(hedged attempts overlap: never below zero); time to first byte is the request's time
minus what the last attempt spent after its first byte.
"""

from __future__ import annotations

from bisect import bisect_left
from time import perf_counter

from gatewise.core.context import RequestContext
from gatewise.corridor.observer import Observer
from gatewise.observe.metrics_labels import DOORS, NONE, OTHER, LabelSets, front_door
from gatewise.observe.metrics_store import (
    LATENCY_BUCKETS,
    OPERATION_BUCKETS,
    OVERHEAD_BUCKETS,
    TOKEN_BUCKETS,
    TTFT_BUCKETS,
    MetricsStore,
)

#: Requests that are not traffic: health checks (the scrape's own path is added).
NOT_COUNTED = frozenset({"/healthz", "/readyz"})


class MetricsObserver(Observer):
    """Counts requests, attempts, tokens, cost, verdicts and limit refusals."""

    __slots__ = ("_labels", "_skip", "_store")

    def __init__(self, store: MetricsStore, labels: LabelSets, scrape_path: str) -> None:
        self._store = store
        self._labels = labels
        self._skip = NOT_COUNTED | {scrape_path}

    def finished(self, ctx: RequestContext) -> None:
        now = perf_counter()
        path = ctx.path
        door = DOORS.get(path)
        if door is None:
            if path in self._skip:
                return
            door = front_door(path)
        labels = self._labels
        operation = labels.operations.get(ctx.operation, OTHER)
        model = labels.models.get(ctx.model, OTHER)
        attempts = ctx.attempts
        provider = labels.providers.get(attempts[-1].provider, OTHER) if attempts else NONE
        tenants = labels.tenants
        tenant = ""
        if tenants is not None:
            principal = ctx.principal
            owner = principal.tenant_id if principal is not None else None
            tenant = tenants.get(owner, OTHER) if owner is not None else NONE
        store = self._store
        key = (door, operation, model, provider, labels.status(ctx.status), tenant)
        series = store.requests.get(key)
        if series is None:
            series = store.request_series(key)
        series.requests += 1
        elapsed = now - ctx.started
        counts = series.latency
        counts[bisect_left(LATENCY_BUCKETS, elapsed)] += 1
        counts[-1] += elapsed
        upstream = 0.0
        if attempts:
            for attempt in attempts:
                upstream += attempt.duration_ms
                self._attempt(
                    attempt.provider, model, operation, attempt.error, attempt.duration_ms
                )
            last = attempts[-1]
            if last.status is not None:
                ttfb = elapsed - (last.duration_ms - last.first_byte_ms) / 1000.0
                counts = series.ttfb
                counts[bisect_left(LATENCY_BUCKETS, ttfb)] += 1
                counts[-1] += ttfb
                if ctx.stream and last.error is None:
                    counts = series.ttft
                    counts[bisect_left(TTFT_BUCKETS, ttfb)] += 1
                    counts[-1] += ttfb
            upstream /= 1000.0
        overhead = elapsed - upstream if elapsed > upstream else 0.0
        counts = series.overhead
        counts[bisect_left(OVERHEAD_BUCKETS, overhead)] += 1
        counts[-1] += overhead
        usage = ctx.usage
        if usage is not None:
            prompt, completion = usage.prompt_tokens, usage.completion_tokens
            series.tokens_in += prompt
            series.tokens_out += completion
            counts = series.usage_in
            counts[bisect_left(TOKEN_BUCKETS, prompt)] += 1
            counts[-1] += prompt
            counts = series.usage_out
            counts[bisect_left(TOKEN_BUCKETS, completion)] += 1
            counts[-1] += completion
        if ctx.cost_micros:
            series.cost_micros += ctx.cost_micros
        if ctx.guardrails:
            self._verdicts(ctx)
        if ctx.status == 429 and ctx.decisions:
            self._limits(ctx, door)

    def _attempt(
        self, provider: str, model: str, operation: str, error: str | None, duration_ms: float
    ) -> None:
        labels = self._labels
        name = labels.providers.get(provider, OTHER)
        kind = labels.provider_types.get(provider, OTHER)
        key = (name, kind, model, operation, labels.errors(error) if error else "")
        series = self._store.attempts.get(key)
        if series is None:
            series = self._store.attempt_series(key)
        series.attempts += 1
        seconds = duration_ms / 1000.0
        counts = series.duration
        counts[bisect_left(OPERATION_BUCKETS, seconds)] += 1
        counts[-1] += seconds

    def _verdicts(self, ctx: RequestContext) -> None:
        labels = self._labels
        verdicts = self._store.verdicts
        for verdict in ctx.guardrails:
            key = (
                labels.guardrails(verdict.guardrail),
                labels.categories(verdict.category),
                verdict.action if verdict.action in ("block", "mask", "flag") else OTHER,
                verdict.direction if verdict.direction in ("input", "output") else OTHER,
            )
            verdicts[key] = verdicts.get(key, 0) + 1

    def _limits(self, ctx: RequestContext, door: str) -> None:
        """A refusal by traffic control reads ``limited:<kind>:<name>[:<period>]``."""
        for decision in ctx.decisions:
            if decision.startswith("limited:"):
                parts = decision.split(":")
                kind = (
                    parts[1]
                    if parts[1] in ("requests", "tokens", "concurrent", "budget")
                    else OTHER
                )
                name = self._labels.limits(parts[2]) if len(parts) > 2 else NONE
                key = (door, kind, name)
                self._store.limits[key] = self._store.limits.get(key, 0) + 1
