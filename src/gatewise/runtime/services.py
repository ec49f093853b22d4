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

from gatewise.cache.semantic_setup import SemanticCacheService
from gatewise.cache.service import CacheService
from gatewise.config.models import Config
from gatewise.identity.cache import IdentityCache
from gatewise.policies.traffic_setup import TrafficParts, build_traffic
from gatewise.prompts.outcomes import PromptOutcomes
from gatewise.routing.health import BreakerSettings, HealthBoard

if TYPE_CHECKING:  # SQLAlchemy is imported only where services are really built
    from gatewise.identity.directory import Directory
    from gatewise.identity.oidc import OIDCVerifier
    from gatewise.observe.audit_setup import AuditService
    from gatewise.observe.metrics_worker import WorkerMetrics
    from gatewise.observe.records_setup import RecordsService
    from gatewise.observe.spans import SpanExport
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
    #: Request records: their writer and purge job (``observability.records.enabled``).
    records: RecordsService | None = None
    #: Prometheus metrics: this worker's counts, shared with the other workers.
    metrics: WorkerMetrics | None = None
    #: Spans' background builder and exporter (``observability.tracing``; a reload keeps it).
    spans: SpanExport | None = None
    #: The gateway's own audit entries (guardrail blocks, config loads) and the SIEM sinks.
    audit: AuditService | None = None
    #: The exact response cache (``cache``): its store (and entries) survive a reload.
    cache: CacheService = field(default_factory=CacheService)
    #: The semantic cache (``semantic_cache``): its entries and encoder survive a reload.
    semantic_cache: SemanticCacheService = field(default_factory=SemanticCacheService)
    #: Prompt calls' outcomes per version (canary comparison); a reload keeps the counts.
    prompt_outcomes: PromptOutcomes = field(default_factory=PromptOutcomes)
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
        if self.audit is not None:
            self.audit.start()  # audit entries' writer (this config's load) and sinks
        if self.records is not None:
            self.records.start()  # request records' writer and purge job
        await self.identity_cache.start()  # loads every caller into memory
        if self.verifier is not None:
            await self.verifier.start()
        await self.traffic.start()
        if self.shared_health is not None:
            self._sharing = asyncio.ensure_future(self.shared_health.run(self.health))
        if self.metrics is not None:
            self.metrics.start(self)  # shares this worker's counts every interval
        if self.spans is not None:
            self.spans.start()  # builds and exports spans on a thread of its own

    async def close(self) -> None:
        if self.metrics is not None:
            await self.metrics.close()  # the last counts, for the scrapes of other workers
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
        if self.records is not None:
            await self.records.close()  # writes (or spills) every queued request record
        if self.spans is not None:
            await asyncio.to_thread(self.spans.close)  # exports every queued span
        if self.audit is not None:
            await self.audit.close()  # writes queued audit entries, then the sinks send theirs
        await self.cache.close()  # the last entries' writes reach Redis (shared mode)
        await self.semantic_cache.close()  # stored entries reach Redis (shared mode)
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
        records=request_records(config, database, store_url, config_dir, cache),
        metrics=worker_metrics(config),
        spans=span_export(config, config_dir),
        audit=audit_service(config, database, config_dir),
    )


def span_export(config: Config, config_dir: Path | None) -> SpanExport | None:
    """The spans' exporter (None: tracing off, or on with ``exporter: none``)."""
    if not config.observability.tracing.enabled:
        return None
    from gatewise.observe.spans import build_span_export

    return build_span_export(config.observability.tracing, config_dir)


def worker_metrics(config: Config) -> WorkerMetrics | None:
    """This worker's metrics (shared through the server's folder when there are several)."""
    settings = config.observability.metrics
    if not settings.enabled:
        return None
    from gatewise.observe.metrics_share import env_folder
    from gatewise.observe.metrics_worker import WorkerMetrics

    return WorkerMetrics(settings, env_folder())


def request_records(
    config: Config,
    database: Database,
    store_url: str,
    config_dir: Path | None,
    cache: IdentityCache,
) -> RecordsService | None:
    """The request records' writer and purge job (None: ``observability.records`` is off)."""
    settings = config.observability.records
    if not settings.enabled:
        return None
    from gatewise.observe.records_setup import RecordsService

    def directory() -> Directory | None:
        try:
            return cache.directory
        except RuntimeError:  # not started yet
            return None

    return RecordsService(settings, database, store_url, config_dir, directory)


def audit_service(config: Config, database: Database, config_dir: Path | None) -> AuditService:
    """The audit trail's writer and sinks (``observability.audit``)."""
    from gatewise.observe.audit_setup import audit_service as build

    return build(config, database, config_dir)
