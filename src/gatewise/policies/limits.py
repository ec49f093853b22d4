"""Which counters a call is charged to: the configured rate limits and budgets, as a plan.

Each ``limits`` and ``budgets`` entry that applies to the call (its model and
tenant filters match) becomes one or more counters keyed by the caller's
value of ``per`` (its key, app, team, tenant, user, the model, the client IP
or one global counter). A caller without that value (an anonymous caller has
no app) is not counted by that entry. Each counter comes with a ``Meter``
that says what it measures, for 429 messages, headers and alerts.

Working that out on every call would cost more than checking the counters, so
``Planner`` compiles it once per caller and model into a ``Plan``: the checks
with their keys, what each one is charged in, and which ones feed headers,
corrections and alerts. A call then only fills in its token and cost estimates.
A plan with calendar budgets is rebuilt when its period ends (new keys).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from fnmatch import fnmatchcase
from zoneinfo import ZoneInfo

from gatewise.config.limits import REQUEST_RATES, TOKEN_RATES, BudgetConfig, LimitConfig
from gatewise.identity.principal import Principal
from gatewise.state.base import Check, Quota, Rate, Slots, slot_member

ROLLING_PERIODS = {"day": 86400.0, "month": 30 * 86400.0}
MICROS_PER_USD = 1_000_000

#: What a counter is charged per call: a fixed amount (one request, one slot), the
#: call's tokens, or its cost in micro-USD.
FIXED, TOKENS, USD = 0, 1, 2


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
    #: The prompt endpoint the call came through (None: a model call).
    prompt: str | None = None


@dataclass(slots=True)
class Plan:
    """The counters of one caller and model, ready to be charged.

    ``checks`` holds every counter's check; those charged in tokens or USD carry a
    cost of 0 there and get the call's estimate from ``checks_for``.
    """

    meters: list[Meter] = field(default_factory=list)
    checks: list[Check] = field(default_factory=list)
    #: Each check's fixed cost (1 for a request rate), 0 where the call's estimate goes.
    costs: list[int] = field(default_factory=list)
    #: Wall-clock time at which a calendar period of this plan ends (keys change).
    until: float = math.inf
    #: Indexes of the counters charged in tokens / in micro-USD.
    in_tokens: list[int] = field(default_factory=list)
    in_usd: list[int] = field(default_factory=list)
    #: The same counters' checks, to correct once the call's real usage is known.
    token_counters: list[Rate | Quota] = field(default_factory=list)
    usd_counters: list[Rate | Quota] = field(default_factory=list)
    #: Indexes of the request and token rate limits (what the rate headers describe).
    request_rates: list[int] = field(default_factory=list)
    token_rates: list[int] = field(default_factory=list)
    #: The concurrency slots a call takes, given back when it ends, and their indexes.
    slots: list[Slots] = field(default_factory=list)
    slot_indexes: list[int] = field(default_factory=list)
    #: Whether a budget of this plan calls a webhook at thresholds.
    alerts: bool = False

    def add(self, meter: Meter, check: Check, unit: int) -> None:
        index = len(self.checks)
        self.meters.append(meter)
        self.checks.append(check)
        self.costs.append(check.cost if isinstance(check, Rate | Quota) else 1)
        if unit != FIXED:
            assert isinstance(check, Rate | Quota)  # slots are always FIXED
            if unit == TOKENS:
                self.in_tokens.append(index)
                self.token_counters.append(check)
            else:
                self.in_usd.append(index)
                self.usd_counters.append(check)
        if meter.kind == "requests":
            self.request_rates.append(index)
        elif meter.kind == "tokens":
            self.token_rates.append(index)
        elif isinstance(check, Slots):
            self.slots.append(check)
            self.slot_indexes.append(index)
        if meter.budget is not None and meter.budget.webhook is not None:
            self.alerts = True

    @property
    def units(self) -> list[int]:
        """What each check is charged in (``FIXED``, ``TOKENS`` or ``USD``), from the
        indexes that charging uses."""
        units = [FIXED] * len(self.checks)
        for index in self.in_tokens:
            units[index] = TOKENS
        for index in self.in_usd:
            units[index] = USD
        return units

    def costs_for(self, tokens: int, cost: int) -> list[int]:
        """Each check's cost for this call (a store that takes costs apart, e.g. memory,
        charges ``checks`` with these: no per-call check objects)."""
        costs = self.costs.copy()
        for index in self.in_tokens:
            costs[index] = tokens
        for index in self.in_usd:
            costs[index] = cost
        return costs

    def releases(self, token: str) -> list[Slots]:
        """The slots an admission named ``token`` (``Outcome.token``) took, to give back;
        without a token, the plan's own (the store gives back the newest)."""
        if not token:
            return self.slots
        return [
            Slots(slot.key, slot.limit, slot.ttl, slot_member(token, index))
            for slot, index in zip(self.slots, self.slot_indexes, strict=True)
        ]

    def checks_for(self, tokens: int, cost: int) -> list[Check]:
        """The checks with this call's token and micro-USD estimates filled in."""
        if not self.in_tokens and not self.in_usd:
            return self.checks  # nothing to fill in: the stores never change a check
        checks = list(self.checks)
        for index in self.in_tokens:
            checks[index] = with_cost(checks[index], tokens)
        for index in self.in_usd:
            checks[index] = with_cost(checks[index], cost)
        return checks


def with_cost(check: Check, cost: int) -> Check:
    """``check`` charging ``cost`` units."""
    if isinstance(check, Rate):
        return Rate(check.key, check.limit, check.period, cost)
    if isinstance(check, Quota):
        return Quota(check.key, check.limit, cost, check.ttl, check.hard)
    return check


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


def _applies(rule: LimitConfig | BudgetConfig, call: Call) -> bool:
    models = rule.models
    if models is not None and not any(
        p == call.model or fnmatchcase(call.model, p) for p in models
    ):
        return False
    if rule.prompts is not None and call.prompt not in rule.prompts:
        return False
    return rule.tenants is None or call.tenant_name in rule.tenants


def _share(limit: int, workers: int) -> int:
    """One worker's share of a limit when each process counts on its own."""
    return max(1, math.ceil(limit / workers)) if workers > 1 else limit


#: A concurrency slot outlives the longest its call may run by this much (seconds).
SLOT_TTL_MARGIN = 5.0
#: A slot's lifetime when the model's timeouts are not known: the default total timeout.
DEFAULT_SLOT_TTL = 600.0 + SLOT_TTL_MARGIN


class Planner:
    """The ``limits`` and ``budgets`` sections, compiled into a ``Plan`` per caller and model.

    ``workers``: with counters in each process, every process enforces its share.
    ``slot_ttls``: per model, how long a concurrency slot lives unless given back (a
    little more than its calls may run, see ``traffic_setup.slot_ttls``).
    """

    def __init__(
        self,
        limits: Sequence[LimitConfig],
        budgets: Sequence[BudgetConfig],
        *,
        workers: int = 1,
        slot_ttls: Mapping[str, float] | None = None,
    ) -> None:
        self._slot_ttls = slot_ttls or {}
        self._limits = [
            (limit.name or f"{limit.per}-{i}", limit, _rates(limit, workers))
            for i, limit in enumerate(limits)
        ]
        self._budgets = [(budget, _budget_limit(budget, workers)) for budget in budgets]
        rules: list[LimitConfig | BudgetConfig] = [*limits, *budgets]
        #: Whether plans depend on the client IP / the tenant's name (else leave them out
        #: of the caller's identity, so plans are shared).
        self.uses_ip = any(rule.per == "ip" for rule in rules)
        self.uses_tenant_name = any(rule.tenants is not None for rule in rules)
        #: Whether plans depend on the prompt endpoint a call came through.
        self.uses_prompt = any(rule.prompts is not None for rule in rules)

    def plan(self, call: Call, now: float) -> Plan:
        """The counters ``call`` is charged to; ``now`` (epoch seconds) picks calendar periods."""
        plan = Plan()
        for name, limit, rates in self._limits:
            if not _applies(limit, call):
                continue
            scope = scope_of(limit.per, call)
            if scope is None:
                continue
            for kind, rate_field, period, amount in rates:
                meter = Meter(kind, name, limit.per, scope, rate_field.partition("_per_")[2])
                key = f"rl:{name}:{scope}:{rate_field}"
                if kind == "concurrent":
                    ttl = self._slot_ttls.get(call.model, DEFAULT_SLOT_TTL)
                    plan.add(meter, Slots(key, amount, ttl), FIXED)
                elif kind == "requests":
                    plan.add(meter, Rate(key, amount, period, 1), FIXED)
                else:
                    plan.add(meter, Rate(key, amount, period, 0), TOKENS)
        for budget, amount in self._budgets:
            if not _applies(budget, call):
                continue
            scope = scope_of(budget.per, call)
            if scope is None:
                continue
            usd = budget.usd is not None
            unit = USD if usd else TOKENS
            key = f"bud:{budget.name}:{scope}"
            if budget.reset == "rolling":
                meter = Meter("budget", budget.name, budget.per, scope, "rolling", budget, usd)
                plan.add(meter, Rate(key, amount, ROLLING_PERIODS[budget.period], 0), unit)
                continue
            period_id, remaining = calendar_period(budget.period, budget.timezone, now)
            plan.until = min(plan.until, now + remaining)
            meter = Meter("budget", budget.name, budget.per, scope, period_id, budget, usd)
            # The key outlives its period by a day, so a late settlement still finds it.
            ttl = remaining + 86400.0
            hard = budget.mode == "hard"
            plan.add(meter, Quota(f"{key}:{period_id}", amount, 0, ttl, hard), unit)
        return plan


_Rate = tuple[str, str, float, int]  # (kind, config field, period in seconds, limit)


def _rates(limit: LimitConfig, workers: int) -> list[_Rate]:
    """The counters one ``limits`` entry defines."""
    rates = [
        (kind, rate_field, period, _share(getattr(limit, rate_field), workers))
        for kind, table in (("requests", REQUEST_RATES), ("tokens", TOKEN_RATES))
        for rate_field, period in table.items()
        if getattr(limit, rate_field) is not None
    ]
    if limit.concurrent is not None:
        rates.append(("concurrent", "concurrent", 0.0, _share(limit.concurrent, workers)))
    return rates


def _budget_limit(budget: BudgetConfig, workers: int) -> int:
    """A budget's cap in counter units (micro-USD or tokens), this worker's share."""
    if budget.usd is not None:
        return _share(int(budget.usd * MICROS_PER_USD), workers)
    return _share(budget.tokens or 0, workers)


_periods: dict[tuple[str, str], tuple[str, float, float]] = {}


def calendar_period(period: str, timezone: str, now: float) -> tuple[str, float]:
    """``_calendar_period``, remembered until the period ends."""
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
