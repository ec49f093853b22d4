"""Start the fake upstream and the gateway in their own process groups, and always stop them."""

from __future__ import annotations

import contextlib
import http.client
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from types import FrameType, TracebackType

from auth import auth_headers


class BenchError(RuntimeError):
    """A failure that stops the benchmark; its message is printed to the user."""


def run_command(name: str, body: Callable[[], int]) -> int:
    """A bench command's exit code: ``body``'s, 2 after a ``BenchError`` (its message is
    printed), 130 when interrupted. SIGTERM and SIGHUP interrupt it as Ctrl-C does, so
    the ``Services`` it started are stopped on the way out."""
    for sig in (signal.SIGTERM, signal.SIGHUP):
        if signal.getsignal(sig) is not signal.SIG_IGN:  # respect nohup
            signal.signal(sig, _raise_interrupt)
    try:
        return body()
    except BenchError as error:
        print(f"{name}: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"{name}: interrupted; child processes stopped", file=sys.stderr)
        return 130


def _raise_interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


class Service:
    """A child process started in a new session, so its whole group can be stopped."""

    def __init__(self, name: str, argv: Sequence[str], log_dir: Path) -> None:
        self.name = name
        self.argv = list(argv)
        self.log_path = log_dir / f"{name}.log"
        self._log = self.log_path.open("wb")
        self.started_at = time.perf_counter()
        self.proc = subprocess.Popen(
            self.argv,
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    @property
    def pid(self) -> int:
        return self.proc.pid

    def alive(self) -> bool:
        return self.proc.poll() is None

    def log_tail(self, lines: int = 25) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])

    def first_log_line(self) -> str:
        try:
            with self.log_path.open(errors="replace") as log:
                for line in log:
                    if line.strip():
                        return line.strip()
        except OSError:
            pass
        return ""

    def log_lines(self) -> int:
        try:
            with self.log_path.open("rb") as log:
                return sum(1 for _ in log)
        except OSError:
            return 0

    def stop(self, timeout: float = 5.0) -> None:
        """SIGTERM the process group, then SIGKILL whatever is left after ``timeout``."""
        if self.alive():
            self._signal_group(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self._signal_group(signal.SIGKILL)
                self.proc.wait(timeout)
        # Workers may outlive a master that died first: sweep the group regardless.
        self._signal_group(signal.SIGKILL)
        self._log.close()

    def _signal_group(self, sig: signal.Signals) -> None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.proc.pid, sig)


class Services:
    """Owns every child process; stops them all (newest first) when the block exits."""

    def __init__(self, log_dir: Path) -> None:
        self.log_dir = log_dir
        self._services: list[Service] = []

    def start(self, name: str, argv: Sequence[str]) -> Service:
        service = Service(name, argv, self.log_dir)
        self._services.append(service)
        return service

    def diagnose(self) -> str:
        """Each service's state and, for any that exited, the end of its log."""
        parts = []
        for service in self._services:
            if service.alive():
                parts.append(f"{service.name}: running (pid {service.pid})")
            else:
                parts.append(
                    f"{service.name}: exited with code {service.proc.returncode}\n"
                    f"--- {service.name} log ---\n{service.log_tail()}"
                )
        return "\n".join(parts)

    def stop_all(self) -> None:
        while self._services:
            self._services.pop().stop()

    def __enter__(self) -> Services:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop_all()


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def post(port: int, path: str, body: bytes, timeout: float = 5.0) -> tuple[int, bytes]:
    """One POST to 127.0.0.1:port; returns (status, body)."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        headers = {"Content-Type": "application/json", **auth_headers()}
        conn.request("POST", path, body=body, headers=headers)
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


def wait_until_serving(
    service: Service, port: int, path: str, body: bytes, timeout: float = 30.0
) -> float:
    """Poll with real requests until one succeeds; return seconds since the service was spawned."""
    deadline = time.perf_counter() + timeout
    last_error = "no attempt yet"
    while time.perf_counter() < deadline:
        if not service.alive():
            raise BenchError(
                f"{service.name} exited with code {service.proc.returncode} before serving.\n"
                f"command: {' '.join(service.argv)}\n--- log ---\n{service.log_tail()}"
            )
        try:
            status, payload = post(port, path, body, timeout=2.0)
        except OSError as error:
            last_error = str(error)
        else:
            if status == 200:
                return time.perf_counter() - service.started_at
            last_error = f"HTTP {status}: {payload[:300]!r}"
        time.sleep(0.005)
    raise BenchError(
        f"{service.name} did not answer a request within {timeout:.0f} s (last: {last_error}).\n"
        f"command: {' '.join(service.argv)}\n--- log ---\n{service.log_tail()}"
    )
