"""Read CPU time, memory and process trees straight from ``/proc`` (Linux only, no psutil)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
PROC = Path("/proc")


@dataclass(frozen=True)
class ProcStat:
    pid: int
    ppid: int
    user_ticks: int  # utime + cutime (own time plus reaped children)
    system_ticks: int  # stime + cstime

    @property
    def cpu_ticks(self) -> int:
        return self.user_ticks + self.system_ticks


def read_stat(pid: int) -> ProcStat | None:
    """Parse ``/proc/<pid>/stat``; None when the process is gone."""
    try:
        raw = (PROC / str(pid) / "stat").read_text()
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return None
    # The command name (field 2) may contain spaces and parentheses: split after the last ')'.
    fields = raw[raw.rindex(")") + 2 :].split()
    # fields[0] is field 3 (state); utime..cstime are fields 14..17.
    ppid = int(fields[1])
    utime, stime, cutime, cstime = (int(value) for value in fields[11:15])
    return ProcStat(pid=pid, ppid=ppid, user_ticks=utime + cutime, system_ticks=stime + cstime)


def _all_parents() -> dict[int, int]:
    parents: dict[int, int] = {}
    for entry in PROC.iterdir():
        if entry.name.isdigit():
            stat = read_stat(int(entry.name))
            if stat is not None:
                parents[stat.pid] = stat.ppid
    return parents


def process_tree(root: int) -> list[int]:
    """``root`` and all its descendants (recursively), root first."""
    parents = _all_parents()
    children: dict[int, list[int]] = {}
    for pid, ppid in parents.items():
        children.setdefault(ppid, []).append(pid)
    tree = [root]
    index = 0
    while index < len(tree):
        tree.extend(sorted(children.get(tree[index], [])))
        index += 1
    return [pid for pid in tree if pid in parents or pid == root]


def tree_cpu_seconds(root: int) -> tuple[float, float]:
    """(user, system) CPU seconds used so far by ``root`` and its descendants."""
    user = system = 0
    for pid in process_tree(root):
        stat = read_stat(pid)
        if stat is not None:
            user += stat.user_ticks
            system += stat.system_ticks
    return user / CLOCK_TICKS, system / CLOCK_TICKS


def rss_mb(pid: int) -> float | None:
    """Resident set size (VmRSS) in MiB; None when the process is gone."""
    try:
        for line in (PROC / str(pid) / "status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except (FileNotFoundError, ProcessLookupError):
        return None
    return None


def cmdline(pid: int) -> str:
    try:
        raw = (PROC / str(pid) / "cmdline").read_bytes()
    except (FileNotFoundError, ProcessLookupError):
        return ""
    return raw.replace(b"\0", b" ").decode(errors="replace").strip()


def role(pid: int, root: int) -> str:
    """A short label for a process in the gateway's tree."""
    if pid == root:
        return "master"
    command = cmdline(pid)
    if "resource_tracker" in command or "semaphore_tracker" in command:
        return "helper"
    return "worker"


def machine_busy_ticks() -> tuple[int, int]:
    """(busy, total) jiffies of all CPUs, from the first line of ``/proc/stat``."""
    first = (PROC / "stat").read_text().splitlines()[0].split()[1:]
    values = [int(value) for value in first[:8]]  # user nice system idle iowait irq softirq steal
    idle = values[3] + values[4]
    return sum(values) - idle, sum(values)


def native_modules(pid: int, names: tuple[str, ...]) -> list[str]:
    """Which of ``names`` appear in the shared objects mapped by ``pid`` (e.g. uvloop, granian)."""
    try:
        maps = (PROC / str(pid) / "maps").read_text()
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return []
    return [name for name in names if f"/{name}/" in maps or f"/{name}." in maps]


def cpu_model() -> str:
    try:
        for line in (PROC / "cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return "unknown CPU"
