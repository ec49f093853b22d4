"""One load run: wrk plus the CPU used meanwhile by the gateway, the upstream and the machine."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import procstat
from wrk import WrkResult, run_wrk


@dataclass
class LoadRun:
    target: str  # "direct" or "gateway"
    streaming: bool
    wrk: WrkResult
    gateway_cpu_s: float  # user + system
    gateway_system_s: float  # of which in the kernel
    upstream_cpu_s: float
    machine_busy: float  # fraction of all cores busy during the run (0..1)
    foreign_cpu_s: float  # CPU used meanwhile by everything else: other jobs share the cores

    def per_request_ms(self, cpu_s: float) -> float:
        return cpu_s * 1000 / self.wrk.requests if self.wrk.requests else 0.0

    @property
    def gateway_ms_per_request(self) -> float:
        return self.per_request_ms(self.gateway_cpu_s)

    @property
    def upstream_ms_per_request(self) -> float:
        return self.per_request_ms(self.upstream_cpu_s)

    @property
    def wrk_ms_per_request(self) -> float:
        return self.per_request_ms(self.wrk.wrk_cpu_s)


@dataclass(frozen=True)
class Endpoints:
    gateway_pid: int
    upstream_pid: int
    direct_port: int
    gateway_port: int
    path: str

    def port(self, target: str) -> int:
        return self.gateway_port if target == "gateway" else self.direct_port

    def url(self, target: str) -> str:
        return f"http://127.0.0.1:{self.port(target)}{self.path}"


def measure_load(
    endpoints: Endpoints,
    target: str,
    body_file: Path,
    connections: int,
    duration_s: float,
    threads: int,
    streaming: bool = False,
    stop_after: int | None = None,
) -> LoadRun:
    url = endpoints.url(target)
    gateway_before = procstat.tree_cpu_seconds(endpoints.gateway_pid)
    upstream_before = sum(procstat.tree_cpu_seconds(endpoints.upstream_pid))
    busy_before, total_before = procstat.machine_busy_ticks()
    result = run_wrk(url, body_file, connections, duration_s, threads, stop_after)
    busy_after, total_after = procstat.machine_busy_ticks()
    gateway_after = procstat.tree_cpu_seconds(endpoints.gateway_pid)
    total = total_after - total_before
    gateway_user = gateway_after[0] - gateway_before[0]
    gateway_system = gateway_after[1] - gateway_before[1]
    machine_cpu_s = (busy_after - busy_before) / procstat.CLOCK_TICKS
    upstream_cpu = sum(procstat.tree_cpu_seconds(endpoints.upstream_pid)) - upstream_before
    ours = gateway_user + gateway_system + upstream_cpu + result.wrk_cpu_s
    return LoadRun(
        target=target,
        streaming=streaming,
        wrk=result,
        gateway_cpu_s=gateway_user + gateway_system,
        gateway_system_s=gateway_system,
        upstream_cpu_s=upstream_cpu,
        machine_busy=(busy_after - busy_before) / total if total else 0.0,
        foreign_cpu_s=max(0.0, machine_cpu_s - ours),
    )
