"""``OTLPReceiver``: a loopback OTLP/HTTP trace collector that decodes and keeps what it gets.

Why: the gateway's spans must be tested as a collector receives them, over real HTTP
in OTLP's protobuf encoding (``ExportTraceServiceRequest``), not only through the
SDK's in-memory exporter. Each export's headers and raw body are kept (tests grep
them for secrets) and every span is decoded into a ``ReceivedSpan`` with plain
Python attribute values. Needs the ``otel`` extra (``opentelemetry-proto``). Run it
with ``run_in_thread`` and wait with ``wait_for`` from the test's thread.
"""

from __future__ import annotations

import gzip
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from gatewise.testing.httpserver import Request, Response
from gatewise.testing.loopback import LoopbackServer

__all__ = ["OTLPReceiver", "ReceivedSpan"]


@dataclass(frozen=True, slots=True)
class ReceivedSpan:
    name: str
    kind: int  # OTLP's SpanKind: 2 server, 3 client, 1 internal
    trace_id: str  # 32 hex
    span_id: str  # 16 hex
    parent_span_id: str  # "" for a root span
    start_ns: int
    end_ns: int
    status_code: int  # 0 unset, 1 ok, 2 error
    attributes: dict[str, Any] = field(default_factory=dict)
    resource: dict[str, Any] = field(default_factory=dict)
    schema_url: str = ""
    trace_state: str = ""


def _value(any_value: Any) -> Any:
    kind = any_value.WhichOneof("value")
    if kind == "array_value":
        return tuple(_value(v) for v in any_value.array_value.values)
    return getattr(any_value, kind) if kind else None


def _attributes(pairs: Any) -> dict[str, Any]:
    return {pair.key: _value(pair.value) for pair in pairs}


class OTLPReceiver(LoopbackServer):
    """Answers every ``POST /v1/traces`` with 200 and keeps the spans."""

    server_name = "the OTLP receiver"

    def __init__(self) -> None:
        super().__init__()
        self.spans: list[ReceivedSpan] = []
        #: (headers, raw body) of every export request, as received.
        self.exports: list[tuple[dict[str, str], bytes]] = []
        self._lock = threading.Lock()

    @property
    def endpoint(self) -> str:
        return self.root_url

    async def handle(self, request: Request, response: Response) -> None:
        from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
            ExportTraceServiceRequest,
            ExportTraceServiceResponse,
        )

        if request.method != "POST" or request.path != "/v1/traces":
            response.send(404, [("content-type", "text/plain")], b"not here")
            return
        body = request.body
        if request.headers.get("content-encoding") == "gzip":
            body = gzip.decompress(body)
        message = ExportTraceServiceRequest()
        message.ParseFromString(body)
        spans = [
            ReceivedSpan(
                name=span.name,
                kind=span.kind,
                trace_id=span.trace_id.hex(),
                span_id=span.span_id.hex(),
                parent_span_id=span.parent_span_id.hex(),
                start_ns=span.start_time_unix_nano,
                end_ns=span.end_time_unix_nano,
                status_code=span.status.code,
                attributes=_attributes(span.attributes),
                resource=_attributes(resource_spans.resource.attributes),
                schema_url=scope_spans.schema_url,
                trace_state=span.trace_state,
            )
            for resource_spans in message.resource_spans
            for scope_spans in resource_spans.scope_spans
            for span in scope_spans.spans
        ]
        with self._lock:
            self.exports.append((dict(request.headers), request.body))
            self.spans.extend(spans)
        reply = ExportTraceServiceResponse().SerializeToString()
        response.send(200, [("content-type", "application/x-protobuf")], reply)

    def wait_for(self, count: int, timeout: float = 10.0) -> list[ReceivedSpan]:
        """Block (the test's thread) until at least ``count`` spans arrived; return them all."""
        deadline = time.monotonic() + timeout
        while True:
            with self._lock:
                if len(self.spans) >= count:
                    return list(self.spans)
            if time.monotonic() > deadline:
                raise TimeoutError(f"{len(self.spans)} spans arrived, not {count}")
            time.sleep(0.02)

    def raw(self) -> bytes:
        """Every export's headers and body, concatenated (for grepping)."""
        with self._lock:
            return b"\n".join(
                repr(headers).encode() + b"\n" + body for headers, body in self.exports
            )
