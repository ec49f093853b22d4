"""A 200 whose JSON is not the operation's reply is a bad upstream response, not a success.

The "lying" upstream here answers every POST with a valid JSON document of the wrong
kind (a models list): each front door must answer 502 ``bad_upstream_response``
instead of relaying it, turning it into an empty message or a completed response.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import orjson
import pytest

from gatewise.testing.gateway import RunningGateway, run_gateway_in_thread
from gatewise.testing.httpserver import HttpServer, Request, Response
from tests.rawhttp import Reply, request

MODELS_LIST = orjson.dumps({"object": "list", "data": [{"id": "gpt-4o", "object": "model"}]})


class LyingUpstream:
    """Answers every request 200 with a models list."""

    def __init__(self) -> None:
        self.server = HttpServer(self.handle)
        self.url = ""

    async def handle(self, request: Request, response: Response) -> None:
        response.send(200, [("content-type", "application/json")], MODELS_LIST)

    async def start(
        self, host: str = "127.0.0.1", port: int = 0, *, reuse_port: bool = False
    ) -> str:
        host, port = await self.server.start(host, port)
        self.url = f"http://{host}:{port}"
        return self.url

    async def close(self) -> None:
        await self.server.close()


@pytest.fixture(scope="module")
def gateway() -> Iterator[RunningGateway]:
    from gatewise.testing.runner import run_in_thread

    with run_in_thread(LyingUpstream()) as liar:
        config: dict[str, Any] = {
            "auth": {"mode": "open"},
            "providers": {"liar": {"type": "openai-compatible", "base_url": liar.url + "/v1"}},
            "models": [{"name": "m", "deployments": [{"provider": "liar", "model": "m"}]}],
        }
        with run_gateway_in_thread(config) as running:
            yield running


def assert_bad_upstream(reply: Reply, *, anthropic: bool = False) -> None:
    assert reply.status == 502, reply.body
    if anthropic:
        assert reply.json["type"] == "error" and reply.json["error"]["type"] == "api_error"
    else:
        assert reply.json["error"]["code"] == "bad_upstream_response"


def test_chat_completions(gateway: RunningGateway) -> None:
    body = {"model": "m", "messages": [{"role": "user", "content": "hi"}]}
    assert_bad_upstream(request("POST", gateway.url + "/v1/chat/completions", body))


def test_messages(gateway: RunningGateway) -> None:
    body = {"model": "m", "max_tokens": 5, "messages": [{"role": "user", "content": "hi"}]}
    headers = {"anthropic-version": "2023-06-01"}
    reply = request("POST", gateway.url + "/v1/messages", body, headers=headers)
    assert_bad_upstream(reply, anthropic=True)


def test_responses(gateway: RunningGateway) -> None:
    body = {"model": "m", "input": "hi"}
    assert_bad_upstream(request("POST", gateway.url + "/v1/responses", body))


def test_embeddings(gateway: RunningGateway) -> None:
    # A models list has `data`, but its items are not embeddings.
    body = {"model": "m", "input": "hi"}
    assert_bad_upstream(request("POST", gateway.url + "/v1/embeddings", body))
