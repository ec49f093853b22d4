"""Reloading a worker's config: read, validate, build, swap; or reject and keep serving.

One job: turn "the config may have changed" (SIGHUP, the file watcher, the admin API)
into either a new ``Generation`` that serves every new request, or a rejection that
leaves the old one serving and says why (``file:line`` errors) in four places: the
status ``GET /admin/v1/config`` shows, a metric, an audit entry and a log line.

The swap is one attribute assignment on the event loop, so a request reads either the
old generation or the new one, never half of each; requests in flight finish on the
old one, which is closed in the background once they are done (so a reload never waits
for a long stream). Counters, breakers, caches and writers live in ``Services`` and
survive. Reloads run one at a time: a second trigger waits for the first.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import signal
import threading
import time
from collections.abc import Coroutine
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, Protocol

from gatewise.config.models import Config
from gatewise.runtime.generation import Generation, build_generation
from gatewise.runtime.prepare import Prepared, StartupError, prepare
from gatewise.runtime.services import Services

log = logging.getLogger("gatewise")

Result = Literal["loaded", "rejected", "unchanged"]


class Live(Protocol):
    """What a reload swaps in: the app's services and its live generation."""

    services: Services
    generation: Generation
    draining: bool


@dataclass
class ReloadStatus:
    """What ``GET /admin/v1/config`` shows: the serving config and the last attempt."""

    source_path: str
    config_hash: str
    loaded_at: float
    last_attempt_at: float | None = None
    last_trigger: str | None = None
    last_result: Result | None = None
    #: The last attempt's errors, one ``file:line: message`` each (empty unless rejected).
    errors: list[str] = field(default_factory=list)
    #: Attempts per result since the worker started (the reloads metric).
    counts: dict[str, int] = field(
        default_factory=lambda: {"loaded": 0, "rejected": 0, "unchanged": 0}
    )


def fingerprint(path: Path, config: Config | None = None) -> str:
    """A hash of the config file and its prompt folder's files: what a reload would read."""
    digest = hashlib.sha256(path.read_bytes())
    folder = config.prompts.folder if config is not None else None
    if folder is not None:
        root = Path(folder) if Path(folder).is_absolute() else path.parent / folder
        for file in sorted(root.glob("*.yaml")) if root.is_dir() else []:
            digest.update(file.name.encode() + b"\0" + file.read_bytes() + b"\0")
    return digest.hexdigest()


class Reloader:
    """Reloads ``live`` from ``path``; ``start`` installs the SIGHUP handler and the watcher."""

    def __init__(self, live: Live, path: Path) -> None:
        self.live = live
        self.path = path.resolve()
        config = live.generation.config
        self.status = ReloadStatus(str(self.path), fingerprint(self.path, config), time.time())
        self._lock = asyncio.Lock()
        self._tasks: set[asyncio.Task[object]] = set()
        self._watch: asyncio.Task[None] | None = None
        self._sighup = False
        self._early_sighup = False

    def hold_sighup(self) -> None:
        """Until ``start``: a SIGHUP (whose default would end the process) is kept, and the
        reload it asks for runs at start (a worker still starting when the supervisor
        forwarded it would otherwise serve the config it read before the change)."""

        def held(signum: int, frame: object) -> None:
            self._early_sighup = True

        signal.signal(signal.SIGHUP, held)

    # --- the reload itself -----------------------------------------------------------

    async def reload(self, trigger: str, *, force: bool = True) -> ReloadStatus:
        """Load the file again; swap to it, or reject it keeping the old one serving.

        ``force=False`` (the watcher) skips a file whose content has not changed."""
        async with self._lock:
            status = self.status
            status.last_attempt_at = time.time()
            status.last_trigger = trigger
            text: bytes | None = None
            try:
                text = await asyncio.to_thread(self.path.read_bytes)
                digest, config, prepared = await asyncio.to_thread(self._read)
                if not force and digest == status.config_hash:
                    return self._settle("unchanged", [])
                live = self.live
                generation = build_generation(config, live.services, self.path.parent, prepared)
                await generation.start()
            except Exception as error:
                self._reject(trigger, error, text)
                return status
            old, self.live.generation = self.live.generation, generation
            status.config_hash, status.loaded_at = digest, time.time()
            self._retire(old)
            audit = self.live.services.audit
            if audit is not None:
                audit.config_loaded(config, trigger)
            log.info("config reloaded (%s) from %s, hash %s", trigger, self.path, digest[:12])
            return self._settle("loaded", [])

    def _read(self) -> tuple[str, Config, Prepared]:
        """Off the event loop: read, parse, validate, resolve secrets, check prompts."""
        from gatewise.config.loader import load_config
        from gatewise.prompts.registry import check_prompts

        config = load_config(self.path)
        digest = fingerprint(self.path, config)
        try:
            prepared = prepare(config, self.path.parent)
        except StartupError as error:
            raise StartupError(f"{self.path}: {error}") from None
        check_prompts(config, self.path.parent, str(self.path))
        return digest, config, prepared

    def _reject(self, trigger: str, error: Exception, text: bytes | None) -> None:
        from gatewise.config.loader import ConfigError

        if isinstance(error, ConfigError):
            errors = [str(issue) for issue in error.issues]
        elif isinstance(error, OSError):
            errors = [f"{self.path}: cannot read: {error.strerror or error}"]
        else:
            errors = str(error).splitlines() or [type(error).__name__]
            if not isinstance(error, StartupError):  # a bug, not a bad config: its trace
                log.error("reload failed", exc_info=error)
        self._settle("rejected", errors)
        log.error(
            "config reload (%s) rejected, the previous config keeps serving:\n  %s",
            trigger,
            "\n  ".join(errors),
        )
        audit = self.live.services.audit
        if audit is not None:
            serving = self.live.generation.config
            audit.config_rejected(trigger, "\n".join(errors), text=text, serving=serving)

    def _settle(self, result: Result, errors: list[str]) -> ReloadStatus:
        self.status.last_result = result
        self.status.errors = errors
        self.status.counts[result] += 1
        return self.status

    def _retire(self, old: Generation) -> None:
        """Close ``old`` once its requests (streams included) have finished."""

        async def retire() -> None:
            await old.drained()
            await old.close()

        self._keep(retire())

    def _keep(self, work: Coroutine[object, object, object]) -> None:
        task: asyncio.Task[object] = asyncio.ensure_future(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # --- triggers ----------------------------------------------------------------------

    def start(self) -> None:
        """SIGHUP reloads (main thread only: signals are the process's), and the watcher."""
        loop = asyncio.get_running_loop()
        if threading.current_thread() is threading.main_thread():
            loop.add_signal_handler(signal.SIGHUP, self._on_sighup)
            self._sighup = True
            if self._early_sighup:
                self._on_sighup()
            watch_drain(self.live)
        metrics = self.live.services.metrics
        if metrics is not None:
            metrics.config_status = lambda: (self.status.config_hash, self.status.counts)
        settings = self.live.generation.config.server.reload
        if settings.watch:
            self._watch = asyncio.ensure_future(self._watch_file(settings.watch_interval_s))

    def _on_sighup(self) -> None:
        self._keep(self.reload("sighup"))

    async def _watch_file(self, interval: float) -> None:
        """Poll the file (and prompt folder); reload when the content differs from the last
        seen, so a rejected file is tried once, not every interval."""
        seen = self.status.config_hash
        while True:
            await asyncio.sleep(interval)
            try:
                config = self.live.generation.config
                digest = await asyncio.to_thread(fingerprint, self.path, config)
            except OSError:
                continue  # being replaced: look again next time
            if digest != seen:
                seen = digest
                await self.reload("watch", force=False)

    async def close(self) -> None:
        if self._sighup:
            asyncio.get_running_loop().remove_signal_handler(signal.SIGHUP)
        if self._watch is not None:
            self._watch.cancel()
            await asyncio.gather(self._watch, return_exceptions=True)
        await asyncio.gather(*self._tasks, return_exceptions=True)


def watch_drain(live: Live) -> None:
    """Mark ``live`` draining the moment SIGTERM arrives (``/readyz`` answers 503 from
    then on), then let the server's own handler begin the drain."""
    previous = signal.getsignal(signal.SIGTERM)
    if not callable(previous):
        return

    def on_term(signum: int, frame: object) -> None:
        live.draining = True
        previous(signum, frame)  # type: ignore[arg-type]

    signal.signal(signal.SIGTERM, on_term)
