"""The router: which deployments a call may try, in which order (its routing plan).

A plan is made in three cuts, each skipped when it has nothing to do (the common
call, a failover model with every deployment healthy and no residency rule, gets
its model's configured tuple back untouched):

1. Residency: only deployments in every region the call is held to (its caller's
   and its model's); none left is ``no_deployment_in_region``, never a call
   elsewhere.
2. Health: deployments whose circuit breaker is open or that are cooling down
   (a 429's retry-after) are left out; ones whose last rate-limit headers said they
   have no headroom for this call go last. None left at all answers 503 at once.
3. The model's strategy orders what is left (``routing.strategies``).

Dispatch walks the plan; a fallback model gets a plan of its own, made the same way
with the same caller (``plan_for``).
"""

from __future__ import annotations

import logging
import time
from collections import deque
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import TYPE_CHECKING

from gatewise.config.routing import RoutingConfig
from gatewise.core.errors import (
    GatewayError,
    NoDeploymentInRegionError,
    NoHealthyDeploymentError,
)
from gatewise.core.types import ChatRequest
from gatewise.routing.catalog import Hedge, ModelCatalog, Route, Target
from gatewise.routing.health import HealthBoard, Outcome
from gatewise.routing.ratelimits import retry_after_seconds
from gatewise.routing.residency import Regions, Residency, narrow
from gatewise.routing.retry import RetryBudget
from gatewise.routing.types import Candidate, RoutingInput

if TYPE_CHECKING:
    from gatewise.corridor.call import Call

log = logging.getLogger("gatewise")
_P95_SAMPLES = 200
_P95_MIN = 20

TAGS_HEADER = b"x-gatewise-tags"


class Router:
    """Makes each call's plan from its route, caller and the deployments' health."""

    def __init__(
        self,
        config: RoutingConfig | None = None,
        board: HealthBoard | None = None,
        residency: Residency | None = None,
        catalog: ModelCatalog | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.config = config or RoutingConfig()
        self.board = board if board is not None else HealthBoard()
        self.residency = residency or Residency(self.config.residency)
        self.catalog = catalog
        self.clock = clock
        #: Name the deployment, provider and attempts in response headers.
        self.headers = self.config.headers
        self.budget = RetryBudget(self.config.retry.budget)
        #: Calls are counted for the budget only where a retry can happen at all (a plan
        #: is walked again only with ``retry.attempts``).
        self.retries = self.config.retry.attempts is not None
        #: Recent times to first byte per deployment, kept only for ``hedge.after: p95``.
        self._ttfb: dict[str, deque[float]] | None = None
        if catalog is not None and any(
            r.policy.hedge is not None and r.policy.hedge.p95 for r in catalog.routes()
        ):
            self._ttfb = {}

    def plan(self, route: Route, call: Call | None = None) -> tuple[Target, ...]:
        """The deployments of ``route`` to try for ``call``, in order (at least one)."""
        policy = route.policy
        if (
            policy.strategy is None
            and policy.regions is None
            and self.residency.empty
            and not self.board.troubled
        ):
            return route.targets
        principal = call.principal if call is not None else None
        regions = narrow(self.residency.allowed(principal), policy.regions)
        return self._plan(route, regions, call)

    def deployments(self) -> list[dict[str, object]]:
        """Every configured deployment's state, for ``GET /admin/v1/deployments``."""
        if self.catalog is None:
            return []
        now, wall = self.clock(), time.time()
        out: list[dict[str, object]] = []
        seen: set[str] = set()
        for route in self.catalog.routes():
            for target in route.targets:
                info = target.info
                if info.id in seen:
                    continue
                seen.add(info.id)
                health = self.board.get(info.id)
                state = health.snapshot(now)
                healthy = health.available(now) and health.headroom(0, now)
                # "Until when" as the admin API writes times: UTC epoch seconds.
                for left, name in (
                    ("open_remaining_s", "open_until"),
                    ("cooldown_remaining_s", "cooldown_until"),
                ):
                    seconds = state.get(left)
                    state[name] = wall + seconds if isinstance(seconds, float) else None
                out.append(
                    {
                        "id": info.id,
                        "model": route.name,
                        "provider": info.provider,
                        "upstream_model": info.model,
                        "region": info.region,
                        "weight": info.weight,
                        "tags": sorted(info.tags),
                        "healthy": healthy,
                        **state,
                    }
                )
        return out

    # --- what dispatch tells the router ---------------------------------------------------

    def finished(
        self, deployment: str, verdict: Outcome, ttfb_ms: float | None, total_ms: float | None
    ) -> None:
        """An attempt on ``deployment`` ended: ``ok``, ``failure`` or ``neutral``."""
        health = self.board.get(deployment)
        transition = health.finished(verdict, self.clock(), ttfb_ms=ttfb_ms, total_ms=total_ms)
        if transition is not None:
            self._transition(deployment, transition)
        if self._ttfb is not None and verdict == "ok" and ttfb_ms is not None:
            window = self._ttfb.get(deployment)
            if window is None:
                window = self._ttfb[deployment] = deque(maxlen=_P95_SAMPLES)
            window.append(ttfb_ms)

    def cool_down(self, deployment: str, headers: Mapping[str, str]) -> None:
        """A 429: rest ``deployment`` for its retry-after (capped), or the default."""
        config = self.config
        asked = retry_after_seconds(headers)
        seconds = config.cooldown_on_429_s if asked is None else asked
        seconds = min(seconds, config.retry.max_retry_after_s)
        if seconds <= 0:
            return
        self.board.get(deployment).cool_down(self.clock() + seconds)
        log.info("deployment %s cooling down for %.1f s after a 429", deployment, seconds)

    def hedge_delay(self, deployment: str, hedge: Hedge) -> float:
        """Seconds before a hedged call's second attempt."""
        if hedge.p95 and self._ttfb is not None:
            window = self._ttfb.get(deployment)
            if window is not None and len(window) >= _P95_MIN:
                ordered = sorted(window)
                return ordered[int(len(ordered) * 0.95) - 1] / 1000.0
        return hedge.after_s

    def panics(self, route: Route) -> bool:
        """Whether a call whose every deployment is unavailable tries them anyway."""
        return not (self.config.breaker.fail_fast or route.policy.fallbacks)

    def unavailable(self, route: Route) -> GatewayError:
        return NoHealthyDeploymentError(
            f"Every deployment of model '{route.name}' is unavailable (circuit open or "
            "cooling down after a rate limit); try again shortly.",
            headers={"retry-after": "1"},
        )

    def _transition(self, deployment: str, transition: str) -> None:
        # Shared with other replicas by ``SharedHealth``, which drains the board's queue.
        if transition == "open":
            seconds = self.board.settings.cooldown_s
            log.warning("circuit of deployment %s opened for %.0f s", deployment, seconds)
        else:
            log.info("circuit of deployment %s closed", deployment)

    def plan_for(
        self, model: str, call: Call, held: Regions = None
    ) -> tuple[Route, tuple[Target, ...]] | None:
        """A fallback model's route and plan (None: not configured, or none available).
        ``held``: the regions of the models it falls back from (they still bind the call)."""
        route = self.catalog.get(model) if self.catalog is not None else None
        if route is None:
            return None
        regions = narrow(self.residency.allowed(call.principal), route.policy.regions)
        try:
            return route, self._plan(route, narrow(regions, held), call)
        except GatewayError:
            return None

    def _plan(self, route: Route, regions: Regions, call: Call | None) -> tuple[Target, ...]:
        targets: Sequence[Target] = route.targets
        if regions is not None:
            targets = [t for t in targets if t.info.region in regions]
            if not targets:
                where = ", ".join(sorted(regions)) or "no region"
                raise NoDeploymentInRegionError(
                    f"No deployment of model '{route.name}' is in a region this call may use "
                    f"({where})."
                )
        short: list[Target] = []
        if self.board.troubled:
            targets, short = self._healthy(route, targets, call)
        strategy = route.policy.strategy
        if strategy is None or len(targets) < 2:
            return (*targets, *short)
        board = self.board
        candidates = [
            Candidate(t.info, board.get(t.info.id), position) for position, t in enumerate(targets)
        ]
        hints = self._hints(route, call) if call is not None else RoutingInput()
        by_id = {t.info.id: t for t in targets}
        ordered = strategy.order(candidates, hints)
        if call is not None and hints.notes:
            call.ctx.decisions.extend(hints.notes)
        return (*(by_id[c.info.id] for c in ordered), *short)

    def _healthy(
        self, route: Route, targets: Sequence[Target], call: Call | None
    ) -> tuple[list[Target], list[Target]]:
        """The deployments available now, and after them those that told us they have no
        rate-limit headroom left for this call (tried last rather than not at all)."""
        now = self.clock()
        board = self.board
        ready: list[Target] = []
        short: list[Target] = []
        for target in targets:
            key = target.info.id
            if not board.available(key, now):
                continue
            health = board.get(key)
            if call is not None and not health.headroom(call.prompt_tokens(), now):
                short.append(target)
            else:
                ready.append(target)
        if not ready and not short:
            # Nothing is available: fail fast when told to and there is nowhere else to go;
            # else keep the plan, whose walk skips what is unavailable and then moves on to
            # the fallbacks, or (with none) tries the deployments anyway.
            if self.config.breaker.fail_fast and not route.policy.fallbacks:
                raise self.unavailable(route)
            if call is not None:
                call.ctx.decisions.append("all_unavailable")
            return list(targets), []
        if call is not None and short:
            call.ctx.decisions.extend(f"no_headroom:{t.info.id}" for t in short)
        return ready, short

    def _hints(self, route: Route, call: Call) -> RoutingInput:
        policy = route.policy
        headers = call.ctx.headers
        principal, request = call.principal, call.request
        hints = RoutingInput()
        if policy.sticky == "key" and principal is not None:
            hints.sticky = principal.key_id or principal.owner
        elif policy.sticky == "user":
            user = getattr(request, "user", None)
            hints.sticky = user or (principal.key_id if principal is not None else None)
        elif policy.sticky == "header":
            value = headers.get(policy.sticky_header)
            hints.sticky = value.decode("latin-1") if value else None
        tags = headers.get(TAGS_HEADER)
        if tags:
            hints.tags = frozenset(
                t.strip() for t in tags.decode("latin-1").lower().split(",") if t.strip()
            )
        hints.input_tokens = call.prompt_tokens()
        if isinstance(request, ChatRequest):
            hints.output_tokens = request.output_token_limit or 0
            if policy.strategy is not None and policy.strategy.name == "prefix_affinity":
                from gatewise.routing.strategies import prompt_prefix

                hints.prefix = prompt_prefix(_texts(request), policy.prefix_chars)
        return hints


def _texts(request: ChatRequest) -> Iterator[str]:
    """The messages' texts, lazily: ``prompt_prefix`` stops once it has its opening."""
    return (message.text() for message in request.messages)
