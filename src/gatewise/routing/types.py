"""What routing decides over: deployments with their routing attributes, their live
health as strategies read it, and what a call tells the router about itself.

These are the shared vocabulary of ``strategies`` (how to order deployments),
``health`` (what each deployment has been doing) and ``router`` (the plan of one
call). A ``Target`` (``routing.catalog``) is one deployment; the attributes here ride
on it so the hot path never looks anything up by name.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol


class HealthView(Protocol):
    """What a strategy may read of a deployment's live state (``health.DeploymentHealth``)."""

    @property
    def in_flight(self) -> int:
        """Attempts on this deployment now under way, in this worker."""
        ...

    @property
    def ttfb_ewma_ms(self) -> float | None:
        """Smoothed time to first byte of successful attempts (None: none seen yet)."""
        ...

    @property
    def total_ewma_ms(self) -> float | None:
        """Smoothed whole duration of successful attempts (None: none seen yet)."""
        ...


@dataclass(frozen=True, slots=True)
class DeploymentInfo:
    """A deployment's routing attributes, from the config (``models[].deployments[]``)."""

    #: Unique among all deployments: the configured ``name``, else ``provider/model``
    #: (a second deployment of the same provider and model gets ``#2``, ``#3`` ...).
    id: str
    provider: str
    model: str
    weight: int = 1
    tags: frozenset[str] = frozenset()
    region: str | None = None
    #: Seconds an attempt may take up to the reply (or a stream's opening); None: the
    #: provider's own timeouts only.
    timeout: float | None = None
    #: USD per million input and output tokens (for ``lowest_cost``; 0 when unknown).
    input_per_million: float = 0.0
    output_per_million: float = 0.0


@dataclass(frozen=True, slots=True)
class Candidate:
    """One deployment a strategy may order: its attributes and its live health."""

    info: DeploymentInfo
    health: HealthView
    #: Its position in the model's configured list (ties keep configured order).
    position: int


@dataclass(slots=True)
class RoutingInput:
    """What one call tells the strategies about itself (computed only when asked for)."""

    #: Sticky routing: the same value always prefers the same deployment (a key id,
    #: a user, a session header); None: not sticky.
    sticky: str | None = None
    #: ``x-gatewise-tags``: prefer deployments carrying every one of these.
    tags: frozenset[str] = frozenset()
    #: A digest of the prompt's opening (prompt-cache affinity); None: not computed.
    prefix: str | None = None
    #: Estimated input tokens and the output tokens asked for (``lowest_cost``).
    input_tokens: int = 0
    output_tokens: int = 0
    #: Every decision a strategy wants explained ("weighted:sticky", ...).
    notes: list[str] = field(default_factory=list)


class RoutingStrategy(Protocol):
    """Orders a model's available deployments for one call: the first is tried first,
    the rest are the failover order. Returns a new list; only ``tags`` drops candidates
    (those without the asked tags, unless none has them). Residency and health filtering
    happen before, in the router."""

    name: str

    def order(self, candidates: Sequence[Candidate], call: RoutingInput) -> list[Candidate]: ...
