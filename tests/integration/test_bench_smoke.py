"""The load benchmark runs end to end in its tiny smoke mode and prints every section."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
HEADINGS = (
    "Gatewise benchmark",
    "Throughput",
    "Added latency at c=1",
    "Streaming",
    "CPU time per request",
    "Memory",
    "Start-up",
    "Targets met:",
)

pytestmark = pytest.mark.skipif(
    shutil.which("wrk") is None,
    reason="wrk is not installed (apt-get install -y wrk); the benchmark drives load with it",
)


def bench(script: str, *args: str, timeout: float) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(ROOT / "bench" / script), *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def test_bench_smoke_prints_every_section(tmp_path: Path) -> None:
    result_file = tmp_path / "bench.json"
    proc = bench("run.py", "--smoke", "--json", str(result_file), timeout=60)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    for heading in HEADINGS:
        assert heading in proc.stdout, f"missing {heading!r} in:\n{proc.stdout}"
    assert "failed requests" not in proc.stdout, proc.stdout
    assert result_file.read_text().startswith("{")


def first_pair(stdout: str) -> list[str]:
    """The table's first row, after the sides and the header."""
    lines = stdout.splitlines()
    header = next(i for i, line in enumerate(lines) if line.startswith("pair "))
    return lines[header + 1].split()


def test_compare_reports_each_pair_and_the_median_growth() -> None:
    proc = bench("compare.py", "--pairs", "1", "--duration", "1", timeout=90)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    pair = first_pair(proc.stdout)
    assert pair[0] == "1" and float(pair[1]) > 0 and float(pair[2]) > 0
    assert float(pair[-3]) > 0 and float(pair[-1]) > 0  # each side's p50 latency
    assert "median growth of gateway CPU per request, memory over off" in proc.stdout
    assert "median growth of the gateway's p50 latency" in proc.stdout


def test_compare_runs_two_executables_with_the_same_setting(tmp_path: Path) -> None:
    gatewise = Path(sys.executable).parent / "gatewise"
    other = tmp_path / "gatewise"
    other.symlink_to(gatewise)  # another path: a second installation as far as compare knows
    proc = bench(
        "compare.py",
        *("--a", "off", "--b", "off", "--gatewise-b", str(other)),
        *("--pairs", "1", "--duration", "1"),
        timeout=90,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[0].startswith(f"A: traffic off, gatewise {gatewise} ("), proc.stdout
    assert lines[1].startswith(f"B: traffic off, gatewise {other} ("), proc.stdout
    assert lines[2] == f"fake upstream: {gatewise} mock-upstream", proc.stdout
    pair = first_pair(proc.stdout)
    assert pair[0] == "1" and float(pair[1]) > 0 and float(pair[2]) > 0
    assert "median growth of gateway CPU per request, B over A" in proc.stdout


def test_compare_refuses_an_empty_comparison() -> None:
    for flag, value in (("--pairs", "0"), ("--duration", "-1")):
        proc = bench("compare.py", flag, value, timeout=30)
        assert proc.returncode == 2 and f"argument {flag}: must be above 0" in proc.stderr


def test_compare_refuses_the_same_side_twice() -> None:
    gatewise = str(Path(sys.executable).parent / "gatewise")
    for args in (
        ("--a", "memory", "--b", "memory"),
        ("--a", "off", "--b", "off", "--gatewise-a", gatewise, "--gatewise-b", gatewise),
        ("--a", "off", "--b", "off", "--gatewise-b", gatewise),  # the default is that one
        ("--a", "off", "--b", "off", "--ref-a", "HEAD", "--ref-b", "HEAD"),
    ):
        proc = bench("compare.py", *args, timeout=30)
        assert proc.returncode == 2, proc.stdout + proc.stderr
        assert "error: both sides would run traffic" in proc.stderr, proc.stderr
    proc = bench("compare.py", "--gatewise-a", gatewise, "--ref-a", "HEAD", timeout=30)
    assert proc.returncode == 2 and "not allowed with argument" in proc.stderr, proc.stderr


def test_compare_reports_an_unknown_ref() -> None:
    proc = bench("compare.py", "--ref-b", "no-such-ref-0123", timeout=30)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert "compare: 'no-such-ref-0123' is not a commit of the repository" in proc.stderr
