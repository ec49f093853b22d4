"""Upstream replies of several megabytes pass through the gateway whole and at once.

The session gateway's idle timeout is 1 s: a reply the upstream client stops
reading (it pauses at its high-water mark, 1 MiB) ends in a 504 instead.
"""

from __future__ import annotations

import time

from gatewise.testing import FakeOpenAIUpstream, Scenario
from gatewise.testing.gateway import RunningGateway
from tests.conftest import UPSTREAM_KEY
from tests.rawhttp import post

LARGE = "".join(f"word{i} " for i in range(430_000))  # about 3 MB


def test_a_3_mb_chat_completion_arrives_whole_and_fast(
    gateway: RunningGateway, upstream: FakeOpenAIUpstream
) -> None:
    assert len(LARGE) > 3_000_000
    upstream.script(Scenario(content=LARGE))
    started = time.monotonic()
    reply = post(
        gateway.openai_base_url + "/chat/completions",
        {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "a long one"}]},
    )
    elapsed = time.monotonic() - started
    assert reply.status == 200, reply.body[:300]
    assert reply.json["choices"][0]["message"]["content"] == LARGE
    assert elapsed < 3  # nothing waited for an idle timeout (a shared machine can be slow)


def test_a_300_input_embeddings_reply_arrives_whole_and_fast(
    gateway: RunningGateway, upstream: FakeOpenAIUpstream
) -> None:
    body = {
        "model": "text-embedding-3-small",
        "input": [f"input number {i}" for i in range(300)],
        "encoding_format": "float",
    }
    direct = post(
        upstream.base_url + "/embeddings", body, headers={"authorization": f"Bearer {UPSTREAM_KEY}"}
    )
    assert direct.status == 200 and len(direct.body) > 3_000_000
    started = time.monotonic()
    reply = post(gateway.openai_base_url + "/embeddings", body)
    elapsed = time.monotonic() - started
    assert reply.status == 200, reply.body[:300]
    data = reply.json["data"]
    assert [item["index"] for item in data] == list(range(300))
    assert [item["embedding"] for item in data] == [
        item["embedding"] for item in direct.json["data"]
    ]
    assert elapsed < 3
