"""The router's plans (residency, health, strategy), the retry budget and backoff, how
failures are read, and active health checks: in process, with scripted providers."""

from __future__ import annotations

import random
from dataclasses import replace
from typing import Any

import pytest

from gatewise.config.routing import (
    HealthCheckConfig,
    ResidencyConfig,
    RetryBudgetConfig,
    RoutingConfig,
)
from gatewise.core.errors import (
    GatewayError,
    InvalidRequestError,
    NoDeploymentInRegionError,
    NoHealthyDeploymentError,
    UpstreamError,
    UpstreamTimeoutError,
)
from gatewise.core.types import ModelCard
from gatewise.routing.catalog import ModelCatalog, Route, RoutePolicy, Target
from gatewise.routing.checks import HealthChecks
from gatewise.routing.failures import CONTENT_POLICY, CONTEXT_WINDOW, fallback_kind, outcome
from gatewise.routing.health import HealthBoard
from gatewise.routing.residency import Residency
from gatewise.routing.retry import RetryBudget, backoff_s
from gatewise.routing.router import Router
from gatewise.routing.strategies import make_strategy
from gatewise.routing.types import DeploymentInfo
from tests.corridor_doubles import ScriptedProvider, principal


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def target(name: str, region: str | None = None, weight: int = 1) -> Target:
    provider: Any = ScriptedProvider(name)
    info = DeploymentInfo(f"{name}/m", name, "m", weight=weight, region=region)
    return Target(provider, "m", info)


def route(*targets: Target, **policy: Any) -> Route:
    card = ModelCard(id="m", created=0, owned_by="t")
    return Route("m", targets, card, RoutePolicy(**policy))


def ids(plan: tuple[Target, ...]) -> list[str]:
    return [t.info.id for t in plan]


def test_the_common_call_gets_the_configured_tuple_itself() -> None:
    r = route(target("a"), target("b"))
    assert Router().plan(r) is r.targets


def test_residency_keeps_only_allowed_regions_and_refuses_when_none_is() -> None:
    r = route(target("eu1", "eu"), target("us1", "us"), target("nowhere"))
    residency = Residency(ResidencyConfig(keys={"k1": ["eu"]}))
    router = Router(residency=residency)
    call: Any = _call(principal())
    assert ids(router.plan(r, call)) == ["eu1/m"]
    us_only = route(target("us1", "us"))
    with pytest.raises(NoDeploymentInRegionError) as refused:
        router.plan(us_only, call)
    assert refused.value.code == "no_deployment_in_region" and refused.value.status == 403


def test_model_regions_and_caller_regions_narrow_each_other() -> None:
    r = route(target("eu1", "eu"), target("ch1", "ch"), regions=frozenset({"eu", "ch"}))
    router = Router(residency=Residency(ResidencyConfig(keys={"k1": ["ch", "us"]})))
    assert ids(router.plan(r, _call(principal()))) == ["ch1/m"]
    assert ids(Router().plan(r, _call(None))) == ["eu1/m", "ch1/m"]


def test_open_and_cooling_deployments_are_left_out_and_short_ones_go_last() -> None:
    clock = Clock()
    board = HealthBoard()
    router = Router(board=board, clock=clock)
    r = route(target("a"), target("b"), target("c"))
    for _ in range(5):
        board.get("a/m").started()
        board.get("a/m").finished("failure", clock.now)
    board.get("b/m").observe_headers(
        {"x-ratelimit-remaining-requests": "0", "x-ratelimit-reset-requests": "5s"}, clock.now
    )
    call = _call(None)
    assert ids(router.plan(r, call)) == ["c/m", "b/m"]
    assert "no_headroom:b/m" in call.ctx.decisions
    clock.now += 31  # a's cool-down is over (half-open: one probe), b's reset passed
    assert ids(router.plan(r, _call(None))) == ["a/m", "b/m", "c/m"]


def test_all_unavailable_tries_anyway_unless_fail_fast_or_fallbacks() -> None:
    clock = Clock()
    board = HealthBoard()
    board.get("a/m").cool_down(clock.now + 10)
    r = route(target("a"))
    call = _call(None)
    assert ids(Router(board=board, clock=clock).plan(r, call)) == ["a/m"]
    assert "all_unavailable" in call.ctx.decisions
    config = RoutingConfig.model_validate({"breaker": {"fail_fast": True}})
    with pytest.raises(NoHealthyDeploymentError):
        Router(config, board=board, clock=clock).plan(r, _call(None))
    # With fallbacks the plan stays (for pricing): its walk skips what is unavailable and
    # moves on to them.
    with_fallbacks = route(target("a"), fallbacks=("other",))
    call = _call(None)
    assert ids(Router(config, board=board, clock=clock).plan(with_fallbacks, call)) == ["a/m"]
    assert "all_unavailable" in call.ctx.decisions


def test_a_strategy_orders_the_plan_and_explains_itself() -> None:
    r = route(target("a", weight=0), target("b", weight=5), strategy=make_strategy("weighted"))
    call = _call(None)
    assert ids(Router().plan(r, call)) == ["b/m", "a/m"]
    assert any(note.startswith("weighted") for note in call.ctx.decisions)


def test_fallback_plans_come_from_the_catalog_with_the_same_residency() -> None:
    main = route(target("a", "eu"))
    other = replace(route(target("b", "us"), target("c", "eu")), name="other")
    catalog = ModelCatalog([main, other])
    router = Router(residency=Residency(ResidencyConfig(keys={"k1": ["eu"]})), catalog=catalog)
    found = router.plan_for("other", _call(principal()))
    assert found is not None and ids(found[1]) == ["c/m"]
    assert router.plan_for("missing", _call(principal())) is None


def test_the_retry_budget_caps_retries_at_a_share_of_calls() -> None:
    budget = RetryBudget(RetryBudgetConfig(ratio=0.2, window_s=10, min_per_s=0))
    for _ in range(10):
        budget.called(1.0)
    assert [budget.try_retry(1.5) for _ in range(3)] == [True, True, False]
    # Ten seconds later the window has moved on: no calls, no retries.
    assert budget.try_retry(12.0) is False
    floor = RetryBudget(RetryBudgetConfig(ratio=0.0, window_s=10, min_per_s=0.1))
    assert [floor.try_retry(1.0) for _ in range(2)] == [True, False]


def test_backoff_is_jittered_under_a_doubling_ceiling() -> None:
    rng = random.Random(7)
    waits = [backoff_s(retry, 100, 1000, rng) for retry in (1, 2, 3, 4, 5) for _ in range(200)]
    assert all(0 <= w <= 1.0 for w in waits)
    first = [backoff_s(1, 100, 1000, rng) for _ in range(500)]
    assert max(first) <= 0.1 and min(first) < 0.02 and max(first) > 0.08
    assert max(backoff_s(5, 100, 1000, rng) for _ in range(500)) > 0.9


@pytest.mark.parametrize(
    ("error", "kind"),
    [
        (InvalidRequestError("x", code="context_length_exceeded"), CONTEXT_WINDOW),
        (UpstreamError("prompt is too long: 210000 tokens", status=400), CONTEXT_WINDOW),
        (UpstreamError("blocked", status=400, code="content_filter"), CONTENT_POLICY),
        (UpstreamError("bad field", status=400, code="invalid_value"), None),
        (UpstreamError("down", status=503), "unavailable"),
        (UpstreamTimeoutError("slow"), "unavailable"),
        (GatewayError("not found", status=404), None),
    ],
)
def test_failures_pick_their_fallback_list(error: GatewayError, kind: str | None) -> None:
    assert fallback_kind(error) == kind


def test_only_the_deployments_fault_counts_against_its_breaker() -> None:
    assert outcome(UpstreamError("x", status=502)) == "failure"
    assert outcome(UpstreamTimeoutError("x")) == "failure"
    assert outcome(UpstreamError("x", status=429)) == "neutral"
    assert outcome(UpstreamError("x", status=400)) == "neutral"
    assert outcome(UpstreamError("bad upstream key", status=401)) == "failure"


async def test_health_checks_feed_the_breakers() -> None:
    broken = target("broken")
    healthy = target("healthy")
    broken.provider.outcomes = [UpstreamError("down", status=500)] * 3  # type: ignore[attr-defined]
    catalog = ModelCatalog([route(broken, healthy)])
    board = HealthBoard()
    router = Router(board=board, catalog=catalog)
    checks = HealthChecks(HealthCheckConfig(interval_s=60, models=["m"]), catalog, router)
    for _ in range(3):
        assert await checks.check_all() == [False, True]
    assert board.get("broken/m").consecutive_failures == 3
    assert board.get("healthy/m").ttfb_ewma_ms is not None
    assert board.get("broken/m").in_flight == board.get("healthy/m").in_flight == 0


def _call(who: Any) -> Any:
    from gatewise.core.context import RequestContext
    from gatewise.core.types import ChatRequest, Message

    class FakeCall:
        def __init__(self) -> None:
            self.ctx = RequestContext("req_x")
            self.principal = who
            self.request = ChatRequest(model="m", messages=[Message(role="user", content="hi")])

        def prompt_tokens(self) -> int:
            return 10

    return FakeCall()
