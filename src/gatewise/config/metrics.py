"""Prometheus metrics (`/metrics`): the ``observability.metrics`` config section."""

from __future__ import annotations

from gatewise.config.base import Strict


class MetricsConfig(Strict):
    """(To be filled in.)"""
