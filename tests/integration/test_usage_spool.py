"""The usage writer's spool: records reach a local file within 50 ms of the call, a start
replays what a killed process left (never what a live one holds), and a clean stop or a
written batch leaves nothing behind."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from gatewise.store.usage import UsageRecord
from gatewise.store.usage_spool import SPOOL_INTERVAL, UsageSpool, replay, spool_folder
from gatewise.store.usage_writer import UsageWriter

T0 = 1_800_000_000.0


def record(n: int) -> UsageRecord:
    return UsageRecord(f"req-{n}", T0 + n, "m", "chat", 200, tenant_id="t", cost_micros=None)


class Sink:
    def __init__(self) -> None:
        self.records: list[UsageRecord] = []

    async def insert_many(self, records: Sequence[UsageRecord]) -> None:
        self.records.extend(records)


def spooled(folder: Path) -> list[Path]:
    return sorted(folder.glob("*.spool")) if folder.exists() else []


async def test_records_reach_the_spool_within_its_interval_and_leave_it_once_written(
    tmp_path: Path,
) -> None:
    sink = Sink()
    writer = UsageWriter(sink, flush_interval=0.3, spool=tmp_path / "spool")
    writer.start()
    for n in range(5):
        assert writer.submit(record(n))
    await asyncio.sleep(SPOOL_INTERVAL * 2)
    [segment] = spooled(tmp_path / "spool")
    assert segment.read_bytes().count(b"req-") == 5 and sink.records == []
    await asyncio.sleep(0.4)  # the writer's interval: in the database, off the spool
    assert sink.records == [record(n) for n in range(5)]
    assert spooled(tmp_path / "spool") == []
    writer.submit(record(5))
    await writer.close()
    assert len(sink.records) == 6 and not (tmp_path / "spool").exists()


async def test_a_start_replays_a_dead_process_segments_and_leaves_a_live_ones(
    tmp_path: Path,
) -> None:
    folder = tmp_path / "spool"
    alive = UsageSpool(folder)  # this process holds its lock: as a live worker does
    alive.append([record(0)])
    script = (
        "import os, signal, sys\n"
        "from pathlib import Path\n"
        "from gatewise.store.usage_spool import UsageSpool\n"
        "from tests.integration.test_usage_spool import record\n"
        "spool = UsageSpool(Path(sys.argv[1]))\n"
        "spool.append([record(1), record(2)])\n"
        "spool.append([record(3)])\n"
        "os.kill(os.getpid(), signal.SIGKILL)\n"
    )
    killed = subprocess.run([sys.executable, "-c", script, str(folder)], cwd=Path.cwd())
    assert killed.returncode == -signal.SIGKILL
    assert len(spooled(folder)) == 2
    with open(spooled(folder)[0], "ab") as damaged:  # a torn last line is skipped
        damaged.write(b'[["req-x", 1.0')
    inserted: list[tuple[Any, ...]] = []

    async def insert(rows: list[tuple[Any, ...]]) -> None:
        inserted.extend(rows)

    assert await replay(folder, insert, batch_size=2) == 3
    assert [UsageRecord(*row) for row in inserted] == [record(1), record(2), record(3)]
    assert await replay(folder, insert, batch_size=2) == 0  # the live one's stays
    alive.written(1)
    alive.seal()
    alive.close()
    assert not folder.exists()


async def test_a_writer_replays_the_spool_before_anything_else(tmp_path: Path) -> None:
    folder = tmp_path / "spool"
    left = UsageSpool(folder)
    left.append([record(0), record(1)])
    os.close(left._active.fd)  # type: ignore[union-attr]  # as if its process died
    sink = Sink()
    writer = UsageWriter(sink, spool=folder)
    writer.start()
    deadline = time.monotonic() + 5
    while len(sink.records) < 2:
        assert time.monotonic() < deadline
        await asyncio.sleep(0.01)
    assert sink.records == [record(0), record(1)] and writer.written == 2
    await writer.close()
    assert spooled(folder) == []


def test_where_the_spool_lives(tmp_path: Path) -> None:
    url = "postgresql+asyncpg://gw:secret@db:5432/gw"
    default = spool_folder(None, url, tmp_path)
    assert default is not None and default.name.startswith("gatewise-usage-spool-")
    assert "secret" not in str(default)
    assert spool_folder(None, url, None) == default  # the same for every process
    assert spool_folder("spool", url, tmp_path) == tmp_path / "spool"
    assert spool_folder("off", url, tmp_path) is None
