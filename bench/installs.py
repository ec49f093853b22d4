"""Other installations of gatewise: what code an executable runs, and builds of any commit.

``compare.py`` can run a different ``gatewise`` on each side. ``Installation`` finds the
Python behind an executable, the ``gatewise`` package that Python imports (and, when
that package lies in a git checkout, its commit), and creates the benchmark's gateway
key with that installation's own store code, so each side's records database has the
schema its gateway expects.

``compare.py --ref-a main~3`` resolves the ref to a commit, extracts that commit's tree
with ``git archive`` into ``bench/.cache/<sha>/src`` (ignored by git; no worktree is
added to the repository), creates ``bench/.cache/<sha>/venv`` and installs the tree into
it (not editable, runtime dependencies only, so the code cannot drift). The first build
of a commit downloads its dependencies and takes about a minute; asking for the same
commit again reuses the folder. A lock file keeps two benchmarks from building the same
commit at once, and a build that failed halfway is thrown away and redone next time.
"""

from __future__ import annotations

import fcntl
import io
import os
import re
import shutil
import subprocess
import sys
import tarfile
from dataclasses import dataclass
from pathlib import Path

from procs import BenchError

ROOT = Path(__file__).resolve().parents[1]
CACHE = ROOT / "bench" / ".cache"
READY = "ready"  # written last: the venv in this folder is complete


@dataclass(frozen=True)
class Build:
    ref: str  # as the user spelled it, e.g. main~3
    sha: str  # the full commit id
    folder: Path  # bench/.cache/<sha>

    @property
    def gatewise(self) -> str:
        return str(self.folder / "venv" / "bin" / "gatewise")

    @property
    def source(self) -> Path:
        return self.folder / "src"

    @property
    def short(self) -> str:
        return self.sha[:10]


def resolve(ref: str) -> str:
    """The full commit id ``ref`` names in this repository, or a ``BenchError``."""
    try:
        proc = subprocess.run(
            ["git", "-C", str(ROOT), "rev-parse", "--verify", "--quiet", f"{ref}^{{commit}}"],
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as error:
        raise BenchError(f"cannot run git to resolve {ref!r}: {error}") from error
    sha = proc.stdout.strip()
    if proc.returncode != 0 or not re.fullmatch(r"[0-9a-f]{40}", sha):
        raise BenchError(f"{ref!r} is not a commit of the repository at {ROOT}")
    return sha


def build(ref: str, sha: str | None = None, cache: Path = CACHE) -> Build:
    """The cached installation of ``ref``'s commit, built first if it is not there yet."""
    sha = sha or resolve(ref)
    result = Build(ref, sha, cache / sha)
    cache.mkdir(parents=True, exist_ok=True)
    with (cache / f"{sha}.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # another benchmark may be building this commit
        if not (result.folder / READY).exists():
            _build(result)
    return result


def _build(target: Build) -> None:
    shutil.rmtree(target.folder, ignore_errors=True)  # a half-done build from before
    target.source.mkdir(parents=True)
    print(
        f"building gatewise at {target.short} ({target.ref}) in {target.folder}; "
        "the first build of a commit downloads its dependencies (about a minute)",
        file=sys.stderr,
        flush=True,
    )
    archive = _run(["git", "-C", str(ROOT), "archive", "--format=tar", target.sha], target)
    with tarfile.open(fileobj=io.BytesIO(archive), mode="r:") as tar:
        tar.extractall(target.source, filter="data")
    venv = target.folder / "venv"
    _run([sys.executable, "-m", "venv", str(venv)], target)
    python = str(venv / "bin" / "python")
    pip = [python, "-m", "pip", "--disable-pip-version-check", "--no-input"]
    _run([*pip, "install", "--quiet", str(target.source)], target)
    if not Path(target.gatewise).exists():
        raise BenchError(f"the install of {target.ref} ({target.short}) made no {target.gatewise}")
    (target.folder / READY).write_text(f"{target.ref}\n")


def _run(argv: list[str], target: Build) -> bytes:
    """Run one build step; on failure a ``BenchError`` with the end of its output."""
    log = target.folder / "build.log"
    try:
        proc = subprocess.run(argv, capture_output=True, timeout=1800, check=False)
    except (OSError, subprocess.TimeoutExpired) as error:
        raise BenchError(f"building {target.ref} ({target.short}): {error}") from error
    with log.open("ab") as out:
        out.write(b"$ " + " ".join(argv).encode() + b"\n" + proc.stderr)
        if argv[0] != "git":
            out.write(proc.stdout)
    if proc.returncode != 0:
        tail = "\n".join(proc.stderr.decode(errors="replace").splitlines()[-15:])
        raise BenchError(
            f"building gatewise at {target.ref} ({target.short}) failed: "
            f"{' '.join(argv[:4])} ... exited with code {proc.returncode}\n{tail}\n"
            f"(full log: {log}; the next run starts this build over)"
        )
    return proc.stdout


# --- what an executable runs ------------------------------------------------------------------

HERE = Path(__file__).resolve().parent
KEY_CODE = (
    "import sys; sys.path.insert(0, sys.argv[1]); "
    "from auth import create_bench_key; print(create_bench_key(sys.argv[2]))"
)


@dataclass(frozen=True)
class Installation:
    gatewise: str  # the executable
    python: str  # the interpreter its first line names
    package: str  # the folder that interpreter imports gatewise from
    code: str  # e.g. "commit 5a7dd06b1c (main~3)", or "" when unknown
    bench_dir: Path  # whose auth.py creates the benchmark key (the built commit's when it has one)

    def describe(self) -> str:
        return f"{self.gatewise} ({self.code or 'gatewise from ' + self.package})"

    def create_bench_key(self, store_url: str) -> str:
        """``auth.create_bench_key`` run by this installation's Python and store code."""
        argv = [self.python, "-c", KEY_CODE, str(self.bench_dir), store_url]
        proc = _run_python(argv, f"creating the benchmark key with {self.python}")
        return proc.stdout.strip().splitlines()[-1]


def installation_of(gatewise: str, built: Build | None = None) -> Installation:
    """What ``gatewise`` runs: its Python, the package it imports and, if known, its commit."""
    python = script_python(gatewise)
    proc = _run_python(
        [python, "-c", "import gatewise; print(gatewise.__file__)"],
        f"{gatewise}: its Python {python} cannot import gatewise",
    )
    package = str(Path(proc.stdout.strip().splitlines()[-1]).parent)
    bench_dir = HERE
    if built is not None:
        code = f"commit {built.short} ({built.ref})"
        own = built.source / "bench" / "auth.py"
        if own.exists() and "def create_bench_key(store_url" in own.read_text():
            bench_dir = own.parent
    else:
        code = checkout_commit(Path(package))
    return Installation(gatewise, python, package, code, bench_dir)


def script_python(gatewise: str) -> str:
    """The interpreter a console script starts: its ``#!`` line (or pip's ``/bin/sh``
    launcher for long paths), else the ``python`` beside it."""
    try:
        with open(gatewise, "rb") as script:
            lines = script.read(2048).decode(errors="replace").splitlines()
    except OSError as error:
        raise BenchError(f"cannot read {gatewise}: {error}") from error
    words = lines[0][2:].split() if lines and lines[0].startswith("#!") else []
    python = words[0] if words else ""
    if python.endswith("/env") and len(words) > 1:
        python = shutil.which(words[1]) or ""
    elif python.endswith("/sh") and len(lines) > 1:
        launcher = re.search(r"exec' ['\"](.+?)['\"] \"\$0\"", lines[1])
        python = launcher.group(1) if launcher else ""
    if not (python and os.access(python, os.X_OK)):
        python = str(Path(gatewise).parent / "python")
    if not os.access(python, os.X_OK):
        raise BenchError(f"cannot tell which Python runs {gatewise} (no usable #! line)")
    return python


def checkout_commit(package: Path) -> str:
    """``checkout at <commit>`` when ``package`` is tracked in a git checkout (an editable
    install), with a warning when its files differ from that commit; else ``""``."""

    def git(*args: str) -> str:
        try:
            proc = subprocess.run(
                # Only reads: no index refresh in someone else's checkout.
                ["git", "--no-optional-locks", "-C", str(package), *args],
                capture_output=True,
                text=True,
                timeout=30,
                check=False,
            )
        except (OSError, subprocess.TimeoutExpired):
            return ""
        return proc.stdout.strip() if proc.returncode == 0 else ""

    if not git("ls-files", "--", "__init__.py"):
        return ""
    commit = git("rev-parse", "--short=10", "HEAD")
    changed = git("status", "--porcelain", "--", ".")
    return f"checkout at {commit}" + (" with uncommitted changes" if changed else "")


def _run_python(argv: list[str], what: str) -> subprocess.CompletedProcess[str]:
    try:
        proc = subprocess.run(argv, capture_output=True, text=True, timeout=120, check=False)
    except (OSError, subprocess.TimeoutExpired) as error:
        raise BenchError(f"{what}: {error}") from error
    if proc.returncode != 0 or not proc.stdout.strip():
        tail = "\n".join(proc.stderr.splitlines()[-10:])
        raise BenchError(f"{what} (exit code {proc.returncode}):\n{tail}")
    return proc
