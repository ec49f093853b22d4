"""Spill files: request records the database could not take yet, kept on local disk.

The records writer spills when its queue is full or the database is unreachable
(``observability.records.overflow: spill``), and replays the files once inserts
succeed again, or at the next start. A file is lines of JSON, each a list of
prepared rows (``observe.records.prepare``), written with one ``write`` per
spill and no fsync: they survive the process, not a crash of the machine.

Each process appends to a file of its own (``<pid>-<random>-<n>.spill``,
created under another name and renamed once locked) and holds an exclusive
``flock`` on it while it writes there; a file nobody holds is ready for replay,
by any process writing to the same database (the kernel drops the locks of a
dead process). A replay that fails part-way writes the rows it did not insert
to a new file and removes the old one, so no row is inserted twice by it.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import secrets
import tempfile
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any

import orjson

try:
    import fcntl
except ImportError:  # not POSIX: no spill files
    fcntl = None  # type: ignore[assignment]

log = logging.getLogger("gatewise.records")

SUFFIX = ".spill"


def available() -> bool:
    return fcntl is not None


def spill_folder(setting: str | None, store_url: str, base_dir: Path | None) -> Path:
    """The folder of ``observability.records.spool`` (relative to ``base_dir``), by default
    one in the temporary directory named after the store URL (every process of one host
    writing to that database shares it)."""
    if setting is None:
        digest = hashlib.sha256(store_url.encode()).hexdigest()[:16]
        return Path(tempfile.gettempdir()) / f"gatewise-records-spill-{digest}"
    folder = Path(setting).expanduser()
    if not folder.is_absolute() and base_dir is not None:
        folder = base_dir / folder
    return folder


class SpillFiles:
    """This process's spill file in ``folder``, and the replay of every file nobody holds."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self._stem = f"{os.getpid()}-{secrets.token_hex(4)}"
        self._serial = 0
        self._fd: int | None = None
        #: Rows in files waiting for replay (this process's, as far as it knows).
        self.pending = 0

    def append(self, rows: Sequence[Sequence[Any]]) -> bool:
        """Write ``rows`` as one line of this process's file; False when the disk refused."""
        if not rows:
            return True
        data = orjson.dumps(rows) + b"\n"
        try:
            if self._fd is None:
                self._fd = self._open()
            written = os.write(self._fd, data)
            while written < len(data):
                written += os.write(self._fd, data[written:])
        except OSError as exc:
            log.error("request records: cannot spill to %s: %s", self.folder, exc)
            return False
        self.pending += len(rows)
        return True

    def seal(self) -> None:
        """Close this process's file: it is ready for replay (later rows start a new one)."""
        fd, self._fd = self._fd, None
        if fd is not None:
            os.close(fd)

    def waiting(self) -> bool:
        """Whether any spill file is in the folder."""
        with contextlib.suppress(OSError):
            return any(self.folder.glob("*" + SUFFIX))
        return False

    async def replay(
        self, insert: Callable[[list[tuple[Any, ...]]], Awaitable[None]], batch_size: int
    ) -> int:
        """Insert the rows of every file nobody holds (this process's sealed first), then
        remove them; returns the rows inserted. Raises the insert's error once the rest of
        the failing file is safe in a new file."""
        self.seal()
        if fcntl is None or not self.folder.is_dir():
            return 0
        replayed = 0
        for path in sorted(self.folder.glob("*" + SUFFIX)):
            try:
                fd = os.open(path, os.O_RDONLY)
            except FileNotFoundError:
                continue
            try:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except BlockingIOError:
                    continue  # a live process writes there
                if os.fstat(fd).st_nlink == 0:
                    continue  # replayed by another process meanwhile
                with os.fdopen(os.dup(fd), "rb") as file:
                    rows = _rows(file.read(), path)
                done = 0
                try:
                    for start in range(0, len(rows), batch_size):
                        await insert(rows[start : start + batch_size])
                        done = start + min(batch_size, len(rows) - start)
                except Exception:
                    if done:
                        self.append(rows[done:])  # the rest, in a new file
                        self.seal()
                        path.unlink()
                    raise
                path.unlink()
                replayed += len(rows)
                log.info("request records: replayed %d spilled records", len(rows))
            finally:
                os.close(fd)
        self.pending = 0
        with contextlib.suppress(OSError):
            self.folder.rmdir()  # only when empty
        return replayed

    def close(self) -> None:
        self.seal()
        with contextlib.suppress(OSError):
            self.folder.rmdir()

    def _open(self) -> int:
        assert fcntl is not None
        self.folder.mkdir(parents=True, exist_ok=True)
        name = f"{self._stem}-{self._serial}"
        self._serial += 1
        hidden = self.folder / f".{name}.tmp"
        fd = os.open(hidden, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_APPEND, 0o600)
        fcntl.flock(fd, fcntl.LOCK_EX)
        os.rename(hidden, self.folder / f"{name}{SUFFIX}")  # visible only once locked
        return fd


def _rows(data: bytes, path: Path) -> list[tuple[Any, ...]]:
    rows: list[tuple[Any, ...]] = []
    for line in data.splitlines():
        try:
            rows.extend(tuple(row) for row in orjson.loads(line))
        except (orjson.JSONDecodeError, TypeError):
            log.warning("request records: a damaged line of %s skipped", path)
    return rows
