"""What a prompt endpoint adds over the same chat call: CPU per request, in process.

    .venv/bin/python bench/prompt_overhead.py [--requests 20000] [--rounds 5]

Drives the gateway's ASGI app directly (no sockets: the network and the HTTP parser
cost the same on both paths and would only add noise) with the built-in mock
provider, auth open, no guardrails, and compares
``POST /api/sentiment {"message": ...}`` with ``POST /v1/chat/completions`` carrying
the very request the prompt renders (system and user messages, temperature,
max_tokens and the output schema as ``response_format``). Rounds alternate the two
paths; the best round of each is reported (CPU time, ``time.process_time``).
The prompt path does more by design: the input schema check (~10 µs), the template
(~8 µs) and the answer's JSON parse and schema check.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import time
from typing import Any

import orjson

from gatewise.app import create_app
from gatewise.config.models import Config

OUTPUT = {
    "type": "object",
    "required": ["sentiment"],
    "additionalProperties": False,
    "properties": {"sentiment": {"type": "string", "enum": ["positive", "negative", "neutral"]}},
}
SYSTEM = "You classify the sentiment of customer messages. Answer with JSON only."
TEMPLATE = "Classify the sentiment of this message as positive, negative or neutral.\n\nMessage: "
MESSAGE = "I love this product, it works perfectly and arrived a day early!"


def config(tmp: str) -> Config:
    return Config.model_validate(
        {
            "auth": {"mode": "open"},
            "store": {"url": f"sqlite+aiosqlite:///{tmp}/bench.db", "usage_records": False},
            "observability": {"records": {"enabled": False}},
            "providers": {"mock": {"type": "mock"}},
            "models": [
                {"name": "sentiment-model", "deployments": [{"provider": "mock", "model": "m"}]}
            ],
            "prompts": {
                "inline": [
                    {
                        "name": "sentiment",
                        "model": "sentiment-model",
                        "parameters": {"temperature": 0, "max_tokens": 20},
                        "system": SYSTEM,
                        "template": TEMPLATE + "{{ message }}",
                        "input_schema": {
                            "type": "object",
                            "required": ["message"],
                            "additionalProperties": False,
                            "properties": {"message": {"type": "string", "maxLength": 4000}},
                        },
                        "output_schema": OUTPUT,
                    }
                ]
            },
        }
    )


CHAT = orjson.dumps(
    {
        "model": "sentiment-model",
        "messages": [
            {"role": "system", "content": SYSTEM},
            {"role": "user", "content": TEMPLATE + MESSAGE},
        ],
        "temperature": 0,
        "max_tokens": 20,
        "response_format": {
            "type": "json_schema",
            "json_schema": {"name": "sentiment", "schema": OUTPUT},
        },
    }
)
PROMPT = orjson.dumps({"message": MESSAGE})


async def drive(app: Any, path: str, body: bytes, count: int) -> float:
    """CPU seconds per request for ``count`` requests."""
    scope = {
        "type": "http",
        "method": "POST",
        "path": path,
        "query_string": b"",
        "headers": [(b"content-type", b"application/json")],
        "client": ("127.0.0.1", 1),
    }
    message = {"type": "http.request", "body": body, "more_body": False}
    statuses: list[int] = []

    async def receive() -> dict[str, Any]:
        return message

    async def send(event: dict[str, Any]) -> None:
        if event["type"] == "http.response.start":
            statuses.append(event["status"])

    started = time.process_time()
    for _ in range(count):
        await app(dict(scope), receive, send)
    spent = time.process_time() - started
    assert set(statuses) == {200}, statuses[:3]
    return spent / count


async def main(requests: int, rounds: int) -> None:
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        app = create_app(config(tmp))
        await app._start()
        await drive(app, "/api/sentiment", PROMPT, 500)  # warm up both paths
        await drive(app, "/v1/chat/completions", CHAT, 500)
        gc.collect()
        chat, prompt = [], []
        for _ in range(rounds):
            chat.append(await drive(app, "/v1/chat/completions", CHAT, requests))
            prompt.append(await drive(app, "/api/sentiment", PROMPT, requests))
        await app.generation.close()
        await app.services.close()
    best_chat, best_prompt = min(chat) * 1e6, min(prompt) * 1e6
    print(f"chat completion  {best_chat:7.1f} µs CPU per request (best of {rounds})")
    print(f"prompt endpoint  {best_prompt:7.1f} µs CPU per request")
    print(f"added by prompt  {best_prompt - best_chat:7.1f} µs")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--requests", type=int, default=20_000)
    parser.add_argument("--rounds", type=int, default=5)
    arguments = parser.parse_args()
    asyncio.run(main(arguments.requests, arguments.rounds))
