"""The structured request log: the ``observability.logs`` config section."""

from __future__ import annotations

from gatewise.config.base import Strict


class LogsConfig(Strict):
    """(To be filled in.)"""
