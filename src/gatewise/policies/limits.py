"""Which counters a request is charged to: the configured rate limits and budgets.

Each ``limits`` and ``budgets`` entry that applies to the call (its model and
tenant filters match) becomes one or more counters keyed by the caller's
value of ``per`` (its key, app, team, tenant, user, the model, the client IP
or one global counter). A caller without that value (an anonymous caller has
no app) is not counted by that entry. Each counter comes with a ``Meter``
that says what it measures, for 429 messages, headers and alerts.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from fnmatch import fnmatchcase
from zoneinfo import ZoneInfo

from gatewise.config.limits import REQUEST_RATES, TOKEN_RATES, BudgetConfig, LimitConfig
from gatewise.identity.principal import Principal
from gatewise.state.base import Check, Quota, Rate, Slots

ROLLING_PERIODS = {"day": 86400.0, "month": 30 * 86400.0}
MICROS_PER_USD = 1_000_000


@dataclass(frozen=True, slots=True)
class Meter:
    """What one counter measures."""

    kind: str  # "requests" | "tokens" | "concurrent" | "budget"
    name: str  # the limit's or budget's name
    per: str
    scope: str  # the caller's value of `per`
    period: str = ""  # "minute", "day", "2026-11" ...
    budget: BudgetConfig | None = None
    usd: bool = False  # a budget counted in micro-USD (else tokens)


@dataclass(frozen=True, slots=True)
class Call:
    """What the counters need to know about one call."""

    principal: Principal
    model: str
    ip: str | None
    tenant_name: str | None


def scope_of(per: str, call: Call) -> str | None:
    principal = call.principal
    match per:
        case "key":
            return principal.key_id or (principal.name if principal.kind == "oidc" else None)
        case "app":
            return principal.app_id
        case "team":
            return principal.team_id
        case "tenant":
            return principal.tenant_id
        case "user":
            return principal.user_id
        case "model":
            return call.model
        case "ip":
            return call.ip
        case _:
            return "all"


def _applies(models: Sequence[str] | None, tenants: Sequence[str] | None, call: Call) -> bool:
    if models is not None and not any(
        p == call.model or fnmatchcase(call.model, p) for p in models
    ):
        return False
    return tenants is None or call.tenant_name in tenants


def _share(limit: int, workers: int) -> int:
    """One worker's share of a limit when each process counts on its own."""
    return max(1, math.ceil(limit / workers)) if workers > 1 else limit


@dataclass(frozen=True, slots=True)
class _Counter:
    """One counter a limit entry defines: requests or tokens per a period, or concurrency."""

    kind: str
    field: str  # e.g. requests_per_minute, concurrent
    period: float
    limit: int


class LimitRules:
    """The ``limits`` section turned into counters for one call.

    The counters of an entry are worked out once; the keys and meters of a
    (entry, caller) pair are memoised, so a call costs a dict lookup per entry.
    """

    def __init__(self, limits: Sequence[LimitConfig], *, workers: int = 1) -> None:
        self._limits = [
            (limit.name or f"{limit.per}-{i}", limit, _counters(limit, workers))
            for i, limit in enumerate(limits)
        ]
        self._memo: dict[tuple[int, str], list[tuple[Meter, str, _Counter]]] = {}

    def checks(self, call: Call, tokens: Callable[[], int]) -> list[tuple[Meter, Check]]:
        found: list[tuple[Meter, Check]] = []
        for index, (name, limit, counters) in enumerate(self._limits):
            if not _applies(limit.models, limit.tenants, call):
                continue
            scope = scope_of(limit.per, call)
            if scope is None:
                continue
            entries = self._memo.get((index, scope))
            if entries is None:
                entries = self._entries(index, name, limit.per, scope, counters)
            for meter, key, counter in entries:
                if counter.kind == "concurrent":
                    found.append((meter, Slots(key, counter.limit)))
                else:
                    cost = 1 if counter.kind == "requests" else tokens()
                    found.append((meter, Rate(key, counter.limit, counter.period, cost)))
        return found

    def _entries(
        self, index: int, name: str, per: str, scope: str, counters: list[_Counter]
    ) -> list[tuple[Meter, str, _Counter]]:
        if len(self._memo) >= _MEMO_LIMIT:
            self._memo.clear()
        entries = [
            (
                Meter(counter.kind, name, per, scope, counter.field.partition("_per_")[2]),
                f"rl:{name}:{scope}:{counter.field}",
                counter,
            )
            for counter in counters
        ]
        self._memo[(index, scope)] = entries
        return entries


def _counters(limit: LimitConfig, workers: int) -> list[_Counter]:
    counters = [
        _Counter(kind, field, period, _share(getattr(limit, field), workers))
        for kind, rates in (("requests", REQUEST_RATES), ("tokens", TOKEN_RATES))
        for field, period in rates.items()
        if getattr(limit, field) is not None
    ]
    if limit.concurrent is not None:
        counters.append(
            _Counter("concurrent", "concurrent", 0.0, _share(limit.concurrent, workers))
        )
    return counters


_MEMO_LIMIT = 10_000


_periods: dict[tuple[str, str], tuple[str, float, float]] = {}


def calendar_period(period: str, timezone: str, now: float) -> tuple[str, float]:
    """``_calendar_period``, remembered until the period ends (it is asked on every call)."""
    known = _periods.get((period, timezone))
    if known is not None and known[1] <= now < known[2]:
        return known[0], known[2] - now
    period_id, remaining = _calendar_period(period, timezone, now)
    _periods[(period, timezone)] = (period_id, now, now + remaining)
    return period_id, remaining


def _calendar_period(period: str, timezone: str, now: float) -> tuple[str, float]:
    """The id of the calendar day or month containing ``now`` in ``timezone``, and the
    seconds until it ends."""
    local = datetime.fromtimestamp(now, ZoneInfo(timezone))
    if period == "day":
        start = local.replace(hour=0, minute=0, second=0, microsecond=0)
        end = (start + timedelta(days=1, hours=2)).replace(hour=0)  # safe across DST
        return start.strftime("%Y-%m-%d"), max(1.0, end.timestamp() - now)
    start = local.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    end = (start + timedelta(days=32)).replace(day=1)
    return start.strftime("%Y-%m"), max(1.0, end.timestamp() - now)


class BudgetRules:
    """The ``budgets`` section turned into counters for one call."""

    def __init__(self, budgets: Sequence[BudgetConfig], *, workers: int = 1) -> None:
        self._budgets = list(budgets)
        # Each budget with its limit in counter units (micro-USD or tokens), this worker's share.
        self._limits = [
            (
                b,
                _share(
                    int(b.usd * MICROS_PER_USD) if b.usd is not None else b.tokens or 0, workers
                ),
            )
            for b in budgets
        ]
        self._memo: dict[tuple[int, str, str], tuple[Meter, str]] = {}

    def has_usd_for(self, call: Call) -> bool:
        """Whether a USD budget counts this call (it then needs a price)."""
        return any(
            b.usd is not None
            and _applies(b.models, b.tenants, call)
            and scope_of(b.per, call) is not None
            for b in self._budgets
        )

    def checks(
        self, call: Call, now: float, tokens: Callable[[], int], cost: Callable[[], int | None]
    ) -> list[tuple[Meter, Check]]:
        found: list[tuple[Meter, Check]] = []
        for index, (budget, limit) in enumerate(self._limits):
            if not _applies(budget.models, budget.tenants, call):
                continue
            scope = scope_of(budget.per, call)
            if scope is None:
                continue
            if budget.usd is not None:
                amount = cost()
                if amount is None:
                    continue  # the caller refuses unpriced models first (see TrafficControl)
            else:
                amount = tokens()
            if budget.reset == "rolling":
                meter, key = self._meter(index, budget, scope, "rolling")
                found.append((meter, Rate(key, limit, ROLLING_PERIODS[budget.period], amount)))
                continue
            period_id, remaining = calendar_period(budget.period, budget.timezone, now)
            meter, key = self._meter(index, budget, scope, period_id)
            hard = budget.mode == "hard"
            found.append((meter, Quota(key, limit, amount, remaining + 86400.0, hard)))
        return found

    def _meter(
        self, index: int, budget: BudgetConfig, scope: str, period: str
    ) -> tuple[Meter, str]:
        """The meter and counter key of a (budget, caller, period), memoised."""
        memo_key = (index, scope, period)
        found = self._memo.get(memo_key)
        if found is None:
            if len(self._memo) >= _MEMO_LIMIT:
                self._memo.clear()
            usd = budget.usd is not None
            meter = Meter("budget", budget.name, budget.per, scope, period, budget, usd)
            key = f"bud:{budget.name}:{scope}" + ("" if period == "rolling" else f":{period}")
            found = self._memo[memo_key] = (meter, key)
        return found
