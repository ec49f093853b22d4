#!/usr/bin/env python3
"""Compare two traffic settings or two versions of the code by alternating short runs.

One benchmark run is noisy on a shared machine (the same setting measured 0.10 to
0.14 ms per request within minutes on the development VM), so a difference between
two separate runs says little. This starts a fresh gateway for A, then for B, and so
on, measures the gateway's CPU per request under wrk at the given concurrency in each,
and reports every pair and the median of the pairs' differences.

Each side is a traffic setting (``--a``/``--b``) run by a gatewise executable: the one
next to this Python by default, another installation (``--gatewise-a``/``--gatewise-b``),
or a commit of this repository built once into bench/.cache (``--ref-a``/``--ref-b``).
The fake upstream is the same program for both sides, so only the gateway differs.

Run from the repository root:
    .venv/bin/python bench/compare.py --a off --b memory --pairs 5 --duration 6
    .venv/bin/python bench/compare.py --ref-a main~3 --ref-b HEAD --a memory --b memory
"""

from __future__ import annotations

import argparse
import contextlib
import os
import statistics
import sys
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import installs
from installs import Installation
from measure import measure_load
from procs import BenchError, Services, run_command
from run import TRAFFIC, find_gatewise, request_bodies, start_services
from wrk import find_wrk


@dataclass(frozen=True)
class Side:
    name: str  # "A" or "B"
    traffic: str
    install: Installation
    label: str  # in the table and the medians: the traffic setting, or the side's name

    def describe(self) -> str:
        return f"{self.name}: traffic {self.traffic}, gatewise {self.install.describe()}"


@dataclass
class Sample:
    side: str
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
    parser.add_argument(
        "--gatewise", help="the gatewise executable of both sides (default: next to Python)"
    )
    for side in ("a", "b"):
        code = parser.add_mutually_exclusive_group()
        code.add_argument(
            f"--gatewise-{side}",
            metavar="PATH",
            help=f"the gatewise executable of side {side.upper()} (default --gatewise)",
        )
        code.add_argument(
            f"--ref-{side}",
            metavar="GITREF",
            help=f"side {side.upper()} runs this commit of the repository, installed once "
            "into bench/.cache/<commit>",
        )
    args = parser.parse_args(argv)
    if args.a == args.b and _code(args, "a") == _code(args, "b"):
        parser.error(
            f"both sides would run traffic {args.a} with the same gatewise: give --a and --b "
            "different settings, or the sides different code (--gatewise-a/-b, --ref-a/-b)"
        )
    return args


def _code(args: argparse.Namespace, side: str) -> str:
    """What a side's gateway runs, as the command line says it (refs are resolved later)."""
    ref = getattr(args, f"ref_{side}")
    if ref:
        return f"ref {ref}"
    default = args.gatewise or str(Path(sys.executable).parent / "gatewise")
    return os.path.abspath(getattr(args, f"gatewise_{side}") or default)


def sides(args: argparse.Namespace) -> tuple[Side, Side]:
    """Each side's traffic setting and installation; builds the ``--ref-*`` commits first."""
    refs = {side: getattr(args, f"ref_{side}") for side in "ab"}
    shas = {side: installs.resolve(ref) for side, ref in refs.items() if ref}  # fail fast
    if len(shas) == 2 and shas["a"] == shas["b"] and args.a == args.b:
        raise BenchError(
            f"--ref-a {refs['a']} and --ref-b {refs['b']} are the same commit "
            f"{shas['a'][:10]} and both sides run traffic {args.a}: nothing to compare"
        )
    found = []
    for side in "ab":
        if side in shas:
            built = installs.build(refs[side], shas[side])
            found.append(installs.installation_of(built.gatewise, built))
        else:
            explicit = getattr(args, f"gatewise_{side}") or args.gatewise
            found.append(installs.installation_of(find_gatewise(explicit)))
    same_code = found[0].gatewise == found[1].gatewise
    if not same_code and os.environ.get("PYTHONPATH"):
        raise BenchError(
            "PYTHONPATH is set: both sides' gateways might import the same gatewise from it; "
            "unset it to compare two installations"
        )
    names = (args.a, args.b) if same_code else ("A", "B")
    return (
        Side("A", args.a, found[0], names[0]),
        Side("B", args.b, found[1], names[1]),
    )


def upstream_gatewise(args: argparse.Namespace, side_a: Side) -> str:
    """The fake upstream of both sides: ``--gatewise`` or the one next to this Python,
    else side A's."""
    try:
        return find_gatewise(args.gatewise)
    except BenchError:
        return side_a.install.gatewise


def sample(args: argparse.Namespace, side: Side, upstream: str) -> Sample:
    """One fresh gateway for ``side``: a short warm-up, then one measured wrk run."""
    settings = argparse.Namespace(**{**vars(args), "traffic": side.traffic})
    with (
        tempfile.TemporaryDirectory(prefix="gatewise-compare-") as name,
        Services(Path(name)) as services,
    ):
        tmp = Path(name)
        chat, _ = request_bodies(tmp)
        _, _, _, endpoints = start_services(
            settings,
            side.install.gatewise,
            tmp,
            services,
            chat.read_bytes(),
            upstream_gatewise=upstream,
            make_key=side.install.create_bench_key,
        )
        c, threads = args.connections, args.wrk_threads
        unique = side.traffic == "cache-miss"  # every body its own (bench/lua/post.lua)
        with _environment("BENCH_UNIQUE", "1" if unique else None):
            measure_load(endpoints, "gateway", chat, c, min(2.0, args.duration), threads)
            run = measure_load(endpoints, "gateway", chat, c, args.duration, threads)
    if run.wrk.errors:
        raise BenchError(f"{run.wrk.errors} failed requests on side {side.describe()}")
    return Sample(
        side.name,
        run.wrk.rps,
        run.gateway_ms_per_request,
        run.upstream_ms_per_request,
        run.wrk.p50_us / 1000,
    )


@contextlib.contextmanager
def _environment(name: str, value: str | None) -> Iterator[None]:
    """``name`` set to ``value`` (None: unset) for wrk, restored after."""
    before = os.environ.pop(name, None)
    if value is not None:
        os.environ[name] = value
    try:
        yield
    finally:
        os.environ.pop(name, None)
        if before is not None:
            os.environ[name] = before


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    return run_command("compare", lambda: compare(args))


def compare(args: argparse.Namespace) -> int:
    find_wrk()
    side_a, side_b = sides(args)
    upstream = upstream_gatewise(args, side_a)
    print(f"{side_a.describe()}\n{side_b.describe()}\nfake upstream: {upstream} mock-upstream")
    print(
        f"pair  {side_a.label:>8} ms  {side_b.label:>8} ms  growth ms  req/s A / B   "
        "upstream ms A / B   p50 ms A / B"
    )
    samples_a, samples_b, growths, latencies = [], [], [], []
    for pair in range(1, args.pairs + 1):
        a, b = sample(args, side_a, upstream), sample(args, side_b, upstream)
        samples_a.append(a.gateway_ms)
        samples_b.append(b.gateway_ms)
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
        f"median growth of gateway CPU per request, {side_b.label} over {side_a.label}: "
        f"{statistics.median(growths):+.3f} ms ({len(growths)} pairs from "
        f"{min(growths):+.3f} to {max(growths):+.3f}, c={args.connections}, "
        f"{args.workers} workers)\n"
        f"median gateway CPU per request: A {statistics.median(samples_a):.3f} ms, "
        f"B {statistics.median(samples_b):.3f} ms\n"
        f"median growth of the gateway's p50 latency: {statistics.median(latencies):+.3f} ms"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
