#!/usr/bin/env python3
"""Compare two traffic settings by alternating short runs: the median growth of CPU per request.

One benchmark run is noisy on a shared machine (the same setting measured 0.10 to
0.14 ms per request within minutes on the development VM), so a difference between
two separate runs says little. This starts a fresh gateway for A, then for B, and so
on, measures the gateway's CPU per request under wrk at the given concurrency in each,
and reports every pair and the median of the pairs' differences.

Run from the repository root:
    .venv/bin/python bench/compare.py --a off --b memory --pairs 5 --duration 6
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from measure import measure_load
from procs import BenchError, Services, run_command
from run import TRAFFIC, find_gatewise, request_bodies, start_services
from wrk import find_wrk


@dataclass
class Sample:
    traffic: str
    requests_per_s: float
    gateway_ms: float  # gateway CPU per request (master and workers)
    upstream_ms: float  # the fake upstream's CPU per request, for context
    p50_ms: float  # the gateway's median latency


def _positive(kind: Callable[[str], float]) -> Callable[[str], float]:
    """An argparse type: ``kind`` of the text, refused unless above zero."""

    def parse(text: str) -> float:
        value = kind(text)
        if not value > 0:
            raise argparse.ArgumentTypeError(f"must be above 0, not {text}")
        return value

    return parse


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--a", choices=TRAFFIC, default="off", help="baseline (default off)")
    parser.add_argument("--b", choices=TRAFFIC, default="memory", help="compared (default memory)")
    parser.add_argument("--pairs", type=_positive(int), default=5, help="A/B pairs (default 5)")
    parser.add_argument(
        "--duration", type=_positive(float), default=6.0, help="seconds per run (default 6)"
    )
    parser.add_argument("--connections", type=int, default=50, help="wrk connections (default 50)")
    parser.add_argument("--workers", type=int, default=2, help="gateway workers (default 2)")
    parser.add_argument("--auth", choices=("keys", "open"), default="keys")
    parser.add_argument("--wrk-threads", type=int, default=1)
    parser.add_argument("--gatewise", help="the gatewise executable (default: next to Python)")
    return parser.parse_args(argv)


def sample(args: argparse.Namespace, traffic: str, gatewise: str) -> Sample:
    """One fresh gateway with ``traffic``: a short warm-up, then one measured wrk run."""
    side = argparse.Namespace(**{**vars(args), "traffic": traffic})
    with (
        tempfile.TemporaryDirectory(prefix="gatewise-compare-") as name,
        Services(Path(name)) as services,
    ):
        tmp = Path(name)
        chat, _ = request_bodies(tmp)
        _, _, _, endpoints = start_services(side, gatewise, tmp, services, chat.read_bytes())
        c, threads = args.connections, args.wrk_threads
        measure_load(endpoints, "gateway", chat, c, min(2.0, args.duration), threads)
        run = measure_load(endpoints, "gateway", chat, c, args.duration, threads)
    if run.wrk.errors:
        raise BenchError(f"{run.wrk.errors} failed requests with traffic {traffic}")
    return Sample(
        traffic,
        run.wrk.rps,
        run.gateway_ms_per_request,
        run.upstream_ms_per_request,
        run.wrk.p50_us / 1000,
    )


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    return run_command("compare", lambda: compare(args))


def compare(args: argparse.Namespace) -> int:
    find_wrk()
    gatewise = find_gatewise(args.gatewise)
    print(
        f"pair  {args.a:>8} ms  {args.b:>8} ms  growth ms  req/s A / B   upstream ms A / B"
        "   p50 ms A / B"
    )
    growths, latencies = [], []
    for pair in range(1, args.pairs + 1):
        a, b = sample(args, args.a, gatewise), sample(args, args.b, gatewise)
        growths.append(b.gateway_ms - a.gateway_ms)
        latencies.append(b.p50_ms - a.p50_ms)
        print(
            f"{pair:>4}  {a.gateway_ms:11.3f}  {b.gateway_ms:11.3f}  {growths[-1]:+9.3f}  "
            f"{a.requests_per_s:6,.0f} / {b.requests_per_s:6,.0f}  "
            f"{a.upstream_ms:.3f} / {b.upstream_ms:.3f}  "
            f"{a.p50_ms:.3f} / {b.p50_ms:.3f}",
            flush=True,
        )
    print(
        f"median growth of gateway CPU per request, {args.b} over {args.a}: "
        f"{statistics.median(growths):+.3f} ms ({len(growths)} pairs, c={args.connections}, "
        f"{args.workers} workers)\n"
        f"median growth of the gateway's p50 latency: {statistics.median(latencies):+.3f} ms"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
