"""Gateway processes for end-to-end tests: ``gatewise serve`` as users run it."""

from __future__ import annotations

import contextlib
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from tests.e2e.test_cli import GATEWISE, free_port, stop, wait_ready


@dataclass
class Served:
    urls: list[str]
    logs: list[Path]  # each process's stdout and stderr


@contextlib.contextmanager
def serve_gateways(config: Path, count: int, timeout: float = 30) -> Iterator[Served]:
    """``count`` gateways on ``config`` (free ports, logs beside it), ready; stopped on exit."""
    processes: list[subprocess.Popen[bytes]] = []
    served = Served([], [])
    try:
        for index in range(count):
            port, log = free_port(), config.parent / f"gateway{index}.log"
            with log.open("wb") as output:
                processes.append(
                    subprocess.Popen(
                        [*GATEWISE, "serve", "--config", str(config), "--port", str(port)],
                        stdout=output,
                        stderr=subprocess.STDOUT,
                    )
                )
            served.urls.append(f"http://127.0.0.1:{port}")
            served.logs.append(log)
        for url, process in zip(served.urls, processes, strict=True):
            wait_ready(url + "/readyz", process, timeout=timeout)
        yield served
    finally:
        for process in processes:
            stop(process)
