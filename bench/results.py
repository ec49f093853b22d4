"""What one benchmark run measured, the targets it is judged against, and its JSON form."""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from measure import LoadRun
from streamclient import StreamSummary

# The targets (bench/README.md, "Reading the report").
TARGET_RPS_C50 = 5000.0  # requests/s through the gateway at c=50 with 2 workers
TARGET_CPU_MS = 0.25  # gateway CPU per non-streaming request
TARGET_STREAM_CPU_MS = 0.5  # gateway CPU per streamed 20-chunk response
TARGET_ADDED_P50_MS = 0.5
TARGET_ADDED_P99_MS = 1.5
TARGET_TTFB_MS = 1.0  # streaming time-to-first-event overhead
TARGET_RSS_MB = 100.0  # per worker
TARGET_STARTUP_S = 1.5


@dataclass
class ProcessMemory:
    pid: int
    role: str
    rss_mb: dict[str, float] = field(default_factory=dict)  # moment ("after warm-up", ...) -> MiB


@dataclass
class Results:
    context: dict[str, str]
    workers: int
    load_connections: int  # the concurrency used for CPU figures and streamed throughput
    startup_s: float = 0.0
    direct: dict[int, LoadRun] = field(default_factory=dict)  # by connections
    gateway: dict[int, LoadRun] = field(default_factory=dict)
    ttfb_direct: StreamSummary | None = None
    ttfb_gateway: StreamSummary | None = None
    stream_direct: LoadRun | None = None
    stream_gateway: LoadRun | None = None
    soak: LoadRun | None = None
    memory: dict[int, ProcessMemory] = field(default_factory=dict)
    moments: list[str] = field(default_factory=list)
    background_busy: float = 0.0  # machine busy fraction before the benchmark started anything
    gateway_log_lines: int = 0  # lines the gateway wrote to stdout/stderr by the end of the run
    checks: list[Check] = field(default_factory=list)


@dataclass(frozen=True)
class Check:
    name: str
    value: float
    limit: float
    higher_is_better: bool = False

    @property
    def passed(self) -> bool:
        return self.value >= self.limit if self.higher_is_better else self.value <= self.limit


def evaluate(results: Results) -> list[Check]:
    """Compare what was measured with the targets; skip what was not measured."""
    checks: list[Check] = []
    load = results.gateway.get(results.load_connections)
    if load is not None and load.wrk.connections == 50:
        name = f"gateway req/s at c=50 ({results.workers} workers)"
        checks.append(Check(name, load.wrk.rps, TARGET_RPS_C50, higher_is_better=True))
    if load is not None:
        checks.append(Check("gateway CPU ms/request", load.gateway_ms_per_request, TARGET_CPU_MS))
    if 1 in results.direct and 1 in results.gateway:
        added = added_latency_ms(results)
        checks.append(Check("added latency p50 ms (c=1)", added[0], TARGET_ADDED_P50_MS))
        checks.append(Check("added latency p99 ms (c=1)", added[1], TARGET_ADDED_P99_MS))
    if results.ttfb_direct and results.ttfb_gateway:
        overhead = (results.ttfb_gateway.ttfb_p50_us - results.ttfb_direct.ttfb_p50_us) / 1000
        checks.append(Check("streaming TTFB overhead p50 ms", overhead, TARGET_TTFB_MS))
    if results.stream_gateway is not None:
        stream_ms = results.stream_gateway.gateway_ms_per_request
        checks.append(Check("gateway CPU ms/streamed response", stream_ms, TARGET_STREAM_CPU_MS))
    worst = max_worker_rss(results)
    if worst is not None:
        checks.append(Check("max worker RSS MiB", worst, TARGET_RSS_MB))
    checks.append(Check("start-up s", results.startup_s, TARGET_STARTUP_S))
    return checks


def added_latency_ms(results: Results) -> tuple[float, float]:
    direct, gateway = results.direct[1].wrk, results.gateway[1].wrk
    return (gateway.p50_us - direct.p50_us) / 1000, (gateway.p99_us - direct.p99_us) / 1000


def max_worker_rss(results: Results) -> float | None:
    values = [
        rss
        for process in results.memory.values()
        if process.role == "worker" or results.workers <= 1
        for rss in process.rss_mb.values()
    ]
    return max(values) if values else None


def _load_json(run: LoadRun | None) -> dict[str, Any] | None:
    if run is None:
        return None
    data = dataclasses.asdict(run)
    data["rps"] = run.wrk.rps
    data["gateway_cpu_ms_per_request"] = run.gateway_ms_per_request
    data["upstream_cpu_ms_per_request"] = run.upstream_ms_per_request
    data["wrk_cpu_ms_per_request"] = run.wrk_ms_per_request
    return data


def write_json(results: Results, path: Path) -> None:
    data = {
        "context": results.context,
        "workers": results.workers,
        "load_connections": results.load_connections,
        "startup_s": results.startup_s,
        "background_busy": results.background_busy,
        "gateway_log_lines": results.gateway_log_lines,
        "direct": {str(c): _load_json(run) for c, run in results.direct.items()},
        "gateway": {str(c): _load_json(run) for c, run in results.gateway.items()},
        "ttfb_direct": results.ttfb_direct and dataclasses.asdict(results.ttfb_direct),
        "ttfb_gateway": results.ttfb_gateway and dataclasses.asdict(results.ttfb_gateway),
        "stream_direct": _load_json(results.stream_direct),
        "stream_gateway": _load_json(results.stream_gateway),
        "soak": _load_json(results.soak),
        "memory": [dataclasses.asdict(process) for process in results.memory.values()],
        "checks": [dict(dataclasses.asdict(c), passed=c.passed) for c in results.checks],
    }
    path.write_text(json.dumps(data, indent=2) + "\n")
