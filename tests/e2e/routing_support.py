"""Shared pieces of the routing end-to-end tests: fake upstreams that note when each
request arrived, a config builder for several deployments, and small HTTP helpers.

Each test builds its own gateway (breakers, cool-downs and the retry budget live in
the gateway, so a gateway shared between tests would make them depend on their order);
the fakes are shared per module and reset before each test.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from typing import Any

from gatewise.testing import FakeAnthropicUpstream, FakeOpenAIUpstream, run_in_thread
from gatewise.testing.gateway import RunningGateway
from gatewise.testing.httpserver import Request, Response
from tests.conftest import UPSTREAM_KEY, openai_provider
from tests.rawhttp import Reply, request

MODEL = "gpt-4o-mini"  # what the OpenAI fakes are asked for
CLAUDE = "claude-haiku-4-5"
HELLO = [{"role": "user", "content": "Hello router"}]
#: The ``start_gateway`` fixture (tests/conftest.py): a gateway from a config dict.
StartGateway = Callable[[dict[str, Any]], RunningGateway]
ROUTING_HEADERS = ("x-gatewise-deployment", "x-gatewise-provider", "x-gatewise-attempts")


class TimedOpenAI(FakeOpenAIUpstream):
    """A fake OpenAI upstream that also notes when each request arrived (monotonic s)."""

    def __init__(self) -> None:
        super().__init__(api_key=UPSTREAM_KEY, stream_chunks=4)
        self.arrivals: list[float] = []

    async def handle(self, request: Request, response: Response) -> None:
        self.arrivals.append(time.monotonic())
        await super().handle(request, response)

    def reset(self) -> None:
        super().reset()
        self.arrivals.clear()


@dataclass
class Upstreams:
    """Three OpenAI fakes (providers ``a``, ``b``, ``c``) and an Anthropic one (``ant``)."""

    a: TimedOpenAI
    b: TimedOpenAI
    c: TimedOpenAI
    ant: FakeAnthropicUpstream

    def reset(self) -> None:
        for fake in (self.a, self.b, self.c, self.ant):
            fake.reset()

    def counts(self) -> tuple[int, int, int]:
        """Requests received by a, b and c."""
        return len(self.a.requests), len(self.b.requests), len(self.c.requests)

    def providers(self) -> dict[str, Any]:
        return {
            "a": openai_provider(self.a.url),
            "b": openai_provider(self.b.url),
            "c": openai_provider(self.c.url),
            "ant": {
                "type": "anthropic",
                "base_url": self.ant.url,
                "api_key": "${env:GW_TEST_UPSTREAM_KEY}",
            },
        }


@contextmanager
def upstreams() -> Iterator[Upstreams]:
    with ExitStack() as stack:
        a, b, c = (stack.enter_context(run_in_thread(TimedOpenAI())) for _ in range(3))
        ant = stack.enter_context(
            run_in_thread(FakeAnthropicUpstream(api_key=UPSTREAM_KEY, stream_chunks=4))
        )
        yield Upstreams(a, b, c, ant)


def deployment(provider: str, model: str = MODEL, **extra: Any) -> dict[str, Any]:
    return {"provider": provider, "model": model, **extra}


def config(
    fakes: Upstreams,
    models: dict[str, list[dict[str, Any]]],
    model_routing: dict[str, dict[str, Any]] | None = None,
    routing: dict[str, Any] | None = None,
    **sections: Any,
) -> dict[str, Any]:
    """An open gateway serving ``models`` ({name: deployments}) from the fakes."""
    model_routing = model_routing or {}
    return {
        "auth": {"mode": "open"},
        "providers": fakes.providers(),
        "models": [
            {"name": name, "deployments": plan, "routing": model_routing.get(name, {})}
            for name, plan in models.items()
        ],
        "routing": routing or {},
        **sections,
    }


def chat(gateway: RunningGateway, model: str, *, stream: bool = False, **headers: str) -> Reply:
    body: dict[str, Any] = {"model": model, "messages": HELLO}
    if stream:
        body["stream"] = True
    return request("POST", gateway.url + "/v1/chat/completions", body, headers=headers)


def served_by(reply: Reply) -> str | None:
    return reply.headers.get("x-gatewise-deployment")


def sse_data(body: bytes) -> list[str]:
    """The ``data:`` payloads of an event stream, in order."""
    out = []
    for line in body.decode().splitlines():
        if line.startswith("data: "):
            out.append(line[len("data: ") :])
    return out


def streamed_text(payloads: list[str]) -> str:
    """The content of a chat completion stream's chunks (``[DONE]`` and errors left out)."""
    text = ""
    for payload in payloads:
        if payload == "[DONE]":
            continue
        for choice in json.loads(payload).get("choices", []):
            text += choice.get("delta", {}).get("content") or ""
    return text
