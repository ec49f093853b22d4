"""Builds traffic control from a config: the counter store, the rules, alerts and prices.

Kept apart from ``runtime`` so that what is built for limits and budgets, and
in which order it starts and stops, reads in one place.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from gatewise.alerts.thresholds import ThresholdTracker
from gatewise.alerts.webhooks import WebhookSender
from gatewise.config.models import Config
from gatewise.config.providers import Timeouts
from gatewise.config.secrets import interpolate_url, resolve_reference
from gatewise.identity.cache import IdentityCache
from gatewise.policies.budget_alerts import BudgetAlerts
from gatewise.policies.limits import SLOT_TTL_MARGIN, Planner
from gatewise.policies.traffic import TrafficControl
from gatewise.pricing.book import PriceBook
from gatewise.state.base import CounterStore
from gatewise.state.memory import MemoryCounterStore


@dataclass
class TrafficParts:
    """What limits and budgets need at run time; ``traffic`` is None when none are configured."""

    prices: PriceBook
    traffic: TrafficControl | None
    store: CounterStore | None
    sender: WebhookSender | None
    alerts: BudgetAlerts | None

    async def start(self) -> None:
        if self.store is not None:
            await self.store.start()
        if self.sender is not None:
            await self.sender.start()

    async def close(self) -> None:
        if self.traffic is not None:
            await self.traffic.close()  # settle what is pending
        if self.alerts is not None:
            await self.alerts.close()
        if self.sender is not None:
            await self.sender.close()
        if self.store is not None:
            await self.store.close()


def price_book(config: Config) -> PriceBook:
    overrides = {
        (deployment.provider, deployment.model): deployment.price
        for model in config.models
        for deployment in model.deployments
        if deployment.price is not None
    }
    return PriceBook(overrides)


def slot_ttls(config: Config) -> dict[str, float]:
    """How long a concurrency slot of each model lives unless given back: a little more
    (``SLOT_TTL_MARGIN``) than its calls may run. A call may try every deployment in
    turn, each for up to its provider's total timeout (``timeouts.total``), so a slot
    lives for their sum: the longest total timeout when the model has one deployment."""
    ttls = {}
    for model in config.models:
        longest = 0.0
        for deployment in model.deployments:
            provider = config.providers.get(deployment.provider)
            longest += (provider.timeouts if provider is not None else Timeouts()).total
        ttls[model.name] = longest + SLOT_TTL_MARGIN
    return ttls


def counter_store(config: Config, config_dir: Path | None) -> CounterStore:
    state = config.state
    if state.backend == "memory":
        return MemoryCounterStore()
    from gatewise.state.redis import RedisCounterStore
    from gatewise.state.resilient import ResilientStore

    assert state.redis_url is not None
    url = interpolate_url(state.redis_url, config_dir)
    primary = RedisCounterStore(url, prefix=state.key_prefix, timeout=state.timeout_ms / 1000)
    fallback = MemoryCounterStore() if state.on_error == "open" else None
    # The fallback counts in each process: it enforces each worker's share of a limit.
    share = config.server.workers
    return ResilientStore(primary, on_error=state.on_error, fallback=fallback, share=share)


def build_traffic(config: Config, config_dir: Path | None, identity: IdentityCache) -> TrafficParts:
    prices = price_book(config)
    if not config.limits and not config.budgets:
        # No counters; a security alert may still need the webhook sender.
        return TrafficParts(prices, None, None, alert_sender(config, config_dir), None)
    store = counter_store(config, config_dir)
    # Each process counts on its own in memory: it enforces its share of every limit (with
    # Redis, so does the fallback of ``on_error: open``; see ``counter_store``).
    workers = config.server.workers if config.state.backend == "memory" else 1
    sender = alert_sender(config, config_dir)
    alerts = None
    if sender is not None and any(budget.webhook for budget in config.budgets):
        alerts = BudgetAlerts(ThresholdTracker(store.once), sender)

    def tenant_name(tenant_id: str | None) -> str | None:
        if tenant_id is None:
            return None
        tenant = identity.directory.tenants_by_id.get(tenant_id)
        return tenant.name if tenant is not None else None

    traffic = TrafficControl(
        store,
        Planner(config.limits, config.budgets, workers=workers, slot_ttls=slot_ttls(config)),
        tenant_name=tenant_name,
        alerts=alerts,
    )
    return TrafficParts(prices, traffic, store, sender, alerts)


def alert_sender(config: Config, config_dir: Path | None) -> WebhookSender | None:
    """The webhook sender, when a budget or the guardrails' security alert names a webhook."""
    if not any(budget.webhook for budget in config.budgets) and config.guardrails.alerts is None:
        return None
    return WebhookSender(
        config.webhooks, resolve_secret=lambda ref: resolve_reference(ref, config_dir)
    )
