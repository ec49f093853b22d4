"""The pieces of traffic control that need no store: counters, periods, headers, refusals."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

import pytest

from gatewise.config.limits import BudgetConfig, LimitConfig
from gatewise.core.errors import RateLimitError
from gatewise.identity.principal import Principal
from gatewise.identity.roles import Role
from gatewise.policies.limits import BudgetRules, Call, LimitRules, _calendar_period, scope_of
from gatewise.policies.rate_headers import go_duration, rate_headers
from gatewise.policies.traffic import _refusal
from gatewise.state.base import CheckState, Outcome, Quota, Rate, Slots

PRINCIPAL = Principal(
    kind="key", name="key:k1", role=Role.CONSUMER, owner="app_1", tenant_id="ten_1",
    team_id="team_1", app_id="app_1", key_id="k1",
)  # fmt: skip
CALL = Call(PRINCIPAL, "gpt-4o", "10.0.0.7", "acme")


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
    found = LimitRules(limits).checks(CALL, lambda: 42)
    assert [(m.kind, m.period) for m, _ in found] == [
        ("requests", "minute"), ("tokens", "day"), ("concurrent", ""),
    ]  # fmt: skip
    rate, tokens, slots = (check for _, check in found)
    assert isinstance(rate, Rate) and (rate.limit, rate.period, rate.cost) == (10, 60.0, 1)
    assert isinstance(tokens, Rate) and (tokens.cost, tokens.period) == (42, 86400.0)
    assert isinstance(slots, Slots) and slots.limit == 2
    assert rate.key != tokens.key and "k1" in rate.key


def test_each_worker_enforces_its_share_of_an_in_memory_limit() -> None:
    found = LimitRules([LimitConfig(per="key", requests_per_minute=10)], workers=4).checks(
        CALL, lambda: 0
    )
    assert found[0][1].limit == 3  # type: ignore[union-attr]  # ceil(10 / 4)


def test_budgets_in_usd_use_the_cost_and_calendar_keys() -> None:
    budget = BudgetConfig(name="b", per="tenant", usd="1.50", period="month", timezone="UTC")
    now = datetime(2026, 11, 27, 12, tzinfo=ZoneInfo("UTC")).timestamp()
    found = BudgetRules([budget]).checks(CALL, now, lambda: 10, lambda: 700)
    meter, quota = found[0]
    assert isinstance(quota, Quota)
    assert (quota.limit, quota.cost, quota.hard) == (1_500_000, 700, True)
    assert quota.key.endswith(":2026-11") and meter.usd


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
    rules = LimitRules(
        [
            LimitConfig(per="key", requests_per_minute=100),
            LimitConfig(per="app", requests_per_minute=5, tokens_per_minute=900),
        ]
    )
    meters = [meter for meter, _ in rules.checks(CALL, lambda: 1)]
    states = [CheckState(100, 99, 0.6), CheckState(5, 2, 36.0), CheckState(900, 850, 3.5)]
    openai = dict(rate_headers("openai", meters, states))
    assert openai[b"x-ratelimit-limit-requests"] == b"5"
    assert openai[b"x-ratelimit-remaining-requests"] == b"2"
    assert openai[b"x-ratelimit-reset-requests"] == b"36s"
    assert openai[b"x-ratelimit-remaining-tokens"] == b"850"
    anthropic = dict(rate_headers("anthropic", meters, states))
    assert anthropic[b"anthropic-ratelimit-requests-limit"] == b"5"
    assert anthropic[b"anthropic-ratelimit-tokens-reset"].endswith(b"Z")
    assert not any(name.startswith(b"x-ratelimit") for name in anthropic)


def test_refusals_say_what_to_do() -> None:
    rules = LimitRules([LimitConfig(per="key", tokens_per_minute=100)])
    meters_checks = rules.checks(CALL, lambda: 500)
    meters = [m for m, _ in meters_checks]
    checks = [c for _, c in meters_checks]
    too_big = _refusal(meters, checks, Outcome(False, 0, 240.0))
    assert isinstance(too_big, RateLimitError)
    assert too_big.headers == {"x-should-retry": "false"} and "lower max_tokens" in too_big.message
    small = LimitRules([LimitConfig(per="key", tokens_per_minute=100)]).checks(CALL, lambda: 50)
    wait = _refusal([small[0][0]], [small[0][1]], Outcome(False, 0, 2.2))
    assert wait.headers == {"retry-after": "3", "retry-after-ms": "2200"}
    assert wait.type == "tokens" and wait.code == "rate_limit_exceeded"
