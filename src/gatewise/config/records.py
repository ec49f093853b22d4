"""Request records (privacy, retention, the writer): the ``observability.records`` section."""

from __future__ import annotations

from gatewise.config.base import Strict


class RecordsConfig(Strict):
    """(To be filled in.)"""
