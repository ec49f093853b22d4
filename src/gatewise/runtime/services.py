"""What lives as long as a worker, whatever config generation serves: records and state.

The records database (and its repositories), the in-memory identity
directory, the OIDC verifier, counters for limits and budgets, the usage
writer. A new generation (a reloaded config) reuses them, so counters and the
identity cache survive a reload. Started once in the worker's event loop,
closed once at shutdown (queued usage records and settlements are written).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from gatewise.config.models import Config
from gatewise.identity.cache import IdentityCache
from gatewise.policies.traffic_setup import TrafficParts, build_traffic

if TYPE_CHECKING:  # SQLAlchemy is imported only where services are really built
    from gatewise.identity.oidc import OIDCVerifier
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

    async def start(self) -> None:
        await self.database.start()  # opens the records database and applies migrations
        self.usage_writer.start()  # usage records, written in batches in the background
        await self.identity_cache.start()  # loads every caller into memory
        if self.verifier is not None:
            await self.verifier.start()
        await self.traffic.start()

    async def close(self) -> None:
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
    )
