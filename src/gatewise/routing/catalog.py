"""The model catalog: which public model names exist and which deployments serve them."""

from __future__ import annotations

from dataclasses import dataclass

from gatewise.core.errors import ModelNotFoundError
from gatewise.core.types import ModelCard
from gatewise.providers.base import Provider
from gatewise.routing.types import DeploymentInfo, RoutingStrategy


@dataclass(frozen=True, slots=True, eq=False)
class Target:
    """One deployment: an upstream model on a provider, and its routing attributes."""

    provider: Provider
    model: str
    info: DeploymentInfo

    @classmethod
    def plain(cls, provider: Provider, model: str) -> Target:
        """A deployment with default routing attributes (named ``provider/model``)."""
        return cls(
            provider, model, DeploymentInfo(f"{provider.name}/{model}", provider.name, model)
        )


@dataclass(frozen=True, slots=True)
class Hedge:
    """Start a second attempt after ``after_s`` (or the first deployment's p95 time to
    first byte once known, with ``p95``)."""

    after_s: float
    p95: bool = False


@dataclass(frozen=True, slots=True)
class RoutePolicy:
    """How a model's calls are routed (``models[].routing``)."""

    #: None: configured order (failover), the fast path.
    strategy: RoutingStrategy | None = None
    sticky: str = "none"
    sticky_header: bytes = b"x-session-id"
    prefix_chars: int = 2048
    timeout: float | None = None
    fallbacks: tuple[str, ...] = ()
    context_window_fallbacks: tuple[str, ...] = ()
    content_policy_fallbacks: tuple[str, ...] = ()
    hedge: Hedge | None = None
    regions: frozenset[str] | None = None


DEFAULT_POLICY = RoutePolicy()


@dataclass(frozen=True, slots=True)
class Route:
    """A public model name and its deployments, in configured order."""

    name: str
    targets: tuple[Target, ...]
    card: ModelCard
    policy: RoutePolicy = DEFAULT_POLICY


class ModelCatalog:
    def __init__(self, routes: list[Route]) -> None:
        self._routes = {route.name: route for route in routes}
        self._cards = [route.card for route in routes]

    def resolve(self, model: str) -> Route:
        route = self._routes.get(model)
        if route is None:
            raise ModelNotFoundError(model)
        return route

    def get(self, model: str) -> Route | None:
        return self._routes.get(model)

    def routes(self) -> list[Route]:
        return list(self._routes.values())

    def cards(self) -> list[ModelCard]:
        return self._cards

    def __len__(self) -> int:
        return len(self._routes)
