"""Security alerts: guardrail blocks above a count per window, announced once per window.

An observer: ``finished`` looks at the request's verdicts (usually none: one list
check), and for a blocked request bumps an in-process counter for the current
window. The first time the count reaches ``threshold`` in a window it hands one
``guardrail.blocks`` event to the alert sender (``send`` only queues), whose
``alert_key`` names the window, so a ``gitlab_issue`` target opens one issue per
window. Each worker process counts its own blocks (no round trip on the hot path).

Events name guardrails and categories with counts, never the blocked text.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any, Protocol

from gatewise.core.context import RequestContext
from gatewise.corridor.observer import Observer

__all__ = ["EVENT_TYPE", "GuardrailBlockAlerts"]

EVENT_TYPE = "guardrail.blocks"


class AlertSender(Protocol):
    def send(self, name: str, event: Mapping[str, Any]) -> None: ...


class GuardrailBlockAlerts(Observer):
    """Counts blocked requests per window; alerts ``target`` once when ``threshold`` is hit."""

    def __init__(
        self,
        sender: AlertSender,
        target: str,
        *,
        threshold: int,
        window_seconds: int = 3600,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if threshold < 1 or window_seconds < 1:
            raise ValueError("threshold and window_seconds must be at least 1")
        self._sender = sender
        self._target = target
        self._threshold = threshold
        self._window = window_seconds
        self._clock = clock
        self._current = -1
        self._blocks = 0
        self._alerted = False
        self._by_guardrail: Counter[str] = Counter()

    def finished(self, ctx: RequestContext) -> None:
        verdicts = ctx.guardrails
        if not verdicts:
            return
        blocked = [v for v in verdicts if v.action == "block"]
        if not blocked:
            return
        window = int(self._clock() // self._window)
        if window != self._current:
            self._current, self._blocks, self._alerted = window, 0, False
            self._by_guardrail.clear()
        self._blocks += 1
        for verdict in blocked:
            self._by_guardrail[f"{verdict.guardrail}/{verdict.category}"] += 1
        if self._blocks >= self._threshold and not self._alerted:
            self._alerted = True
            self._sender.send(self._target, self._event(window))

    def _event(self, window: int) -> dict[str, Any]:
        start = datetime.fromtimestamp(window * self._window, UTC)
        period = start.isoformat(timespec="minutes").replace("+00:00", "Z")
        return {
            "type": EVENT_TYPE,
            "alert_key": f"guardrail-blocks:{period}",
            "summary": (
                f"{self._blocks} requests blocked by guardrails since {period} "
                f"(alert threshold {self._threshold} per {self._window} s)"
            ),
            "period": period,
            "window_seconds": self._window,
            "blocked_requests": self._blocks,
            "threshold": self._threshold,
            "by_guardrail": dict(self._by_guardrail.most_common(20)),
        }
