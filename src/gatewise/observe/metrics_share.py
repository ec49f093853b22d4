"""Metrics across worker processes: each worker's totals in a file, merged by whoever is scraped.

``gatewise serve`` with several workers makes one fresh folder per server
(``server_folder``) and names it in ``GATEWISE_METRICS_DIR`` for its workers. Each
worker writes its totals there every ``share_interval_s`` (a ``marshal`` dump written
aside and renamed in, so a reader never sees half a file) and once more when it stops.
A scrape, answered by any worker, reads every other worker's file and adds its own live
counts: it sees every worker's counts as of at most one interval ago.

Counters of a worker that died stay in its file, so totals never go down (a restarted
worker writes a new file). Gauges (in flight, queue depths, breakers) are taken only
from files written in the last few intervals: a dead worker's gauges fade out.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import marshal
import os
import shutil
import tempfile
import time
from collections.abc import Callable, Iterable
from pathlib import Path

from gatewise.observe.metrics_store import MetricsStore, Snapshot

log = logging.getLogger("gatewise.metrics")

#: Names the server's metrics folder for its workers.
METRICS_DIR_ENV = "GATEWISE_METRICS_DIR"
SUFFIX = ".metrics"
#: A file not rewritten for this many intervals holds no live gauges (its worker is gone).
STALE_INTERVALS = 3
_FORMAT = 1


def server_folder() -> Path:
    """A fresh, private folder for this server's workers (named in ``METRICS_DIR_ENV``)."""
    folder = Path(tempfile.mkdtemp(prefix="gatewise-metrics-"))
    os.environ[METRICS_DIR_ENV] = str(folder)
    return folder


def remove_server_folder(folder: Path) -> None:
    shutil.rmtree(folder, ignore_errors=True)
    if os.environ.get(METRICS_DIR_ENV) == str(folder):
        del os.environ[METRICS_DIR_ENV]


def env_folder() -> Path | None:
    """The server's metrics folder, when this process is one of several workers."""
    value = os.environ.get(METRICS_DIR_ENV)
    return Path(value) if value else None


def write_snapshot(path: Path, snapshot: Snapshot) -> None:
    data = marshal.dumps((_FORMAT, *snapshot.as_tuple()))  # type: ignore[arg-type]
    aside = path.with_suffix(".tmp")
    aside.write_bytes(data)
    os.replace(aside, path)


def read_snapshot(path: Path) -> Snapshot | None:
    """A worker's file, or None if it is gone or not ours to read."""
    try:
        data = marshal.loads(path.read_bytes())
    except (OSError, EOFError, ValueError, TypeError):
        return None
    if not isinstance(data, tuple) or len(data) != 8 or data[0] != _FORMAT:
        return None
    return Snapshot(*data[1:])


class Sharing:
    """One worker's side: writes its totals every ``interval``; reads the others' at scrape.

    ``sample`` fills a snapshot's gauges from live state (called before each write and
    for each scrape). Without a folder (one worker) a scrape sees this worker alone.
    """

    def __init__(
        self,
        store: MetricsStore,
        folder: Path | None,
        interval: float,
        sample: Callable[[Snapshot], None],
    ) -> None:
        self.store = store
        self.folder = folder
        self.interval = interval
        self.sample = sample
        name = f"worker-{os.getpid()}-{os.urandom(4).hex()}{SUFFIX}"
        self.path = folder / name if folder is not None else None
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        if self.path is not None and self._task is None:
            self.write()  # the worker is visible (its gauges too) from its start
            loop = asyncio.get_running_loop()
            self._task = loop.create_task(self._run(), name="metrics-sharing")

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        if self.path is not None:
            self.write(live=False)  # final counts; no gauges from a stopped worker

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self.interval)
            try:
                self.write()
            except OSError as exc:  # a full disk must not stop the worker
                log.warning("metrics: cannot write %s: %s", self.path, exc)

    def write(self, *, live: bool = True) -> None:
        assert self.path is not None
        snapshot = self.store.snapshot()
        if live:
            self.sample(snapshot)
        write_snapshot(self.path, snapshot)

    def current(self) -> Snapshot:
        """This worker's live counts and gauges."""
        snapshot = self.store.snapshot()
        self.sample(snapshot)
        return snapshot

    def everyone(self) -> list[Snapshot]:
        """Every worker's snapshot: this one live, the others as last written."""
        found = [self.current()]
        if self.folder is None:
            return found
        stale_before = time.time() - STALE_INTERVALS * self.interval - 1.0
        for path in _files(self.folder):
            if path == self.path:
                continue
            snapshot = read_snapshot(path)
            if snapshot is None:
                continue
            with contextlib.suppress(OSError):
                if path.stat().st_mtime < stale_before:
                    snapshot.gauges.clear()
                    snapshot.breakers.clear()
            found.append(snapshot)
        return found


def _files(folder: Path) -> Iterable[Path]:
    try:
        return [p for p in folder.iterdir() if p.name.endswith(SUFFIX)]
    except OSError:
        return []
