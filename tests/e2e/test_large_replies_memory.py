"""Memory stays flat over hundreds of large upstream replies, in a real ``gatewise serve``.

A served process tunes its garbage collector for the hot path (full collections are
rare), so bytes held by reference cycles look like a leak there, not in a test thread:
the gateway runs as users run it and its resident memory is read from ``/proc``.
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from gatewise.testing import FakeOpenAIUpstream, Scenario, run_in_thread
from tests.e2e.test_cli import GATEWISE, free_port, stop, wait_ready
from tests.rawhttp import post

LARGE = "x" * 3_000_000
CHAT = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "a long one"}]}
STALLING = {**CHAT, "model": "stalling"}
EMBED = {"model": "text-embedding-3-small", "input": [f"input {i}" for i in range(300)]}


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS")


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[str, int, FakeOpenAIUpstream]]:
    with run_in_thread(FakeOpenAIUpstream(record=False)) as fake:
        config = tmp_path / "gateway.yaml"
        config.write_text(
            f"""
server: {{workers: 1}}
auth: {{mode: open}}
providers:
  up: {{type: openai-compatible, base_url: "{fake.base_url}"}}
  short: {{type: openai-compatible, base_url: "{fake.base_url}", timeouts: {{idle: 0.1}}}}
models:
  - name: gpt-4o-mini
    deployments: [{{provider: up, model: gpt-4o-mini}}]
  - name: text-embedding-3-small
    deployments: [{{provider: up, model: text-embedding-3-small}}]
  - name: stalling
    deployments: [{{provider: short, model: gpt-4o}}]
"""
        )
        port = free_port()
        log = (tmp_path / "gateway.log").open("wb")
        process = subprocess.Popen(
            [*GATEWISE, "serve", "--config", str(config), "--port", str(port)],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        url = f"http://127.0.0.1:{port}"
        try:
            wait_ready(url + "/readyz", process)
            yield url, process.pid, fake
        finally:
            stop(process)
            log.close()


def test_memory_stays_flat_over_hundreds_of_large_replies(
    served: tuple[str, int, FakeOpenAIUpstream],
) -> None:
    url, pid, fake = served

    def one_round(chats: int, embeddings: int, stalls: int) -> None:
        for _ in range(chats):
            fake.script(Scenario(content=LARGE))
            reply = post(url + "/v1/chat/completions", CHAT, timeout=30)
            assert reply.status == 200, reply.body[:300]
            assert len(reply.body) > 3_000_000
        for _ in range(embeddings):
            reply = post(url + "/v1/embeddings", EMBED, timeout=30)
            assert reply.status == 200, reply.body[:300]
            assert len(reply.body) > 3_000_000
        for _ in range(stalls):  # half a 3 MB body, then silence: the idle timeout ends it
            fake.script(Scenario(content=LARGE, stall=True))
            reply = post(url + "/v1/chat/completions", STALLING, timeout=30)
            assert reply.status == 504, reply.body[:300]

    one_round(20, 5, 5)  # warm-up: pools, caches, the allocator's arenas
    before = rss_mb(pid)
    one_round(200, 25, 25)
    grown = rss_mb(pid) - before
    # Leaking each reply (or each timed-out half) would grow by 1-3 MB a call: 100s of MB.
    assert grown < 25, f"resident memory grew by {grown:.1f} MB over 250 large replies"
