"""The model catalog: which public model names exist and which deployments serve them."""

from __future__ import annotations

from dataclasses import dataclass

from gatewise.core.errors import ModelNotFoundError
from gatewise.core.types import ModelCard
from gatewise.providers.base import Provider


@dataclass(frozen=True, slots=True)
class Target:
    """One deployment: an upstream model on a provider."""

    provider: Provider
    model: str


@dataclass(frozen=True, slots=True)
class Route:
    """A public model name and its deployments, in the order they are tried."""

    name: str
    targets: tuple[Target, ...]
    card: ModelCard


class ModelCatalog:
    def __init__(self, routes: list[Route]) -> None:
        self._routes = {route.name: route for route in routes}
        self._cards = [route.card for route in routes]

    def resolve(self, model: str) -> Route:
        route = self._routes.get(model)
        if route is None:
            raise ModelNotFoundError(model)
        return route

    def cards(self) -> list[ModelCard]:
        return self._cards

    def __len__(self) -> int:
        return len(self._routes)
