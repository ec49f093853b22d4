"""The benchmark's phases, in order, against an upstream and a gateway that are already up."""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path

import procstat
from measure import Endpoints, LoadRun, measure_load
from results import ProcessMemory, Results
from streamclient import StreamClient, StreamSummary


@dataclass(frozen=True)
class Plan:
    connections: list[int]
    duration_s: float
    wrk_threads: int
    stream_requests: int
    soak_requests: int | None
    chat_body: Path
    stream_body: Path


def progress(message: str) -> None:
    print(f"· {message}", file=sys.stderr, flush=True)


class Session:
    def __init__(self, plan: Plan, endpoints: Endpoints, results: Results) -> None:
        self.plan = plan
        self.endpoints = endpoints
        self.res = results

    @property
    def load_connections(self) -> int:
        return self.res.load_connections

    def load(
        self, target: str, conns: int, streaming: bool = False, duration_s: float | None = None
    ) -> LoadRun:
        body = self.plan.stream_body if streaming else self.plan.chat_body
        duration = duration_s or self.plan.duration_s
        progress(
            f"wrk {target:<7} {'stream' if streaming else 'chat'} c={conns} for {duration:g} s"
        )
        return measure_load(
            self.endpoints, target, body, conns, duration, self.plan.wrk_threads, streaming
        )

    def warm_up(self) -> None:
        """Make every worker serve and fill its pools before anything is recorded."""
        for target in ("direct", "gateway"):
            self.load(target, self.load_connections, duration_s=min(self.plan.duration_s, 2.0))

    def throughput(self) -> None:
        for conns in self.plan.connections:
            self.res.direct[conns] = self.load("direct", conns)
            self.res.gateway[conns] = self.load("gateway", conns)

    def streaming(self) -> None:
        progress(f"timing {self.plan.stream_requests} sequential streams per side")
        self.res.ttfb_direct = self.time_streams("direct")
        self.res.ttfb_gateway = self.time_streams("gateway")
        self.res.stream_direct = self.load("direct", self.load_connections, streaming=True)
        self.res.stream_gateway = self.load("gateway", self.load_connections, streaming=True)

    def time_streams(self, target: str) -> StreamSummary:
        body = self.plan.stream_body.read_bytes()
        client = StreamClient(self.endpoints.port(target), self.endpoints.path, body)
        return client.run(self.plan.stream_requests)

    def soak(self) -> None:
        """About N more gateway requests (wrk's threads stop after their share)."""
        requests = self.plan.soak_requests
        if not requests:
            return
        conns = self.load_connections
        rps = max(self.res.gateway[conns].wrk.rps if conns in self.res.gateway else 1000.0, 1.0)
        duration = min(2 * requests / rps + 5, 3600.0)  # threads stop early at N
        progress(f"soak: {requests:,} gateway requests at c={conns} (at most {duration:.0f} s)")
        self.res.soak = measure_load(
            self.endpoints,
            "gateway",
            self.plan.chat_body,
            conns,
            duration,
            self.plan.wrk_threads,
            stop_after=requests,
        )
        self.snapshot_memory(f"after soak ({self.res.soak.wrk.requests:,} req)")

    def snapshot_memory(self, moment: str) -> None:
        root = self.endpoints.gateway_pid
        self.res.moments.append(moment)
        for pid in procstat.process_tree(root):
            rss = procstat.rss_mb(pid)
            if rss is None:
                continue
            process = self.res.memory.get(pid)
            if process is None:
                process = ProcessMemory(pid=pid, role=procstat.role(pid, root))
                self.res.memory[pid] = process
            process.rss_mb[moment] = rss
