"""Drive load with ``wrk`` and the Lua script in ``bench/lua/post.lua``."""

from __future__ import annotations

import json
import os
import resource
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from procs import BenchError

LUA_SCRIPT = Path(__file__).resolve().parent / "lua" / "post.lua"
INSTALL_HINT = (
    "wrk is not installed. Install it with:\n"
    "    sudo apt-get install -y wrk        (Debian/Ubuntu)\n"
    "    brew install wrk                   (macOS; the CPU/RSS figures need Linux /proc)\n"
    "or build it from https://github.com/wg/wrk and put it on PATH."
)


@dataclass
class WrkResult:
    connections: int
    threads: int
    requests: int
    duration_s: float
    errors: int
    p50_us: int
    p90_us: int
    p99_us: int
    p999_us: int
    mean_us: float
    max_us: int
    wrk_cpu_s: float  # the load generator's own CPU time (user + system)

    @property
    def rps(self) -> float:
        return self.requests / self.duration_s if self.duration_s else 0.0


def find_wrk() -> str:
    path = shutil.which("wrk")
    if path is None:
        raise BenchError(INSTALL_HINT)
    return path


def wrk_version(path: str) -> str:
    result = subprocess.run([path, "-v"], capture_output=True, text=True, timeout=5, check=False)
    first = (result.stdout or result.stderr).splitlines()
    return first[0].split("Copyright")[0].strip() if first else "wrk"


def run_wrk(
    url: str,
    body_file: Path,
    connections: int,
    duration_s: float,
    threads: int = 1,
    stop_after: int | None = None,
) -> WrkResult:
    """Run wrk against ``url`` POSTing ``body_file``; raise BenchError if it fails."""
    threads = max(1, min(threads, connections))
    argv = [
        find_wrk(),
        f"-t{threads}",
        f"-c{connections}",
        f"-d{max(1, round(duration_s))}s",
        "--timeout",
        "10s",
        "-s",
        str(LUA_SCRIPT),
        url,
    ]
    env = dict(os.environ, BENCH_BODY_FILE=str(body_file))
    if stop_after is not None:
        env["BENCH_STOP_AFTER"] = str(max(1, stop_after // threads))
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    try:
        proc = subprocess.run(
            argv, capture_output=True, text=True, env=env, timeout=duration_s + 60, check=False
        )
    except subprocess.TimeoutExpired as error:
        raise BenchError(f"wrk did not finish in time: {' '.join(argv)}") from error
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    wrk_cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return _parse(proc, argv, connections, threads, wrk_cpu)


def _parse(
    proc: subprocess.CompletedProcess[str],
    argv: list[str],
    connections: int,
    threads: int,
    wrk_cpu: float,
) -> WrkResult:
    line = next((ln for ln in proc.stdout.splitlines() if ln.startswith("BENCH_RESULT ")), None)
    if proc.returncode != 0 or line is None:
        raise BenchError(
            f"wrk failed (exit {proc.returncode}): {' '.join(argv)}\n{proc.stdout}\n{proc.stderr}"
        )
    data = json.loads(line.removeprefix("BENCH_RESULT "))
    error_keys = ("connect_errors", "read_errors", "write_errors", "status_errors", "timeouts")
    return WrkResult(
        connections=connections,
        threads=threads,
        requests=data["requests"],
        duration_s=data["duration_us"] / 1e6,
        errors=sum(data[key] for key in error_keys),
        p50_us=data["p50_us"],
        p90_us=data["p90_us"],
        p99_us=data["p99_us"],
        p999_us=data["p999_us"],
        mean_us=data["mean_us"],
        max_us=data["max_us"],
        wrk_cpu_s=wrk_cpu,
    )
