#!/usr/bin/env python3
"""Gatewise load benchmark: the gateway against a direct call to the same fake upstream.

Run from the repository root:  .venv/bin/python bench/run.py  [--quick | --smoke] [options]
See bench/README.md for what each figure means.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import procstat
from auth import AUTH_ENV, create_bench_key
from measure import Endpoints
from procs import BenchError, Service, Services, free_port, run_command, wait_until_serving
from report import print_report
from results import Results, evaluate, write_json
from session import Plan, Session, progress
from wrk import find_wrk, wrk_version

CHAT_PATH = "/v1/chat/completions"
MODEL = "bench-model"
NATIVE_MODULES = ("granian", "uvloop", "httptools", "orjson", "msgspec", "aiohttp")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, default=2, help="gateway workers (default 2)")
    parser.add_argument("--duration", type=float, help="seconds per wrk run (default 10)")
    parser.add_argument("--quick", action="store_true", help="about 2 s per run (CI smoke)")
    parser.add_argument(
        "--smoke", action="store_true", help="tiny run: 1 s per run, c=1 and c=10 only"
    )
    parser.add_argument(
        "--connections", help="comma-separated wrk concurrencies (default 1,50,200)"
    )
    parser.add_argument("--stream-requests", type=int, help="sequential streams timed per side")
    parser.add_argument("--soak", type=int, metavar="N", help="then ~N more gateway requests")
    parser.add_argument("--wrk-threads", type=int, default=1, help="wrk threads (default 1)")
    parser.add_argument("--json", type=Path, metavar="FILE", help="also write results as JSON")
    parser.add_argument(
        "--traffic",
        choices=TRAFFIC,
        default="off",
        help="limits, a budget and usage records on, with counters in memory or Redis "
        "(127.0.0.1:6379); off: no limits and no usage records (default); limits: the "
        "memory limits without usage records; usage: usage records without limits",
    )
    parser.add_argument(
        "--auth",
        choices=("keys", "open"),
        default="keys",
        help="keys: every request carries a gateway key (default); open: no authentication",
    )
    parser.add_argument("--gatewise", help="the gatewise executable (default: next to python)")
    parser.add_argument("--check", action="store_true", help="exit 1 when a target is missed")
    parser.add_argument(
        "--wait-quiet",
        type=float,
        default=0.0,
        metavar="S",
        help="first wait up to S seconds for the machine to be under 10%% busy",
    )
    args = parser.parse_args(argv)
    if (
        args.workers < 1
        or args.wrk_threads < 1
        or (args.duration is not None and args.duration <= 0)
    ):
        parser.error("--workers, --wrk-threads and --duration must be positive")
    if args.smoke:
        args.duration = args.duration or 1.0
        args.connections = args.connections or "1,10"
        args.stream_requests = args.stream_requests or 30
    elif args.quick:
        args.duration = args.duration or 2.0
        args.stream_requests = args.stream_requests or 100
    args.duration = args.duration or 10.0
    args.stream_requests = args.stream_requests or 500
    try:
        args.connections = sorted({int(c) for c in (args.connections or "1,50,200").split(",")})
    except ValueError:
        parser.error("--connections takes comma-separated integers, e.g. 1,50,200")
    if min(args.connections) < 1:
        parser.error("--connections must be positive")
    return args


def find_gatewise(explicit: str | None) -> str:
    candidates = [explicit] if explicit else [str(Path(sys.executable).parent / "gatewise")]
    if not explicit:
        candidates.append(shutil.which("gatewise") or "")
    for candidate in candidates:
        if candidate and os.access(candidate, os.X_OK):
            return candidate
    if explicit:
        raise BenchError(f"{explicit} is not an executable file")
    raise BenchError("gatewise is not installed here; run `pip install -e .` in the repo first")


def request_bodies(tmp: Path) -> tuple[Path, Path]:
    """The same bodies go to the upstream and to the gateway: (non-streaming, streaming)."""
    messages = [
        {"role": "system", "content": "You are a concise assistant."},
        {"role": "user", "content": "Write one sentence about load testing."},
    ]
    chat = {"model": MODEL, "messages": messages, "max_tokens": 64}
    stream_messages = [
        messages[0],
        {"role": "user", "content": "Write one sentence about load testing. [[fake:chunks=20]]"},
    ]
    stream = {**chat, "messages": stream_messages, "stream": True}
    paths = tmp / "chat.json", tmp / "stream.json"
    paths[0].write_text(json.dumps(chat))
    paths[1].write_text(json.dumps(stream))
    return paths


#: ``--traffic`` settings: the first is the baseline, ``limits`` and ``usage`` split
#: ``memory`` in its parts; ``standard`` and ``strict`` are ``off`` with that guardrail
#: profile on every call, ``standard-cold`` without the guardrails' memory of texts (the
#: benchmark repeats one body, so every text is new only then); ``cache-hit`` is ``off``
#: with the exact cache on for the bench's (sampled) body: all but the first call hit.
TRAFFIC = (
    "off",
    "memory",
    "redis",
    "limits",
    "usage",
    "standard",
    "standard-cold",
    "strict",
    "no-metrics",
    "no-observe",
    "cache-hit",
    "cache-miss",
)


def traffic_config(traffic: str) -> str:
    """Limits that never refuse (the load must pass) but are all checked and charged; or a
    guardrail profile for every call."""
    if traffic in ("standard", "strict"):
        return f"guardrails: {{default: {traffic}}}\n"
    if traffic == "standard-cold":
        return "guardrails: {default: standard, memory: 0}\n"
    if traffic == "no-metrics":  # "off" without Prometheus metrics (their cost: compare the two)
        return "observability: {metrics: {enabled: false}}\n"
    if traffic == "no-observe":  # "off" without metrics and request records (issue 15's budget)
        return "observability: {metrics: {enabled: false}, records: {enabled: false}}\n"
    if traffic in ("off", "usage"):
        return ""
    if traffic in ("cache-hit", "cache-miss"):  # the exact cache on: after the first call,
        # every call hits; cache-miss makes each body unique (BENCH_UNIQUE), so none does
        return "cache: {enabled: true, deterministic_only: false}\n"
    state = (
        "state: {backend: redis, redis_url: 'redis://127.0.0.1:6379/0', "
        f"key_prefix: 'gwbench:{os.getpid()}:'}}\n"
        if traffic == "redis"
        else "state: {backend: memory}\n"
    )
    return state + (
        "limits:\n"
        "  - {per: key, requests_per_minute: 100000000, tokens_per_minute: 100000000000}\n"
        "  - {per: tenant, concurrent: 100000}\n"
        "budgets:\n"
        "  - {name: bench, per: app, usd: '100000000', period: month}\n"
    )


def gateway_config(
    tmp: Path, upstream_port: int, port: int, workers: int, auth: str, traffic: str = "off"
) -> Path:
    path = tmp / "gatewise.yaml"
    # The fake upstream's model is not in the price catalog: price it like gpt-4o-mini.
    price = ", price: {input_per_million: '0.15', output_per_million: '0.60'}"
    price = price if traffic in ("memory", "redis", "limits", "usage") else ""
    records = "true" if traffic in ("memory", "redis", "usage") else "false"
    path.write_text(
        traffic_config(traffic) + "version: 1\n"
        f"server: {{host: 127.0.0.1, port: {port}, workers: {workers}}}\n"
        f"auth: {{mode: {auth}}}\n"
        f"store: {{url: 'sqlite+aiosqlite:///{tmp}/gatewise.db', "
        f"usage_records: {records}}}\n"
        "providers:\n"
        "  fake:\n"
        "    type: openai-compatible\n"
        f"    base_url: http://127.0.0.1:{upstream_port}/v1\n"
        "models:\n"
        f"  - name: {MODEL}\n"
        f"    deployments: [{{provider: fake, model: {MODEL}{price}}}]\n"
    )
    return path


def start_services(
    args: argparse.Namespace,
    gatewise: str,
    tmp: Path,
    services: Services,
    chat: bytes,
    upstream_gatewise: str | None = None,
    make_key: Callable[[str], str] = create_bench_key,
) -> tuple[Service, Service, float, Endpoints]:
    """Start the fake upstream, then the gateway; return them, the start-up time, the URLs.

    ``upstream_gatewise`` runs the fake upstream (default: ``gatewise`` itself) and
    ``make_key`` creates the benchmark key in the gateway's records database."""
    upstream_port, gateway_port = free_port(), free_port()
    upstream = services.start(
        "upstream",
        [
            upstream_gatewise or gatewise,
            "mock-upstream",
            "--format",
            "openai",
            "--host",
            "127.0.0.1",
            "--port",
            str(upstream_port),
        ],
    )
    wait_until_serving(upstream, upstream_port, CHAT_PATH, chat)
    config = gateway_config(tmp, upstream_port, gateway_port, args.workers, args.auth, args.traffic)
    if args.auth == "keys":
        key = make_key(f"sqlite+aiosqlite:///{tmp}/gatewise.db")
        os.environ[AUTH_ENV] = f"Bearer {key}"  # wrk and the clients below send it
    gateway = services.start(
        "gateway",
        [
            gatewise,
            "serve",
            "--config",
            str(config),
            "--host",
            "127.0.0.1",
            "--port",
            str(gateway_port),
            "--workers",
            str(args.workers),
        ],
    )
    startup_s = wait_until_serving(gateway, gateway_port, CHAT_PATH, chat)
    endpoints = Endpoints(
        gateway_pid=gateway.pid,
        upstream_pid=upstream.pid,
        direct_port=upstream_port,
        gateway_port=gateway_port,
        path=CHAT_PATH,
    )
    return upstream, gateway, startup_s, endpoints


def interpreter_version(pid: int) -> str:
    try:
        exe = os.readlink(f"/proc/{pid}/exe")
        out = subprocess.run([exe, "-V"], capture_output=True, text=True, timeout=5, check=False)
        return out.stdout.strip() or out.stderr.strip()
    except OSError:
        return "unknown"


def describe(args: argparse.Namespace, upstream: Service, gateway: Service) -> dict[str, str]:
    tree = procstat.process_tree(gateway.pid)
    workers = [pid for pid in tree if procstat.role(pid, gateway.pid) == "worker"]
    native = procstat.native_modules(workers[0] if workers else gateway.pid, NATIVE_MODULES)
    cores = os.cpu_count() or 0
    usable = len(os.sched_getaffinity(0))
    return {
        "machine": f"{cores} cores ({usable} usable), {procstat.cpu_model()}, "
        f"Linux {platform.release()}",
        "python": f"{interpreter_version(gateway.pid)} (gateway), "
        f"{platform.python_version()} (bench)",
        "gateway": f"gatewise serve --workers {args.workers}: master + {len(workers)} worker "
        f"process(es); native modules in a worker: {', '.join(native) or 'none found'}; "
        + ("every request carries a gateway key" if args.auth == "keys" else "auth.mode open"),
        "says": gateway.first_log_line()[:110],
        "upstream": f"gatewise mock-upstream --format openai "
        f"({len(procstat.process_tree(upstream.pid))} process(es))",
        "load": f"{wrk_version(find_wrk())} -t{args.wrk_threads}, {args.duration:g} s per run, "
        f"c={','.join(map(str, args.connections))}; wrk, upstream and gateway share the cores",
    }


def background_load(seconds: float = 0.5) -> float:
    """How busy the machine is before we start anything (other jobs skew every figure)."""
    busy_before, total_before = procstat.machine_busy_ticks()
    time.sleep(seconds)
    busy_after, total_after = procstat.machine_busy_ticks()
    total = total_after - total_before
    return (busy_after - busy_before) / total if total else 0.0


def wait_for_quiet(max_wait_s: float, threshold: float = 0.1) -> float:
    """Measure background load; while it is above ``threshold``, wait (up to ``max_wait_s``)."""
    deadline = time.monotonic() + max_wait_s
    busy = background_load()
    while busy > threshold and time.monotonic() < deadline:
        progress(f"machine {busy:.0%} busy with other processes; waiting for it to quiet down")
        time.sleep(5)
        busy = background_load(1.0)
    return busy


def run_benchmark(
    args: argparse.Namespace, gatewise: str, tmp: Path, services: Services
) -> Results:
    idle_busy = wait_for_quiet(args.wait_quiet)
    chat_file, stream_file = request_bodies(tmp)
    upstream, gateway, startup_s, endpoints = start_services(
        args, gatewise, tmp, services, chat_file.read_bytes()
    )
    progress(f"gateway answered {startup_s:.2f} s after spawn; warming up")
    plan = Plan(
        connections=args.connections,
        duration_s=args.duration,
        wrk_threads=args.wrk_threads,
        stream_requests=args.stream_requests,
        soak_requests=args.soak,
        chat_body=chat_file,
        stream_body=stream_file,
    )
    load_c = 50 if 50 in args.connections else max(args.connections)
    res = Results(context={}, workers=args.workers, load_connections=load_c, startup_s=startup_s)
    session = Session(plan, endpoints, res)
    session.warm_up()
    res.context = describe(args, upstream, gateway)
    res.background_busy = idle_busy
    res.context["before"] = f"machine {idle_busy:.0%} busy before the benchmark started"
    session.snapshot_memory("after warm-up")
    session.throughput()
    session.streaming()
    session.snapshot_memory("after run")
    res.gateway_log_lines = gateway.log_lines()
    session.soak()
    res.checks = evaluate(res)
    return res


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    return run_command("bench", lambda: bench(args))


def bench(args: argparse.Namespace) -> int:
    find_wrk()
    gatewise = find_gatewise(args.gatewise)
    with (
        tempfile.TemporaryDirectory(prefix="gatewise-bench-") as tmp_name,
        Services(Path(tmp_name)) as services,
    ):
        try:
            res = run_benchmark(args, gatewise, Path(tmp_name), services)
        except BenchError as error:
            raise BenchError(f"{error}\n{services.diagnose()}") from error
    print_report(res)
    if args.json:
        write_json(res, args.json)
    return 1 if args.check and not all(check.passed for check in res.checks) else 0


if __name__ == "__main__":
    sys.exit(main())
