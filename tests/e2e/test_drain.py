"""SIGTERM drains: new connections are refused at once, calls in flight finish.

A connection that arrives while a stopping gateway drains must be refused (so load
balancers and clients retry elsewhere), not left in the listen backlog until the last
process exits and then reset.
"""

from __future__ import annotations

import signal
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from gatewise.testing import FakeOpenAIUpstream, run_in_thread
from tests.e2e.test_cli import GATEWISE, free_port, wait_ready
from tests.rawhttp import Reply, post

SLOW = {
    "model": "gpt-4o-mini",
    "messages": [{"role": "user", "content": "take your time [[fake:slow_first_byte=3]]"}],
}


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeOpenAIUpstream]:
    with run_in_thread(FakeOpenAIUpstream(record=False)) as upstream:
        yield upstream


def connect_outcome(port: int, timeout: float = 3.0) -> tuple[str, float]:
    """What a new connection attempt gets: "refused", "reset", "answered" or "hung"."""
    started = time.monotonic()
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
            sock.sendall(b"GET /healthz HTTP/1.1\r\nhost: gw\r\n\r\n")
            data = sock.recv(100)
            outcome = "answered" if data.startswith(b"HTTP/1.1") else "reset"
    except ConnectionRefusedError:
        outcome = "refused"
    except ConnectionResetError:
        outcome = "reset"
    except TimeoutError:
        outcome = "hung"
    return outcome, time.monotonic() - started


@pytest.mark.parametrize("workers", [1, 2])
def test_sigterm_refuses_new_connections_and_finishes_calls_in_flight(
    tmp_path: Path, fake: FakeOpenAIUpstream, workers: int
) -> None:
    config = tmp_path / "gateway.yaml"
    config.write_text(
        f"""
server: {{workers: {workers}}}
auth: {{mode: open}}
providers:
  up: {{type: openai-compatible, base_url: "{fake.base_url}"}}
models:
  - name: gpt-4o-mini
    deployments: [{{provider: up, model: gpt-4o-mini}}]
"""
    )
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    log = tmp_path / "gateway.log"
    with log.open("wb") as output:
        process = subprocess.Popen(
            [*GATEWISE, "serve", "--config", str(config), "--port", str(port)],
            stdout=output,
            stderr=subprocess.STDOUT,
        )
    try:
        wait_ready(url + "/readyz", process, timeout=30)
        replies: list[Reply] = []

        def call() -> None:
            replies.append(post(url + "/v1/chat/completions", SLOW, timeout=30))
            finished.append(time.monotonic())

        finished: list[float] = []
        in_flight = threading.Thread(target=call)
        in_flight.start()
        time.sleep(0.5)  # the call now waits on the upstream's first byte (3 s)
        process.send_signal(signal.SIGTERM)
        stopped = time.monotonic()
        outcomes = []
        while time.monotonic() - stopped < 5:
            outcome, took = connect_outcome(port)
            outcomes.append((outcome, round(took, 3), round(time.monotonic() - stopped, 3)))
            # "answered": the drain has not begun yet; a quick "reset": the connection came
            # as the socket closed (accepted, or in the backlog, in that very moment).
            if outcome not in ("answered", "reset") or took > 0.5:
                break
            time.sleep(0.05)
        in_flight.join(timeout=30)
        code = process.wait(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    output_text = log.read_text(errors="replace")
    outcome, took, at = outcomes[-1]
    # Refused, at once, while the call in flight was still being served.
    assert outcome == "refused" and took < 0.5 and at < 1.5, (outcomes[-3:], output_text)
    assert finished and stopped + at < finished[0], (outcomes, finished, output_text)
    assert len(replies) == 1 and replies[0].status == 200, (replies, output_text)
    assert code in (0, -signal.SIGTERM), output_text
