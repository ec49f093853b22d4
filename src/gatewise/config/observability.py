"""The ``observability:`` section: what the gateway tells operators about its traffic.

One sub-section per concern, each in its own module: ``metrics`` (Prometheus ``/metrics``),
``tracing`` (OpenTelemetry spans), ``logs`` (the structured request log), ``records`` (one
record per request, privacy and retention) and ``audit`` (the tamper-evident trail's sinks).
"""

from __future__ import annotations

from gatewise.config.audit import AuditConfig
from gatewise.config.base import Strict
from gatewise.config.logs import LogsConfig
from gatewise.config.metrics import MetricsConfig
from gatewise.config.records import RecordsConfig
from gatewise.config.tracing import TracingConfig


class ObservabilityConfig(Strict):
    metrics: MetricsConfig = MetricsConfig()
    tracing: TracingConfig = TracingConfig()
    logs: LogsConfig = LogsConfig()
    records: RecordsConfig = RecordsConfig()
    audit: AuditConfig = AuditConfig()
