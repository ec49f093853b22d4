"""A finished request's spans, built after the fact on a thread of their own, then exported.

The event loop only queues the finished ``RequestContext`` with a clock reading (well
under a microsecond); this thread turns it into OpenTelemetry spans with the times
the request recorded and hands them to the SDK's batch processor, which exports
them over OTLP/HTTP (or prints them). Building spans with the SDK costs tens of
microseconds per request: none of it runs on the request's path.

The spans keep the ids the request already used: the trace id on the context, and
each attempt's client span id, which went upstream in ``traceparent``; the SDK's
tracer takes them from ``_PresetIds``, an id generator this thread primes before each
span (the tracer is this thread's alone). The span tree and its attributes are
``observe.genai``'s business.

The queue is bounded (``MAX_QUEUED``): when the exporter cannot keep up, spans are
dropped and counted, never the request slowed. ``close`` (at shutdown) builds what
is queued and flushes the exporter.
"""

from __future__ import annotations

import logging
import sys
import threading
import time
from collections import deque
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING

from opentelemetry.sdk.trace.id_generator import IdGenerator

from gatewise import __version__
from gatewise.config.secrets import resolve_reference
from gatewise.config.tracing import TracingConfig
from gatewise.core.context import RequestContext
from gatewise.observe.genai import SCHEMA_URL, emit_request

if TYPE_CHECKING:
    from opentelemetry.sdk.trace import SpanProcessor, TracerProvider
    from opentelemetry.sdk.trace.export import SpanExporter

log = logging.getLogger("gatewise")

#: Requests waiting for their spans to be built; beyond it they are dropped (counted).
MAX_QUEUED = 8192
#: How often the thread wakes to build what is queued (it also wakes at ``_WAKE_AT``).
_INTERVAL_S = 0.25
_WAKE_AT = 512


class _PresetIds(IdGenerator):
    """An OpenTelemetry ``IdGenerator`` handing out the ids it was primed with."""

    def __init__(self) -> None:
        self.trace_id = 0
        self.span_id = 0

    def is_trace_id_random(self) -> bool:
        return True  # (``RequestContext.trace_id`` and callers' W3C ids are random)

    def generate_trace_id(self) -> int:
        return self.trace_id

    def generate_span_id(self) -> int:
        return self.span_id


class SpanExport:
    """The spans' background writer: a bounded queue of finished requests, one thread."""

    def __init__(self, processor: SpanProcessor, service_name: str = "gatewise") -> None:
        from opentelemetry.sdk.resources import Resource
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.sampling import ALWAYS_ON

        self._ids = _PresetIds()
        resource = Resource.create({"service.name": service_name, "service.version": __version__})
        self.provider: TracerProvider = TracerProvider(
            resource=resource,
            sampler=ALWAYS_ON,  # sampled by the observer already (unsampled never queued)
            id_generator=self._ids,
        )
        self.provider.add_span_processor(processor)
        self._tracer = self.provider.get_tracer("gatewise", __version__, schema_url=SCHEMA_URL)
        self._queue: deque[tuple[RequestContext, Mapping[str, str], int, float]] = deque()
        self._wake = threading.Event()
        self._stopping = False
        self._thread: threading.Thread | None = None
        #: Requests whose spans were dropped (queue full) or failed to build.
        self.dropped = 0

    def put(self, ctx: RequestContext, provider_types: Mapping[str, str]) -> None:
        """Queue a finished request (its spans end now); on the event loop: no waiting."""
        queue = self._queue
        if len(queue) >= MAX_QUEUED:
            self.dropped += 1
            return
        queue.append((ctx, provider_types, time.time_ns(), time.perf_counter()))
        if len(queue) == _WAKE_AT:
            self._wake.set()

    def start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="gatewise-spans", daemon=True)
            self._thread.start()

    def _run(self) -> None:
        while not self._stopping:
            self._wake.wait(_INTERVAL_S)
            self._wake.clear()
            self.build_queued()

    def build_queued(self) -> int:
        """Build (and hand to the exporter) the spans of every queued request."""
        queue, built = self._queue, 0
        while queue:
            ctx, provider_types, now_ns, now_pc = queue.popleft()
            try:
                emit_request(self._tracer, self._ids, ctx, provider_types, now_ns, now_pc)
            except Exception:
                self.dropped += 1
                log.exception("building a request's spans failed")
            built += 1
        return built

    def flush(self) -> None:
        """Build what is queued and wait until the exporter has it (tests, shutdown)."""
        self.build_queued()
        self.provider.force_flush()

    def close(self) -> None:
        """Stop the thread, build what is left and flush the exporter (blocking)."""
        self._stopping = True
        self._wake.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None
        self.build_queued()
        self.provider.shutdown()


def exporter_for(config: TracingConfig, config_dir: Path | None = None) -> SpanExporter | None:
    """The exporter ``config`` names (None for ``none``); header references resolved."""
    if config.exporter == "none":
        return None
    if config.exporter == "console":
        from opentelemetry.sdk.trace.export import ConsoleSpanExporter

        return ConsoleSpanExporter(out=sys.stdout)
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

    headers = {name: resolve_reference(ref, config_dir) for name, ref in config.headers.items()}
    return OTLPSpanExporter(
        endpoint=config.traces_url(), headers=headers or None, timeout=config.timeout_s
    )


def build_span_export(config: TracingConfig, config_dir: Path | None = None) -> SpanExport | None:
    """The worker's span pipeline when tracing is on and exports somewhere, else None."""
    if not config.enabled:
        return None
    exporter = exporter_for(config, config_dir)
    if exporter is None:
        return None
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    # (A second's delay, not the SDK's five: spans show up while one still looks.)
    processor = BatchSpanProcessor(exporter, schedule_delay_millis=1000)
    return SpanExport(processor, config.service_name)
