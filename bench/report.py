"""Print the benchmark's results as one plain-text report."""

from __future__ import annotations

from collections.abc import Iterable

import results as r
from measure import LoadRun
from results import Results


def mark(value: float, limit: float, higher_is_better: bool = False) -> str:
    return "PASS" if r.Check("", value, limit, higher_is_better).passed else "MISS"


def ms(us: float) -> str:
    return f"{us / 1000:.3f}"


def table(header: Iterable[str], rows: Iterable[Iterable[str]], indent: str = "  ") -> str:
    """Right-align every column except the first."""
    all_rows = [list(header), *(list(row) for row in rows)]
    widths = [max(len(row[i]) for row in all_rows) for i in range(len(all_rows[0]))]
    lines = []
    for row in all_rows:
        cells = [row[0].ljust(widths[0])]
        cells += [cell.rjust(width) for cell, width in zip(row[1:], widths[1:], strict=True)]
        lines.append(indent + "   ".join(cells).rstrip())
    return "\n".join(lines)


def print_report(res: Results) -> None:
    sections = [
        _context(res),
        _throughput(res),
        _added_latency(res),
        _streaming(res),
        _cpu(res),
        _memory(res),
        _startup(res),
        _summary(res),
    ]
    print("\n\n".join(section for section in sections if section))


def _context(res: Results) -> str:
    lines = ["Gatewise benchmark — gateway vs direct upstream, same run"]
    lines += [f"  {key:<9} {value}" for key, value in res.context.items()]
    return "\n".join(lines)


def _throughput(res: Results) -> str:
    header = ["conc", "direct req/s", "gateway req/s", "gw/direct", "gw p50 ms", "gw p99 ms"]
    header += ["gw CPU ms/req", "other procs", "errors", "target"]
    rows = []
    for conns in sorted(res.gateway):
        direct, gateway = res.direct[conns], res.gateway[conns]
        target = ""
        if conns == 50:
            target = f">= {r.TARGET_RPS_C50:,.0f} (2 workers) "
            target += mark(gateway.wrk.rps, r.TARGET_RPS_C50, higher_is_better=True)
        ratio = gateway.wrk.rps / direct.wrk.rps if direct.wrk.rps else 0.0
        rows.append(
            [
                str(conns),
                f"{direct.wrk.rps:,.0f}",
                f"{gateway.wrk.rps:,.0f}",
                f"{ratio:.0%}",
                ms(gateway.wrk.p50_us),
                ms(gateway.wrk.p99_us),
                f"{gateway.gateway_ms_per_request:.3f}",
                f"{max(_share(run.foreign_cpu_s, run) for run in (direct, gateway)):.0%}",
                str(direct.wrk.errors + gateway.wrk.errors),
                target,
            ]
        )
    title = "Throughput — non-streaming chat completions, requests/s (wrk)"
    return title + "\n" + table(header, rows)


def _delta_row(label: str, direct_us: float, gateway_us: float, limit: float | None) -> list[str]:
    """direct, gateway, their difference (all ms) and, if given, the target for the difference."""
    delta = (gateway_us - direct_us) / 1000
    target = "" if limit is None else f"<= {limit} {mark(delta, limit)}"
    return [label, ms(direct_us), ms(gateway_us), f"{delta:.3f}", target]


def _added_latency(res: Results) -> str:
    if 1 not in res.direct or 1 not in res.gateway:
        return ""
    direct, gateway = res.direct[1].wrk, res.gateway[1].wrk
    rows = [
        _delta_row("p50", direct.p50_us, gateway.p50_us, r.TARGET_ADDED_P50_MS),
        _delta_row("p99", direct.p99_us, gateway.p99_us, r.TARGET_ADDED_P99_MS),
    ]
    header = ["", "direct ms", "gateway ms", "added ms", "target"]
    title = "Added latency at c=1 — gateway minus direct (wrk, µs precision)"
    return title + "\n" + table(header, rows)


def _streaming(res: Results) -> str:
    direct, gateway = res.ttfb_direct, res.ttfb_gateway
    if direct is None or gateway is None:
        return ""
    rows = [
        _delta_row("TTFB p50", direct.ttfb_p50_us, gateway.ttfb_p50_us, r.TARGET_TTFB_MS),
        _delta_row("TTFB p99", direct.ttfb_p99_us, gateway.ttfb_p99_us, None),
        _delta_row("headers p50", direct.headers_p50_us, gateway.headers_p50_us, None),
        _delta_row("whole stream p50", direct.total_p50_us, gateway.total_p50_us, None),
    ]
    title = (
        f"Streaming — stream: true, 20 content chunks; c=1, {gateway.samples} sequential "
        f"requests per side, raw socket; TTFB = first SSE event\n"
        f"  SSE events per response: direct {direct.events}, gateway {gateway.events}"
    )
    text = title + "\n" + table(["", "direct ms", "gateway ms", "overhead ms", "target"], rows)
    if res.stream_direct and res.stream_gateway:
        text += (
            f"\n  streamed responses/s at c={res.stream_gateway.wrk.connections}: "
            f"direct {res.stream_direct.wrk.rps:,.0f}, gateway {res.stream_gateway.wrk.rps:,.0f}"
            f" (errors {res.stream_direct.wrk.errors + res.stream_gateway.wrk.errors})"
        )
    return text


def _cpu_row(label: str, run: LoadRun | None, limit: float) -> list[str] | None:
    if run is None:
        return None
    value = run.gateway_ms_per_request
    kernel = run.gateway_system_s / run.gateway_cpu_s if run.gateway_cpu_s else 0.0
    wrk_core = _share(run.wrk.wrk_cpu_s, run)
    return [
        label,
        f"{run.wrk.requests:,}",
        f"{value:.3f}",
        f"<= {limit} {mark(value, limit)}",
        f"{kernel:.0%}",
        f"{run.upstream_ms_per_request:.3f}",
        f"{run.wrk_ms_per_request:.3f} ({wrk_core:.0%} core)",
        f"{run.machine_busy:.0%}",
        f"{_share(run.foreign_cpu_s, run):.0%} core",
    ]


def _cpu(res: Results) -> str:
    conns = res.load_connections
    rows = [
        _cpu_row("non-streaming", res.gateway.get(conns), r.TARGET_CPU_MS),
        _cpu_row("streamed, 20 chunks", res.stream_gateway, r.TARGET_STREAM_CPU_MS),
    ]
    header = ["", "requests", "gateway ms", "target", "in kernel", "upstream ms", "wrk ms"]
    header += ["machine busy", "other procs"]
    title = (
        f"CPU time per request at c={conns} — gateway master + all workers, "
        "utime+stime from /proc (upstream and wrk for context)"
    )
    return title + "\n" + table(header, [row for row in rows if row is not None])


def _memory(res: Results) -> str:
    header = ["pid", "role", *res.moments, "target"]
    rows = []
    for process in res.memory.values():
        values = [process.rss_mb.get(moment) for moment in res.moments]
        target = ""
        if process.role == "worker" or res.workers <= 1:
            worst = max(value for value in values if value is not None)
            target = f"<= {r.TARGET_RSS_MB:.0f} {mark(worst, r.TARGET_RSS_MB)}"
        cells = ["-" if value is None else f"{value:.1f}" for value in values]
        rows.append([str(process.pid), process.role, *cells, target])
    return "Memory — VmRSS per gateway process, MiB\n" + table(header, rows)


def _startup(res: Results) -> str:
    verdict = mark(res.startup_s, r.TARGET_STARTUP_S)
    return (
        "Start-up — spawning `gatewise serve` to the first successful chat completion: "
        f"{res.startup_s:.2f} s (target <= {r.TARGET_STARTUP_S} s {verdict})"
    )


def _summary(res: Results) -> str:
    passed = sum(check.passed for check in res.checks)
    lines = [f"Targets met: {passed}/{len(res.checks)}"]
    lines += [
        f"  MISS  {check.name}: {_number(check.value)} (target "
        f"{'>=' if check.higher_is_better else '<='} {_number(check.limit)})"
        for check in res.checks
        if not check.passed
    ]
    lines += [f"  note  {note}" for note in _warnings(res)]
    return "\n".join(lines)


def _number(value: float) -> str:
    return f"{value:,.0f}" if abs(value) >= 100 else f"{value:.3f}".rstrip("0").rstrip(".")


def _warnings(res: Results) -> list[str]:
    notes = []
    if res.background_busy > 0.1:
        notes.append(
            f"the machine was already {res.background_busy:.0%} busy before the benchmark "
            "started: other processes share the cores, so every figure is pessimistic"
        )
    served = sum(run.wrk.requests for run in res.gateway.values())
    if res.gateway_log_lines > served / 2:
        notes.append(
            f"the gateway wrote {res.gateway_log_lines:,} log lines for about {served:,} "
            "measured requests: per-request logging is on the hot path"
        )
    runs = [*res.direct.values(), *res.gateway.values(), res.stream_direct, res.stream_gateway]
    for run in runs:
        if run is not None:
            notes += _run_warnings(run)
    foreign = [(_share(run.foreign_cpu_s, run), _label(run)) for run in runs if run is not None]
    worst = max(foreign, default=(0.0, ""))
    if worst[0] > 0.1:
        notes.append(
            f"processes outside the benchmark used up to {worst[0]:.0%} of a core during a run "
            f"(worst: {worst[1]}); rerun on a quiet machine for clean figures"
        )
    return notes


def _label(run: LoadRun) -> str:
    return f"{run.target} c={run.wrk.connections}{' stream' if run.streaming else ''}"


def _share(cpu_s: float, run: LoadRun) -> float:
    """CPU seconds as a fraction of one core over the run."""
    return cpu_s / run.wrk.duration_s if run.wrk.duration_s else 0.0


def _run_warnings(run: LoadRun) -> list[str]:
    notes = []
    if run.wrk.errors:
        notes.append(f"{_label(run)}: {run.wrk.errors} failed requests — figures are suspect")
    wrk_busy = _share(run.wrk.wrk_cpu_s, run) / run.wrk.threads
    if wrk_busy > 0.9:
        notes.append(
            f"{_label(run)}: wrk used {wrk_busy:.0%} of its threads — load-generator bound"
        )
    return notes
