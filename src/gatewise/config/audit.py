"""The audit trail's export sinks for a SIEM: the ``observability.audit`` section."""

from __future__ import annotations

from gatewise.config.base import Strict


class AuditConfig(Strict):
    """(To be filled in.)"""
