"""The usage writer's local write-ahead spool: what a killed process had not written yet.

``UsageWriter`` sends records to the database once a second (a transaction per
batch, summed per minute); a process killed in between (``kill -9``, the OOM
killer) lost up to that second of records. So the records also go to a local
file every ``SPOOL_INTERVAL`` (50 ms): one ``write`` of the records of that
interval, as a line of JSON, and no fsync: they survive the process (the
kernel holds them), not a crash of the machine. The per-call cost stays the
queue append; the spool costs one write per interval and ~1 µs a record to
encode, off the request path.

Files are segments: the writer appends to an active one and seals it when it
takes records for the database (``seal``); once every record of a sealed
segment is in the database (``written``), the segment is removed. Each process
writes its own segments (``<pid>-<random>-<n>.spool``, created under another
name and renamed once locked) and holds an exclusive ``flock`` on each while it
lives. The kernel drops those locks when the process dies, so a start of any
process on the same spool folder finds the dead one's segments unlocked: it
locks them, inserts their records (``replay``) and removes them. A process
killed in the instant between a batch's commit and its segment's removal has
that batch counted twice.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import secrets
import tempfile
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

try:
    import fcntl
except ImportError:  # not POSIX: no spool
    fcntl = None  # type: ignore[assignment]

log = logging.getLogger("gatewise.usage")

#: Seconds between two writes of the spool: a killed process loses at most the records
#: of this long (and of the write under way).
SPOOL_INTERVAL = 0.05
SUFFIX = ".spool"


def available() -> bool:
    """Whether spools work here (they need POSIX file locks)."""
    return fcntl is not None


def spool_folder(setting: str | None, store_url: str, base_dir: Path | None) -> Path | None:
    """Where the spool of the records database at ``store_url`` lives: ``setting``
    (``store.usage_spool``; relative to ``base_dir``), None for ``off``, by default a
    folder in the temporary directory named after the URL (every process of one host
    writing to that database shares it)."""
    if setting == "off":
        return None
    if setting is None:
        digest = hashlib.sha256(store_url.encode()).hexdigest()[:16]
        return Path(tempfile.gettempdir()) / f"gatewise-usage-spool-{digest}"
    folder = Path(setting).expanduser()
    if not folder.is_absolute() and base_dir is not None:
        folder = base_dir / folder
    return folder


@dataclass
class _Segment:
    path: Path
    fd: int
    records: int = 0  # records in it not yet in the database


class UsageSpool:
    """This process's spool segments in ``folder`` (created if missing)."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self._stem = f"{os.getpid()}-{secrets.token_hex(4)}"
        self._serial = 0
        self._sealed: list[_Segment] = []
        self._active: _Segment | None = None
        self.failed = False  # a write failed: the spool is off for this process

    # -- this process's segments ------------------------------------------------------

    def append(self, records: Sequence[tuple[Any, ...]]) -> None:
        """Write ``records`` (usage records, in the order they will be written) to the
        active segment: one line, one write."""
        if self.failed or not records:
            return
        try:
            segment = self._active
            if segment is None:
                segment = self._active = self._open()
            data = orjson.dumps(records, default=tuple) + b"\n"
            written = os.write(segment.fd, data)
            while written < len(data):  # a short write (rare): the rest
                written += os.write(segment.fd, data[written:])
            segment.records += len(records)
        except OSError as exc:
            self.failed = True
            log.error("usage spool %s failed, spooling stops: %s", self.folder, exc)

    def seal(self) -> None:
        """The records appended so far go to the database now: close the active segment
        to appends (later records start a new one)."""
        if self._active is not None and self._active.records:
            self._sealed.append(self._active)
            self._active = None

    def written(self, count: int) -> None:
        """The oldest ``count`` spooled records are in the database (or given up on):
        remove the segments that hold nothing else."""
        while count and self._sealed:
            segment = self._sealed[0]
            taken = min(count, segment.records)
            segment.records -= taken
            count -= taken
            if segment.records:
                return
            self._sealed.pop(0)
            _remove(segment)
        if count and self._active is not None:  # records never sealed (close)
            self._active.records = max(0, self._active.records - count)

    def close(self) -> None:
        """Remove the segments whose records are all written; keep (unlocked) the others,
        for the next start to replay."""
        for segment in [*self._sealed, *([self._active] if self._active else [])]:
            if segment.records:
                os.close(segment.fd)
            else:
                _remove(segment)
        self._sealed, self._active = [], None
        with contextlib.suppress(OSError):
            self.folder.rmdir()  # only when empty

    def _open(self) -> _Segment:
        self.folder.mkdir(parents=True, exist_ok=True)
        name = f"{self._stem}-{self._serial}"
        self._serial += 1
        hidden = self.folder / f".{name}.tmp"
        fd = os.open(hidden, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_APPEND, 0o600)
        assert fcntl is not None
        fcntl.flock(fd, fcntl.LOCK_EX)
        path = self.folder / f"{name}{SUFFIX}"
        os.rename(hidden, path)  # visible to others only once locked
        return _Segment(path, fd)


# -- what dead processes left ------------------------------------------------------------


async def replay(
    folder: Path,
    insert: Callable[[list[tuple[Any, ...]]], Awaitable[None]],
    batch_size: int,
) -> int:
    """Insert the records of every segment in ``folder`` that no live process holds, and
    remove those segments; returns the records replayed. A segment whose insert fails
    stays for the next start."""
    if fcntl is None or not folder.is_dir():
        return 0
    replayed = 0
    for path in sorted(folder.glob("*" + SUFFIX)):
        try:
            fd = os.open(path, os.O_RDONLY)
        except FileNotFoundError:
            continue  # replayed by another process meanwhile
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                continue  # its process is alive
            if os.fstat(fd).st_nlink == 0:
                continue  # another process replayed and removed it before we locked it
            with os.fdopen(os.dup(fd), "rb") as file:
                records = _records(file.read(), path)
            for start in range(0, len(records), batch_size):
                await insert(records[start : start + batch_size])
            path.unlink()
            replayed += len(records)
            log.info("usage spool: replayed %d records a stopped process left", len(records))
        except Exception as exc:  # the database is down: try again next start
            log.error("usage spool %s could not be replayed: %s", path, exc)
        finally:
            os.close(fd)
    return replayed


def _records(data: bytes, path: Path) -> list[tuple[Any, ...]]:
    records: list[tuple[Any, ...]] = []
    for line in data.splitlines():
        try:
            records.extend(tuple(fields) for fields in orjson.loads(line))
        except (orjson.JSONDecodeError, TypeError):
            log.warning("usage spool %s: a damaged line skipped", path)
    return records


def _remove(segment: _Segment) -> None:
    with contextlib.suppress(OSError):
        segment.path.unlink()
    os.close(segment.fd)
