"""``FakeAnthropicUpstream``: a real HTTP server that speaks Anthropic's Messages API.

Routes: ``POST /v1/messages`` (JSON or the exact SSE event sequence),
``POST /v1/messages/count_tokens``, ``GET /v1/models[/{id}]``. Requests need
``anthropic-version`` and, when the fake has an ``api_key``, that key in
``x-api-key``; bodies are validated like the real API does (``anthropic_checks``).
What the model says is in ``anthropic_reply``, the byte shapes in ``anthropic_wire``,
the answering conventions in ``anthropic_exchange``; this module holds the state
(key, models, recorded requests, scripted scenarios, prompt cache) and the routes.

Scenarios (``fake.script(Scenario(...))`` or ``[[fake:...]]`` markers in the last
user message) work as for the OpenAI fake; statuses answer Anthropic's error bodies
(429 with ``retry-after`` and ``anthropic-ratelimit-*``, 529 ``overloaded_error``),
and ``error_event_after=N`` sends a mid-stream ``error`` event after N events
(type ``error_type``, default ``overloaded_error``); ``redacted_thinking`` adds a
redacted-thinking block and ``citations`` a citation on the text block.

Thinking is checked like the real API checks it: with ``thinking`` on, a final
assistant turn with ``tool_use`` blocks must start with a thinking block, and a
thinking block must carry the signature the fake issued for its text.
"""

from __future__ import annotations

import itertools
import secrets
from collections.abc import Iterator, Sequence

import orjson

from gatewise.testing import anthropic_wire as wire
from gatewise.testing.anthropic_checks import check_request
from gatewise.testing.anthropic_exchange import ANTHROPIC, AnthropicExchange
from gatewise.testing.anthropic_reply import (
    PromptCache,
    compose_message,
    count_input_tokens,
    last_user_text,
)
from gatewise.testing.fake_base import FakeUpstream, RecordedRequest
from gatewise.testing.httpserver import Request, Response
from gatewise.testing.openai_exchange import Exchange
from gatewise.testing.scenario import MarkerError, Scenario

__all__ = ["DEFAULT_ANTHROPIC_MODELS", "FakeAnthropicUpstream"]

DEFAULT_ANTHROPIC_MODELS = (
    "claude-sonnet-4-6",
    "claude-opus-4-7",
    "claude-opus-4-6",
    "claude-haiku-4-5",
    "claude-haiku-4-5-20251001",
)
MESSAGES, COUNT_TOKENS, MODELS, MODEL = "messages", "count_tokens", "models", "model"
_ROUTES = {
    ("POST", "/v1/messages"): MESSAGES,
    ("POST", "/v1/messages/count_tokens"): COUNT_TOKENS,
    ("GET", "/v1/models"): MODELS,
}


class FakeAnthropicUpstream(FakeUpstream):
    """A fake Anthropic upstream (see the module docstring for routes and scenarios).

    ``api_key`` makes it demand that key; ``stream_chunks`` is the default number of
    text deltas per streamed message; ``record=False`` turns request recording off.
    ``url`` is the root URL: what ``anthropic.Anthropic(base_url=...)`` takes (no ``/v1``).
    """

    def __init__(
        self,
        *,
        api_key: str | None = None,
        models: Sequence[str] = DEFAULT_ANTHROPIC_MODELS,
        stream_chunks: int = 20,
        chunk_delay: float = 0.0,
        ratelimit_headers: bool = False,
        record: bool = True,
        max_recorded: int = 1000,
    ) -> None:
        super().__init__(api_key, models, stream_chunks, chunk_delay, record, max_recorded)
        self.ratelimit_headers = ratelimit_headers
        self.prompt_cache = PromptCache()
        self._models_body = wire.models_list(self.models)
        self._prefix = secrets.token_hex(4)
        self._request_prefix = b"req_011C" + self._prefix.encode()

    def reset(self) -> None:
        """Forget recorded requests, queued scenarios and cached prompt prefixes."""
        super().reset()
        self.prompt_cache.clear()

    # -- request handling -------------------------------------------------------
    async def handle(self, request: Request, response: Response) -> None:
        self.request_count += 1
        if self.record:
            self._recorded.append(RecordedRequest(request))
        request_id = b"%s%016x" % (self._request_prefix, next(self._ids))
        kind = _ROUTES.get((request.method, request.path))
        target = ""
        if kind is None and request.method == "GET" and request.path.startswith("/v1/models/"):
            kind, target = MODEL, request.path[len("/v1/models/") :]
        exchange = AnthropicExchange(
            request, response, request_id, ANTHROPIC, kind or "", target,
            ratelimit=self.ratelimit_headers,
        )  # fmt: skip
        if kind is None:
            return exchange.error(404, "not_found_error", "Not Found")
        if self.api_key is not None:
            received = exchange.received_key()
            if received != self.api_key:
                message = wire.INVALID_KEY_MESSAGE if received else wire.MISSING_KEY_MESSAGE
                return exchange.error(401, "authentication_error", message)
        if "anthropic-version" not in request.headers:
            return exchange.bad_request(wire.MISSING_VERSION_MESSAGE)
        if kind in (MESSAGES, COUNT_TOKENS):
            await self._messages(exchange, count_only=kind == COUNT_TOKENS)
        else:
            model = exchange.target or (self.models[0] if self.models else "claude-sonnet-4-6")
            await self._models(exchange, model, listing=kind == MODELS)

    async def _messages(self, exchange: AnthropicExchange, *, count_only: bool) -> None:
        body = exchange.json_body()
        if body is None:
            return
        messages = body.get("messages")
        try:
            scenario = self._scenario(
                exchange.request,
                lambda: [last_user_text(messages)] if isinstance(messages, list) else [],
            )
        except MarkerError as exc:
            return exchange.bad_request(str(exc))
        model: str = body["model"] if isinstance(body.get("model"), str) else ""
        if scenario is not None and await exchange.misbehave(scenario, model):
            return
        error = check_request(body, count_only=count_only)
        if error is not None:
            return exchange.bad_request(error)
        if count_only:
            tokens = orjson.dumps({"input_tokens": count_input_tokens(body)})
            return await exchange.send_ok(tokens, scenario)
        reply = compose_message(
            body,
            self.prompt_cache,
            scenario.content if scenario is not None else None,
            redacted_thinking=scenario is not None and scenario.redacted_thinking,
            citations=scenario is not None and scenario.citations,
        )
        message_id = f"msg_01{self._prefix}{next(self._ids):016x}"
        tool_ids = [f"toolu_01{self._prefix}{next(self._ids):016x}" for _ in reply.tool_calls]
        if body.get("stream") is not True:
            data = wire.message_body(message_id, model, reply, tool_ids)
            return await exchange.send_ok(data, scenario)
        chunks = self.stream_chunks
        if scenario is not None and scenario.chunks is not None:
            chunks = scenario.chunks
        events = wire.stream_events(message_id, model, reply, tool_ids, chunks)
        if scenario is not None and scenario.error_event_after is not None:
            events = _failing(events, scenario, exchange.rid)
        await exchange.stream(events, scenario, self.chunk_delay)

    def _model_body(self, model: str) -> bytes:
        return orjson.dumps(wire.model_object(model))

    def _unknown_model(self, exchange: Exchange, model: str) -> bytes:
        return wire.error_body("not_found_error", f"model: {model}", exchange.request_id.decode())


def _failing(events: Iterator[bytes], scenario: Scenario, request_id: str) -> Iterator[bytes]:
    """The first ``error_event_after`` events, then an ``error`` event (the stream ends)."""
    type_ = scenario.error_type or "overloaded_error"
    message = scenario.error_message or wire.message_for_type(type_)
    yield from itertools.islice(events, scenario.error_event_after)
    yield wire.error_event(type_, message, request_id)
