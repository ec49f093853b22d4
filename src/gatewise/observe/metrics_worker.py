"""A worker's metrics: its counts, their sharing, the gauges read from live state, ``/metrics``.

Lives as long as the worker (in ``Services``), so counts survive config reloads; each
generation gets a ``MetricsObserver`` with its own bounded label sets (``observer``).
Gauges are read from live state, never counted per request: requests in flight (the
app's own count), the usage and request-records writers' queue depth and drops, and
every deployment's breaker state on the ``HealthBoard``. They are read when the worker
shares its counts and when it answers a scrape.
"""

from __future__ import annotations

import hmac
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from gatewise.config.metrics import MetricsConfig
from gatewise.config.secrets import resolve_reference
from gatewise.core.errors import AuthenticationError
from gatewise.http.asgi import HTTPRequest, Send, response_headers, response_start
from gatewise.observe.metrics import MetricsObserver
from gatewise.observe.metrics_exposition import CONFIG_INFO, CONFIG_RELOADS, CONTENT_TYPE, render
from gatewise.observe.metrics_labels import LabelSets
from gatewise.observe.metrics_share import Sharing
from gatewise.observe.metrics_store import MetricsStore, Snapshot, merge

if TYPE_CHECKING:
    from gatewise.config.models import Config
    from gatewise.routing.health import HealthBoard

#: Services' attributes holding the request records' writer (``depth``/``dropped``) or a
#: service whose ``writer`` it is, when there is one.
BREAKER_STATES = ("closed", "open", "half_open")


class Queue(Protocol):
    """A background writer's queue, as its gauges read it."""

    @property
    def depth(self) -> int: ...

    @property
    def dropped(self) -> int: ...


class Records(Protocol):
    @property
    def writer(self) -> Queue: ...


class Sources(Protocol):
    """What the gauges are read from (``runtime.services.Services`` is one)."""

    @property
    def usage_writer(self) -> Queue: ...

    @property
    def records(self) -> Records | None: ...

    @property
    def health(self) -> HealthBoard: ...


class WorkerMetrics:
    def __init__(self, settings: MetricsConfig, folder: Path | None) -> None:
        self.store = MetricsStore()
        self.sharing = Sharing(self.store, folder, settings.share_interval_s, self._sample)
        #: Requests being served by this worker (the app sets it to read its own count).
        self.in_flight: Callable[[], int] = lambda: 0
        #: The serving config's hash and reload attempts per result (a reloader sets it).
        self.config_status: Callable[[], tuple[str, Mapping[str, int]] | None] = lambda: None
        self._sources: Sources | None = None
        self._provider_types: dict[str, str] = {}
        self._token: bytes | None = None
        self._scrapes = 0  # scrapes being answered (each is itself a request in flight)

    def observer(self, config: Config) -> MetricsObserver:
        """The observer of a (re)loaded config, with its bounded label sets."""
        settings = config.observability.metrics
        providers = {name: section.type for name, section in config.providers.items()}
        labels = LabelSets(settings.labels, (m.name for m in config.models), providers)
        return MetricsObserver(self.store, labels, settings.path)

    def configure(self, config: Config, config_dir: Path | None) -> None:
        """What the scrape takes from a (re)loaded config: its token, the provider types."""
        settings = config.observability.metrics
        self._provider_types = {name: p.type for name, p in config.providers.items()}
        token = settings.token
        # (runtime.prepare resolved it once already: a missing secret stopped the start.)
        self._token = b"Bearer " + resolve_reference(token, config_dir).encode() if token else None

    def start(self, sources: Sources) -> None:
        self._sources = sources
        self.sharing.start()

    async def close(self) -> None:
        await self.sharing.close()

    # --- gauges ------------------------------------------------------------------------

    def _sample(self, snapshot: Snapshot) -> None:
        gauges, sampled = snapshot.gauges, snapshot.sampled
        gauges["gatewise_workers"] = 1
        gauges["gatewise_requests_in_flight"] = max(0, self.in_flight() - self._scrapes)
        config = self.config_status()
        if config is not None:  # labelled by name suffix (exposition renders the label)
            gauges[f"{CONFIG_INFO}:{config[0][:16]}"] = 1
            for result, count in config[1].items():
                sampled[f"{CONFIG_RELOADS}:{result}"] = count
        sources = self._sources
        if sources is None:
            return
        writers = [("usage", sources.usage_writer)]
        if sources.records is not None:
            writers.append(("records", sources.records.writer))
        for name, writer in writers:
            gauges[f"gatewise_{name}_writer_queue_depth"] = writer.depth
            sampled[f"gatewise_{name}_writer_dropped_total"] = writer.dropped
        now = time.monotonic()
        breakers = snapshot.breakers
        for deployment, health in sources.health.items():
            state = health.state(now)
            for each in BREAKER_STATES:
                breakers[(deployment, each)] = 1 if each == state else 0

    # --- the scrape --------------------------------------------------------------------

    async def serve(self, request: HTTPRequest, send: Send) -> None:
        """``GET /metrics``: every worker's counts (this one's live, the others' shared)."""
        token = self._token
        if token is not None:
            given = request.headers.get(b"authorization", b"")
            if not hmac.compare_digest(given, token):
                raise AuthenticationError(
                    "Metrics need the scrape token: send 'Authorization: Bearer <token>'."
                )
        self._scrapes += 1
        try:
            body = render(merge(self.sharing.everyone()), self._provider_types)
        finally:
            self._scrapes -= 1
        ctx = request.ctx
        headers = response_headers(ctx)
        headers.append((b"content-type", CONTENT_TYPE))
        headers.append((b"content-length", str(len(body)).encode("ascii")))
        ctx.status = 200
        await send(response_start(ctx, 200, headers))
        await send({"type": "http.response.body", "body": body})
