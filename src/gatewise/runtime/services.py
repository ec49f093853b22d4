"""What lives as long as a worker, whatever config generation serves: records and state.

The records database (and its repositories), the in-memory identity
directory, the OIDC verifier, counters for limits and budgets, the usage
writer. A new generation (a reloaded config) reuses them, so counters and the
identity cache survive a reload. Started once in the worker's event loop,
closed once at shutdown (queued usage records and settlements are written).
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from gatewise.config.models import Config
from gatewise.identity.cache import IdentityCache
from gatewise.policies.traffic_setup import TrafficParts, build_traffic
from gatewise.routing.health import BreakerSettings, HealthBoard

if TYPE_CHECKING:  # SQLAlchemy is imported only where services are really built
    from gatewise.identity.oidc import OIDCVerifier
    from gatewise.routing.shared import SharedHealth
    from gatewise.store.engine import Database
    from gatewise.store.identity import IdentityStore
    from gatewise.store.responses import ResponseRepository
    from gatewise.store.usage import UsageRepository
    from gatewise.store.usage_writer import UsageWriter

log = logging.getLogger("gatewise")


@dataclass
class Services:
    database: Database
    responses: ResponseRepository
    identity: IdentityStore
    identity_cache: IdentityCache
    traffic: TrafficParts
    usage: UsageRepository
    usage_writer: UsageWriter
    verifier: OIDCVerifier | None = None
    #: Every deployment's live health (breakers, latency, load), kept across reloads.
    health: HealthBoard = field(default_factory=HealthBoard)
    #: Shares breaker and cool-down state through Redis (``state.backend: redis``).
    shared_health: SharedHealth | None = None
    _sharing: asyncio.Task[None] | None = None

    def configure_routing(self, config: Config) -> None:
        """A (re)loaded config's breaker settings; the live state stays."""
        breaker = config.routing.breaker
        self.health.configure(
            BreakerSettings(
                failures=breaker.failures,
                error_rate=breaker.error_rate,
                min_requests=breaker.min_requests,
                window_s=breaker.window_s,
                cooldown_s=breaker.cooldown_s,
            )
        )

    async def start(self) -> None:
        await self.database.start()  # opens the records database and applies migrations
        self.usage_writer.start()  # usage records, written in batches in the background
        await self.identity_cache.start()  # loads every caller into memory
        if self.verifier is not None:
            await self.verifier.start()
        await self.traffic.start()
        if self.shared_health is not None:
            self._sharing = asyncio.ensure_future(self.shared_health.run(self.health))

    async def close(self) -> None:
        if self._sharing is not None:
            self._sharing.cancel()
            await asyncio.gather(self._sharing, return_exceptions=True)
        if self.shared_health is not None:
            await self.shared_health.close()
        await self.traffic.close()
        if self.verifier is not None:
            await self.verifier.close()
        await self.identity_cache.close()
        await self.usage_writer.close()  # writes every queued usage record
        await self.usage.close()
        await self.database.close()


def build_services(config: Config, config_dir: Path | None, store_url: str) -> Services:
    from gatewise.store.engine import Database
    from gatewise.store.identity import IdentityStore
    from gatewise.store.responses import ResponseRepository
    from gatewise.store.usage import UsageRepository
    from gatewise.store.usage_spool import spool_folder
    from gatewise.store.usage_writer import UsageWriter

    database = Database(store_url)
    identity = IdentityStore(database)
    cache = IdentityCache(identity, poll_seconds=config.auth.refresh_seconds)
    verifier = None
    if config.auth.oidc:
        from gatewise.identity.oidc import OIDCVerifier

        verifier = OIDCVerifier(config.auth.oidc)
    usage = UsageRepository(database)
    shared = None
    state = config.state
    if state.backend == "redis" and state.redis_url is not None:
        from gatewise.config.secrets import interpolate_url
        from gatewise.routing.shared import SharedHealth

        url = interpolate_url(state.redis_url, config_dir)
        shared = SharedHealth(url, prefix=state.key_prefix, timeout=state.timeout_ms / 1000)
    # (build_generation gives the health board the config's breaker settings.)
    return Services(
        database=database,
        responses=ResponseRepository(database),
        identity=identity,
        identity_cache=cache,
        traffic=build_traffic(config, config_dir, cache),
        usage=usage,
        usage_writer=UsageWriter(
            usage, spool=spool_folder(config.store.usage_spool, store_url, config_dir)
        ),
        verifier=verifier,
        shared_health=shared,
    )
