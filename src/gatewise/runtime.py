"""Turns a validated ``Config`` into live objects: providers, the catalog, the pipeline.

Secrets are resolved here, when the gateway starts, not when the config is
validated: CI can validate a config without production secrets. A provider
marked ``optional`` whose secret is missing is left out (with the models only
it serves) instead of stopping the gateway.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from gatewise.config.models import Config
from gatewise.config.secrets import SecretResolutionError
from gatewise.core.pipeline import Pipeline
from gatewise.core.types import ModelCard
from gatewise.identity.cache import IdentityCache
from gatewise.policies.access import ModelAccessPolicy
from gatewise.policies.auth import Authenticator
from gatewise.policies.metering import CallMeter
from gatewise.policies.traffic_setup import TrafficParts, build_traffic
from gatewise.providers.base import Provider, provider_factory
from gatewise.routing.catalog import ModelCatalog, Route, Target
from gatewise.store.urls import resolve_store_url

if TYPE_CHECKING:  # SQLAlchemy is imported only where a runtime is really built
    from gatewise.identity.oidc import OIDCVerifier
    from gatewise.policies.accounting import Accounting
    from gatewise.store.engine import Database
    from gatewise.store.identity import IdentityStore
    from gatewise.store.responses import ResponseRepository
    from gatewise.store.usage import UsageRepository

log = logging.getLogger("gatewise")

# `created` of every model card: the gateway's models have no real creation date.
MODEL_CREATED = 1_700_000_000


class StartupError(Exception):
    """The configuration is valid but cannot be brought to life (e.g. a secret is missing)."""


@dataclass
class Runtime:
    config: Config
    providers: dict[str, Provider]
    catalog: ModelCatalog
    pipeline: Pipeline
    database: Database
    responses: ResponseRepository
    identity: IdentityStore
    identity_cache: IdentityCache
    authenticator: Authenticator
    traffic: TrafficParts
    accounting: Accounting
    usage: UsageRepository
    verifier: OIDCVerifier | None = None
    skipped: list[str] = field(default_factory=list)

    async def start(self) -> None:
        await self.database.start()  # opens the records database and applies migrations
        self.accounting.writer.start()  # usage records, written in batches in the background
        await self.identity_cache.start()  # loads every caller into memory
        if self.verifier is not None:
            await self.verifier.start()
        await self.traffic.start()
        for provider in self.providers.values():
            await provider.start()

    async def close(self) -> None:
        for provider in self.providers.values():
            await provider.close()
        await self.traffic.close()
        if self.verifier is not None:
            await self.verifier.close()
        await self.identity_cache.close()
        await self.accounting.writer.close()  # writes every queued usage record
        await self.usage.close()
        await self.database.close()


@dataclass
class Prepared:
    """What a config turns into before anything heavy is imported: providers with their
    secrets resolved, the catalog, the store URL. ``gatewise serve`` prepares once in the
    supervising process to fail early on a missing secret; each worker builds a runtime."""

    providers: dict[str, Provider]
    catalog: ModelCatalog
    store_url: str
    skipped: list[str]


def prepare(config: Config, config_dir: Path | None = None) -> Prepared:
    providers: dict[str, Provider] = {}
    skipped: list[str] = []
    for name, section in config.providers.items():
        try:
            providers[name] = provider_factory(section.type)(name, section, config_dir)
        except SecretResolutionError as exc:
            if section.optional:
                skipped.append(f"provider {name!r} left out: {exc}")
                continue
            raise StartupError(f"providers.{name}: {exc}") from None
        except KeyError:
            raise StartupError(
                f"providers.{name}.type: unknown provider type {section.type!r}"
            ) from None

    routes: list[Route] = []
    for model in config.models:
        targets = tuple(
            Target(providers[d.provider], d.model)
            for d in model.deployments
            if d.provider in providers
        )
        if not targets:
            skipped.append(f"model {model.name!r} left out: none of its providers is available")
            continue
        card = ModelCard(id=model.name, created=MODEL_CREATED, owned_by=model.owned_by)
        routes.append(Route(model.name, targets, card))
    try:
        store_url = resolve_store_url(config.store.url, config_dir)
    except SecretResolutionError as exc:
        raise StartupError(f"store.url: {exc}") from None
    return Prepared(providers, ModelCatalog(routes), store_url, skipped)


def build_runtime(config: Config, config_dir: Path | None = None) -> Runtime:
    from gatewise.policies.accounting import Accounting
    from gatewise.store.engine import Database
    from gatewise.store.identity import IdentityStore
    from gatewise.store.responses import ResponseRepository
    from gatewise.store.usage import UsageRepository, UsageWriter

    prepared = prepare(config, config_dir)
    for line in prepared.skipped:
        log.info(line)
    database = Database(prepared.store_url)
    identity = IdentityStore(database)
    cache = IdentityCache(identity, poll_seconds=config.auth.refresh_seconds)
    verifier = None
    if config.auth.oidc:
        from gatewise.identity.oidc import OIDCVerifier

        verifier = OIDCVerifier(config.auth.oidc)
    open_mode = config.auth.mode == "open"
    if open_mode:
        log.warning(
            "auth.mode is open: callers without a gateway key are served anonymously; "
            "use auth.mode: keys outside local trials"
        )
    approval = frozenset(m.name for m in config.models if m.approval == "required")
    traffic = build_traffic(config, config_dir, cache)
    meter = CallMeter(traffic.traffic, traffic.prices)
    usage = UsageRepository(database)
    return Runtime(
        config,
        prepared.providers,
        prepared.catalog,
        Pipeline(prepared.catalog, ModelAccessPolicy(cache, approval), meter),
        database=database,
        responses=ResponseRepository(database),
        identity=identity,
        identity_cache=cache,
        authenticator=Authenticator(cache, verifier, open_mode=open_mode),
        traffic=traffic,
        accounting=Accounting(UsageWriter(usage), enabled=config.store.usage_records),
        usage=usage,
        verifier=verifier,
        skipped=prepared.skipped,
    )
