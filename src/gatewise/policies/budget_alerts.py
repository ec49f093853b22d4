"""Budget alerts: when a budget's use crosses one of its thresholds, call its webhook once.

Thresholds are checked with the totals the counter store returns (after a
call is admitted, and again when it is settled with its real cost), claimed
once per budget, scope and period across every replica, and delivered in the
background by the ``WebhookSender``.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from typing import Any

from gatewise.alerts.thresholds import ThresholdTracker, budget_event
from gatewise.alerts.webhooks import WebhookSender
from gatewise.policies.limits import Meter
from gatewise.state.base import Adjustment, Check, CheckState, Quota, Rate

log = logging.getLogger("gatewise.limits")


class BudgetAlerts:
    def __init__(self, tracker: ThresholdTracker, sender: WebhookSender) -> None:
        self._tracker = tracker
        self._sender = sender
        self._tasks: set[asyncio.Task[None]] = set()

    def after_admit(
        self, meters: Sequence[Meter], checks: Sequence[Check], states: Sequence[CheckState]
    ) -> None:
        for meter, check, state in zip(meters, checks, states, strict=True):
            if meter.budget is None or meter.budget.webhook is None:
                continue
            if isinstance(check, Quota):
                self._check(meter, check.limit, state.used, check.ttl)
            elif isinstance(check, Rate):  # rolling: what the window holds now
                self._check(meter, check.limit, check.limit - state.remaining, check.period)

    def after_settle(
        self,
        meters: Sequence[Meter],
        checks: Sequence[Check],
        adjustments: Sequence[Adjustment],
        totals: Sequence[int],
    ) -> None:
        by_key = {a.check.key: total for a, total in zip(adjustments, totals, strict=True)}
        for meter, check in zip(meters, checks, strict=True):
            if meter.budget is None or meter.budget.webhook is None:
                continue
            if isinstance(check, Quota) and check.key in by_key:
                self._check(meter, check.limit, by_key[check.key], check.ttl)

    def _check(self, meter: Meter, limit: int, used: int, ttl: float) -> None:
        task = asyncio.get_running_loop().create_task(self._alert(meter, limit, used, ttl))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _alert(self, meter: Meter, limit: int, used: int, ttl: float) -> None:
        budget = meter.budget
        assert budget is not None and budget.webhook is not None
        key = f"{budget.name}:{meter.scope}"
        crossed = await self._tracker.crossed(key, meter.period, used, limit, budget.alerts, ttl)
        for threshold in crossed:
            event: dict[str, Any] = budget_event(
                budget=budget.name,
                per=meter.per,
                scope_id=meter.scope,
                period_id=meter.period,
                threshold=threshold,
                used=used,
                limit=limit,
                unit="usd" if meter.usd else "tokens",
            )
            log.info("budget %s reached %s%% for %s", budget.name, threshold, meter.scope)
            self._sender.send(budget.webhook, event)

    async def close(self) -> None:
        if self._tasks:
            await asyncio.wait(set(self._tasks), timeout=5)
