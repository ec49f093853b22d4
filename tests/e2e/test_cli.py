"""The real command line: `gatewise serve` with workers, `gatewise mock-upstream`, start-up errors."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import openai
import pytest

from tests.rawhttp import request

GATEWISE = [sys.executable, "-m", "gatewise"]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def wait_ready(url: str, process: subprocess.Popen[bytes], timeout: float = 15) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(
                f"process exited early: {process.stdout.read() if process.stdout else ''!r}"
            )
        try:
            if request("GET", url, timeout=1).status == 200:
                return
        except OSError:
            pass
        time.sleep(0.05)
    raise AssertionError(f"{url} not ready after {timeout}s")


def stop(process: subprocess.Popen[bytes]) -> int:
    """SIGTERM, then the exit code; uvicorn re-raises the signal after a clean shutdown."""
    process.send_signal(signal.SIGTERM)
    try:
        code = process.wait(timeout=15)
    except subprocess.TimeoutExpired:
        process.kill()
        raise
    return 0 if code == -signal.SIGTERM else code


@pytest.fixture
def mock_upstream() -> Iterator[str]:
    port = free_port()
    process = subprocess.Popen(
        [*GATEWISE, "mock-upstream", "--format", "openai", "--port", str(port)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_ready(url + "/v1/models", process)
        yield url
    finally:
        stop(process)


def test_serve_with_two_workers_in_front_of_mock_upstream(
    tmp_path: Path, mock_upstream: str
) -> None:
    port = free_port()
    config = tmp_path / "gateway.yaml"
    config.write_text(
        f"""
auth: {{mode: open}}
providers:
  fake: {{type: openai-compatible, base_url: "{mock_upstream}/v1"}}
models:
  - name: gpt-4o-mini
    deployments: [{{provider: fake, model: gpt-4o-mini}}]
"""
    )
    process = subprocess.Popen(
        [*GATEWISE, "serve", "--config", str(config), "--port", str(port), "--workers", "2"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_ready(url + "/readyz", process)
        client = openai.OpenAI(base_url=url + "/v1", api_key="k", max_retries=0)
        for _ in range(10):  # spread over both workers
            reply = client.chat.completions.create(
                model="gpt-4o-mini",
                messages=[{"role": "user", "content": "ping [[fake:chunks=3]]"}],
            )
            assert reply.choices[0].message.content
        streamed = list(
            client.chat.completions.create(
                model="gpt-4o-mini",
                messages=[{"role": "user", "content": "ping [[fake:chunks=3]]"}],
                stream=True,
            )
        )
        assert sum(1 for c in streamed if c.choices and c.choices[0].delta.content) == 3
        assert request("GET", url + "/healthz").json == {"status": "ok"}
    finally:
        code = stop(process)
        output = process.stdout.read().decode() if process.stdout else ""
    assert code == 0, output
    assert f"http://127.0.0.1:{port}" in output and "curl" in output  # the start-up banner


def test_serve_refuses_an_invalid_config(tmp_path: Path) -> None:
    config = tmp_path / "bad.yaml"
    config.write_text("server:\n  port: not-a-port\n")
    result = subprocess.run(
        [*GATEWISE, "serve", "--config", str(config)], capture_output=True, text=True, timeout=30
    )
    assert result.returncode == 1
    assert f"{config}:2" in result.stderr and "server.port" in result.stderr


def test_serve_refuses_a_missing_secret_without_showing_values(tmp_path: Path) -> None:
    config = tmp_path / "c.yaml"
    config.write_text(
        "providers:\n  openai: {type: openai, api_key: '${env:GW_SURELY_UNSET_VAR}'}\n"
    )
    env = {k: v for k, v in os.environ.items() if k != "GW_SURELY_UNSET_VAR"}
    result = subprocess.run(
        [*GATEWISE, "serve", "--config", str(config)],
        capture_output=True,
        text=True,
        env=env,
        timeout=30,
    )
    assert result.returncode == 1
    assert "providers.openai" in result.stderr and "GW_SURELY_UNSET_VAR" in result.stderr


def test_quickstart_starts_without_any_key(tmp_path: Path) -> None:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if k != "OPENAI_API_KEY"}
    quickstart = Path(__file__).parents[2] / "examples" / "quickstart.yaml"
    process = subprocess.Popen(
        [*GATEWISE, "serve", "--config", str(quickstart), "--port", str(port)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        env=env,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_ready(url + "/readyz", process)
        ids = [m["id"] for m in request("GET", url + "/v1/models").json["data"]]
        assert ids == ["mock-gpt", "mock-embed"]
    finally:
        code = stop(process)
        output = process.stdout.read().decode() if process.stdout else ""
    assert code == 0
    assert "OPENAI_API_KEY is not set" in output  # said why the openai models are left out
    assert "Application shutdown complete" in output
