"""The pieces of traffic control that need no store: counters, periods, headers, refusals."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from zoneinfo import ZoneInfo

import pytest

from gatewise.config.limits import BudgetConfig, LimitConfig
from gatewise.core.errors import RateLimitError
from gatewise.http.asgi import header_pairs
from gatewise.identity.principal import Principal
from gatewise.identity.roles import Role
from gatewise.policies.limits import (
    FIXED,
    TOKENS,
    USD,
    Call,
    Plan,
    Planner,
    _calendar_period,
    scope_of,
)
from gatewise.policies.rate_headers import go_duration, rate_headers
from gatewise.policies.traffic import _refusal
from gatewise.state.base import CheckState, Outcome, Quota, Rate, Slots

PRINCIPAL = Principal(
    kind="key", name="key:k1", role=Role.CONSUMER, owner="app_1", tenant_id="ten_1",
    team_id="team_1", app_id="app_1", key_id="k1",
)  # fmt: skip
CALL = Call(PRINCIPAL, "gpt-4o", "10.0.0.7", "acme")
NOW = datetime(2026, 11, 27, 12, tzinfo=ZoneInfo("UTC")).timestamp()


def plan_of(
    limits: Sequence[LimitConfig], budgets: Sequence[BudgetConfig] = (), workers: int = 1
) -> Plan:
    return Planner(limits, budgets, workers=workers).plan(CALL, NOW)


def test_scopes_come_from_the_caller() -> None:
    assert [scope_of(per, CALL) for per in ("key", "app", "team", "tenant", "user")] == [
        "k1",
        "app_1",
        "team_1",
        "ten_1",
        None,
    ]
    assert (scope_of("model", CALL), scope_of("ip", CALL), scope_of("global", CALL)) == (
        "gpt-4o",
        "10.0.0.7",
        "all",
    )


def test_limit_entries_become_counters_for_matching_calls_only() -> None:
    limits = [
        LimitConfig(per="key", requests_per_minute=10, tokens_per_day=1000, concurrent=2),
        LimitConfig(per="user", requests_per_second=1),  # keys of apps have no user: skipped
        LimitConfig(per="app", models=["claude-*"], requests_per_minute=5),  # other models
        LimitConfig(per="tenant", tenants=["globex"], requests_per_minute=5),  # other tenant
    ]
    plan = plan_of(limits)
    assert [(m.kind, m.period) for m in plan.meters] == [
        ("requests", "minute"), ("tokens", "day"), ("concurrent", ""),
    ]  # fmt: skip
    assert plan.units == [FIXED, TOKENS, FIXED]
    rate, tokens, slots = plan.checks_for(42, 0)
    assert isinstance(rate, Rate) and (rate.limit, rate.period, rate.cost) == (10, 60.0, 1)
    assert isinstance(tokens, Rate) and (tokens.cost, tokens.period) == (42, 86400.0)
    assert isinstance(slots, Slots) and slots.limit == 2
    assert rate.key != tokens.key and "k1" in rate.key
    # What the headers, corrections and releases use.
    assert (plan.request_rates, plan.token_rates, plan.in_tokens) == ([0], [1], [1])
    assert plan.slots == [slots] and plan.until == float("inf")
    # The plan's own checks keep cost 0 for tokens: filling in never changes them.
    assert plan.checks[1].cost == 0  # type: ignore[union-attr]


def test_a_caller_counted_by_nothing_gets_an_empty_plan() -> None:
    plan = plan_of([LimitConfig(per="user", requests_per_minute=5)])
    assert plan.checks == [] and plan.checks_for(10, 10) == []


def test_the_planner_says_whether_plans_depend_on_the_ip_or_tenant_name() -> None:
    plain = Planner([LimitConfig(per="key", requests_per_minute=5)], [])
    assert not plain.uses_ip and not plain.uses_tenant_name
    by_ip = Planner([LimitConfig(per="ip", requests_per_minute=5)], [])
    budget = BudgetConfig(name="b", per="app", usd="1", period="day", tenants=["acme"])
    assert by_ip.uses_ip and Planner([], [budget]).uses_tenant_name


def test_each_worker_enforces_its_share_of_an_in_memory_limit() -> None:
    plan = plan_of([LimitConfig(per="key", requests_per_minute=10)], workers=4)
    assert plan.checks[0].limit == 3  # ceil(10 / 4)


def test_budgets_in_usd_use_the_cost_and_calendar_keys() -> None:
    budget = BudgetConfig(name="b", per="tenant", usd="1.50", period="month", timezone="UTC")
    plan = plan_of([], [budget])
    (meter,) = plan.meters
    (quota,) = plan.checks_for(10, 700)
    assert isinstance(quota, Quota) and plan.units == [USD] and plan.in_usd == [0]
    assert (quota.limit, quota.cost, quota.hard) == (1_500_000, 700, True)
    assert quota.key.endswith(":2026-11") and meter.usd
    # The plan holds until the month ends (then its keys change).
    end = datetime(2026, 12, 1, tzinfo=ZoneInfo("UTC")).timestamp()
    assert plan.until == pytest.approx(end)
    assert quota.ttl == pytest.approx(end - NOW + 86400)


def test_token_budgets_are_charged_in_tokens_and_rolling_ones_are_rates() -> None:
    budget = BudgetConfig(name="t", per="app", tokens=5000, period="day", reset="rolling")
    plan = plan_of([], [budget])
    (rate,) = plan.checks_for(321, 99)
    assert isinstance(rate, Rate) and (rate.cost, rate.period) == (321, 86400.0)
    assert plan.in_tokens == [0] and plan.token_rates == [] and plan.until == float("inf")


def test_calendar_periods_follow_the_time_zone_and_month_ends() -> None:
    berlin = ZoneInfo("Europe/Berlin")
    late = datetime(2026, 11, 30, 23, 30, tzinfo=berlin).timestamp()
    assert _calendar_period("day", "Europe/Berlin", late) == ("2026-11-30", pytest.approx(1800))
    period, remaining = _calendar_period("month", "Europe/Berlin", late)
    assert period == "2026-11" and remaining == pytest.approx(1800)
    # 00:30 on 1 December in Berlin is still November in UTC.
    early = datetime(2026, 12, 1, 0, 30, tzinfo=berlin).timestamp()
    assert _calendar_period("month", "Europe/Berlin", early)[0] == "2026-12"
    assert _calendar_period("month", "UTC", early)[0] == "2026-11"
    # A day with a daylight-saving change is 25 hours long.
    autumn = datetime(2026, 10, 25, 0, 0, tzinfo=berlin).timestamp()
    assert _calendar_period("day", "Europe/Berlin", autumn)[1] == pytest.approx(25 * 3600)


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(0.012, "12ms"), (1, "1s"), (1.5, "1.5s"), (360, "6m0s"), (3723, "1h2m3s"), (59.9999, "1m0s")],
)
def test_reset_durations_read_like_openais(seconds: float, text: str) -> None:
    assert go_duration(seconds) == text


def test_headers_describe_the_tightest_counter_in_each_dialect() -> None:
    plan = plan_of(
        [
            LimitConfig(per="key", requests_per_minute=100),
            LimitConfig(per="app", requests_per_minute=5, tokens_per_minute=900),
        ]
    )
    states = [CheckState(100, 99, 0.6), CheckState(5, 2, 36.0), CheckState(900, 850, 3.5)]
    requests, tokens = plan.request_rates, plan.token_rates
    framed = rate_headers("openai", states, requests, tokens)
    assert framed.endswith(b"\r\n") and framed.count(b"\r\n") == 6  # one line per header
    openai = dict(header_pairs(framed))
    assert openai[b"x-ratelimit-limit-requests"] == b"5"
    assert openai[b"x-ratelimit-remaining-requests"] == b"2"
    assert openai[b"x-ratelimit-reset-requests"] == b"36s"
    assert openai[b"x-ratelimit-remaining-tokens"] == b"850"
    anthropic = dict(header_pairs(rate_headers("anthropic", states, requests, tokens)))
    assert anthropic[b"anthropic-ratelimit-requests-limit"] == b"5"
    assert anthropic[b"anthropic-ratelimit-tokens-reset"].endswith(b"Z")
    assert not any(name.startswith(b"x-ratelimit") for name in anthropic)


def test_refusals_say_what_to_do() -> None:
    plan = plan_of([LimitConfig(per="key", tokens_per_minute=100)])
    too_big = _refusal(plan.meters, plan.checks_for(500, 0), Outcome(False, 0, 240.0))
    assert isinstance(too_big, RateLimitError)
    assert too_big.headers == {"x-should-retry": "false"} and "lower max_tokens" in too_big.message
    wait = _refusal(plan.meters, plan.checks_for(50, 0), Outcome(False, 0, 2.2))
    assert wait.headers == {"retry-after": "3", "retry-after-ms": "2200"}
    assert wait.type == "tokens" and wait.code == "rate_limit_exceeded"
