"""From the config to routing's runtime objects: each deployment's ``DeploymentInfo``
and each model's ``RoutePolicy`` (its strategy built once)."""

from __future__ import annotations

from gatewise.config.models import Config
from gatewise.config.routing import ModelRoutingConfig
from gatewise.pricing.cost import price_for
from gatewise.routing.catalog import Hedge, RoutePolicy
from gatewise.routing.strategies import make_strategy
from gatewise.routing.types import DeploymentInfo

_PER_MILLION = 1_000_000  # Price rates are micro-USD per million tokens


def deployment_infos(config: Config) -> list[list[DeploymentInfo]]:
    """Every model's deployments' routing attributes, ids unique across the config:
    the configured name, else ``provider/model`` (``#2``, ``#3`` ... for repeats)."""
    taken = {d.name for m in config.models for d in m.deployments if d.name}
    counts: dict[str, int] = {}
    out: list[list[DeploymentInfo]] = []
    for model in config.models:
        infos: list[DeploymentInfo] = []
        for deployment in model.deployments:
            name = deployment.name
            if name is None:
                base = f"{deployment.provider}/{deployment.model}"
                counts[base] = counts.get(base, 0) + 1
                name = base if counts[base] == 1 else f"{base}#{counts[base]}"
                while name in taken:
                    counts[base] += 1
                    name = f"{base}#{counts[base]}"
                taken.add(name)
            price = price_for(deployment.model, deployment.price)
            infos.append(
                DeploymentInfo(
                    id=name,
                    provider=deployment.provider,
                    model=deployment.model,
                    weight=deployment.weight,
                    tags=frozenset(t.lower() for t in deployment.tags),
                    region=deployment.region,
                    timeout=deployment.timeout,
                    input_per_million=float(price.input) / _PER_MILLION if price else 0.0,
                    output_per_million=float(price.output) / _PER_MILLION if price else 0.0,
                )
            )
        out.append(infos)
    return out


def route_policy(config: ModelRoutingConfig) -> RoutePolicy:
    strategy = None
    if config.strategy != "failover":
        options: dict[str, object] = {}
        if config.strategy == "least_latency":
            options["measure"] = config.measure
        strategy = make_strategy(config.strategy, **options)
    hedge = None
    if config.hedge is not None and config.hedge.after_ms is not None:
        hedge = Hedge(config.hedge.after_ms / 1000.0, p95=config.hedge.after == "p95")
    return RoutePolicy(
        strategy=strategy,
        sticky=config.sticky,
        sticky_header=config.sticky_header.lower().encode("latin-1"),
        prefix_chars=config.prefix_chars,
        timeout=config.timeout,
        fallbacks=tuple(config.fallbacks),
        context_window_fallbacks=tuple(config.context_window_fallbacks),
        content_policy_fallbacks=tuple(config.content_policy_fallbacks),
        hedge=hedge,
        regions=frozenset(config.regions) if config.regions is not None else None,
    )
