"""OpenTelemetry traces: the ``observability.tracing`` config section."""

from __future__ import annotations

from gatewise.config.base import Strict


class TracingConfig(Strict):
    """(To be filled in.)"""
