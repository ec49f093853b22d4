"""The router: which deployments a call may try, in which order (its routing plan).

Today's one strategy is ordered failover: a model's deployments in the order
the config lists them; dispatch moves on to the next after a retryable failure
before the first byte. Strategies (weighted, least latency, lowest cost,
residency rules ...) plug in here behind ``RoutingStrategy``; dispatch only ever
sees the plan.
"""

from __future__ import annotations

from typing import Protocol

from gatewise.routing.catalog import Route, Target


class RoutingStrategy(Protocol):
    def plan(self, route: Route) -> tuple[Target, ...]:
        """The deployments of ``route`` to try for one call, in order (at least one)."""
        ...


class OrderedFailover:
    """The deployments in configured order: the first is tried first."""

    def plan(self, route: Route) -> tuple[Target, ...]:
        return route.targets


class Router:
    """Hands each call its plan; one strategy for every model until the config says more."""

    def __init__(self, strategy: RoutingStrategy | None = None) -> None:
        self.strategy = strategy or OrderedFailover()
        #: The strategy's own method, bound once (this runs for every call).
        self.plan = self.strategy.plan
