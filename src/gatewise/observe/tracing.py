"""The tracing observer: queues every sampled request for its spans (``observe.spans``).

On the event loop it does almost nothing: it stamps each attempt's end
(``attempted``) and, when the request is over, decides sampling (the caller's
``traceparent`` decides for its trace; a new trace is sampled by ``sample_ratio``)
and queues the context. Its ``trace_sampler`` tells dispatch that the gateway traces:
each attempt then gets a client span id and sends it upstream (``observe.traceparent``).

With ``exporter: none`` nothing is queued: requests still get trace ids and
upstreams still get ``traceparent``. The health checks (``/healthz``, ``/readyz``)
are never traced: a load balancer polls them all day.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import TYPE_CHECKING

from gatewise.config.tracing import TracingConfig
from gatewise.core.context import Attempt, RequestContext
from gatewise.corridor.observer import Observer
from gatewise.observe.traceparent import ratio_sampler, sampled

if TYPE_CHECKING:  # (the OpenTelemetry SDK is needed only when spans are exported)
    from gatewise.observe.spans import SpanExport

_UNTRACED = frozenset({"/healthz", "/readyz"})


class Tracing(Observer):
    def __init__(
        self,
        config: TracingConfig,
        export: SpanExport | None,
        provider_types: Mapping[str, str],
    ) -> None:
        #: Whether a new trace is sampled, by its id (dispatch reads it: see the docstring).
        self.trace_sampler = ratio_sampler(config.sample_ratio)
        self._export = export
        #: Provider name -> type ("openai", "anthropic" ...): ``gen_ai.provider.name``.
        self._provider_types = dict(provider_types)

    def attempted(self, ctx: RequestContext, attempt: Attempt) -> None:
        attempt.ended = time.perf_counter()

    def finished(self, ctx: RequestContext) -> None:
        export = self._export
        if export is None or ctx.path in _UNTRACED:
            return
        if sampled(ctx, self.trace_sampler):
            export.put(ctx, self._provider_types)
