"""``FakeOpenAIUpstream``: a real HTTP server that speaks OpenAI's and Azure OpenAI's wire formats.

Routes: ``/v1/chat/completions``, ``/v1/embeddings``, ``/v1/models[/{id}]`` (OpenAI);
``/openai/deployments/{deployment}/{chat/completions,embeddings}?api-version=...``
(Azure classic, ``api-key`` header) and ``/openai/v1/...`` (Azure v1, ``api-key`` or Bearer).
What the model says lives in ``openai_reply``, the byte shapes in ``openai_wire``, the
answering conventions and misbehaviour in ``openai_exchange``; this module holds the
fake's state (key, models, recorded requests, scripted scenarios) and the route logic.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable, Sequence
from typing import Any

import orjson

from gatewise.testing import openai_wire as wire
from gatewise.testing.fake_base import FakeUpstream, RecordedRequest
from gatewise.testing.httpserver import Request, Response
from gatewise.testing.openai_exchange import AZURE, CHAT, EMBEDDINGS, MODELS, Exchange, route
from gatewise.testing.openai_reply import (
    MAX_DIMENSIONS,
    Reply,
    compose_reply,
    count_tokens,
    embedding_value,
    last_user_text,
    message_text,
)
from gatewise.testing.scenario import MARKER_PREFIX_BYTES, MarkerError, Scenario

__all__ = ["DEFAULT_MODELS", "FakeOpenAIUpstream", "RecordedRequest"]

DEFAULT_MODELS = (
    "gpt-4o-mini",
    "gpt-4o",
    "gpt-4.1",
    "gpt-4.1-mini",
    "o4-mini",
    "text-embedding-3-small",
    "text-embedding-3-large",
    "text-embedding-ada-002",
)
_EMBEDDING_INPUT_ERROR = (
    "'$.input' is invalid. Please check the API reference: "
    "https://platform.openai.com/docs/api-reference."
)
_EMPTY_MESSAGES = (
    "Invalid 'messages': empty array. Expected an array with minimum length 1, "
    "but got an empty array instead."
)


class _ChatPlan:
    """A parsed, validated, answered chat request, minus the per-response id and time."""

    __slots__ = ("include_usage", "model", "n", "reply", "stream", "tail")

    def __init__(self, model: str, reply: Reply, n: int, stream: bool, include_usage: bool) -> None:
        self.model = model
        self.reply = reply
        self.n = n
        self.stream = stream
        self.include_usage = include_usage
        self.tail: bytes | None = None


class FakeOpenAIUpstream(FakeUpstream):
    """A fake OpenAI / Azure OpenAI upstream (see ``gatewise.testing`` for scenarios and markers).

    ``api_key`` makes it demand that key; ``stream_chunks`` is the default number of
    content deltas per streamed choice; ``record=False`` (or ``fake.record = False``)
    turns request recording off for benchmarks. ``url`` is the root URL (what Azure
    clients take as ``azure_endpoint``), ``base_url`` adds ``/v1``.
    """

    _memo: dict[tuple[str, str, bytes], _ChatPlan]

    def __init__(
        self,
        *,
        api_key: str | None = None,
        models: Sequence[str] = DEFAULT_MODELS,
        stream_chunks: int = 20,
        chunk_delay: float = 0.0,
        ratelimit_headers: bool = False,
        record: bool = True,
        max_recorded: int = 1000,
    ) -> None:
        super().__init__(api_key, models, stream_chunks, chunk_delay, record, max_recorded)
        self.ratelimit_headers = ratelimit_headers
        self._models_body = wire.models_list(self.models)
        self._prefix = secrets.token_hex(4)
        self._request_prefix = b"req_" + self._prefix.encode()

    @property
    def base_url(self) -> str:
        """``url + "/v1"``: what ``openai.OpenAI(base_url=...)`` takes."""
        return self.url + "/v1"

    # -- request handling -------------------------------------------------------
    async def handle(self, request: Request, response: Response) -> None:
        self.request_count += 1
        if self.record:
            self._recorded.append(RecordedRequest(request))
        request_id = b"%s%024x" % (self._request_prefix, next(self._ids))
        found = route(request.path, request.method)
        if found is None:
            exchange = Exchange(request, response, request_id)
            message = f"Invalid URL ({request.method} {request.path})"
            return exchange.send(404, wire.error_body(message, "invalid_request_error"))
        exchange = Exchange(request, response, request_id, *found, ratelimit=self.ratelimit_headers)
        if exchange.family == AZURE and "api-version" not in request.query:
            return exchange.send(404, wire.AZURE_NOT_FOUND)
        if self.api_key is not None:
            received = exchange.received_key()
            if received != self.api_key:
                return exchange.send(401, _auth_error(received))
        if exchange.kind == CHAT:
            await self._chat(exchange)
        elif exchange.kind == EMBEDDINGS:
            await self._embeddings(exchange)
        else:
            model = exchange.target or (self.models[0] if self.models else "gpt-4o-mini")
            await self._models(exchange, model, listing=exchange.kind == MODELS)

    async def _chat(self, exchange: Exchange) -> None:
        # Identical requests get identical answers: reuse the parsed-and-composed plan
        # (the bench sends one body over and over; this halves the fake's CPU per request).
        request = exchange.request
        memo_key: tuple[str, str, bytes] | None = None
        if not self._scenarios and MARKER_PREFIX_BYTES not in request.body:
            memo_key = (exchange.family, exchange.target, request.body)
            plan = self._memo.get(memo_key)
            if plan is not None:
                return await self._answer_chat(exchange, plan, None)
        body = exchange.json_body()
        if body is None:
            return
        messages = body.get("messages")
        admitted = await self._admit(
            exchange,
            body,
            lambda: [last_user_text(messages)] if isinstance(messages, list) else [],
        )
        if admitted is None:
            return
        scenario, model = admitted
        if messages is None:
            return exchange.bad_request(
                "Missing required parameter: 'messages'.", "messages", "missing_required_parameter"
            )
        if not isinstance(messages, list) or not messages:
            return exchange.bad_request(_EMPTY_MESSAGES, "messages", "empty_array")
        n = body.get("n")
        if n is None:
            n = 1
        elif not isinstance(n, int) or not 1 <= n <= 128:
            return exchange.bad_request(f"Invalid 'n': {n!r}.", "n", "invalid_value")
        options = body.get("stream_options")
        reply = compose_reply(body, _scripted_text(scenario, messages))
        if scenario is not None and scenario.pieces is not None and reply.tool_name is not None:
            reply.tool_arguments = "".join(scenario.pieces)
        plan = _ChatPlan(
            model,
            reply,
            n,
            body.get("stream") is True,
            isinstance(options, dict) and options.get("include_usage") is True,
        )
        if memo_key is not None and scenario is None and plan.reply.tool_name is None:
            self._remember(memo_key, plan)
        await self._answer_chat(exchange, plan, scenario)

    async def _answer_chat(
        self, exchange: Exchange, plan: _ChatPlan, scenario: Scenario | None
    ) -> None:
        completion_id = f"chatcmpl-{self._prefix}{next(self._ids):020x}"
        created = int(time.time())
        if not plan.stream:
            tail = plan.tail
            if tail is None:
                call_prefix = f"call_{completion_id[9:]}"
                tail = wire.chat_completion_tail(
                    plan.model, plan.reply, plan.n, exchange.azure, call_prefix
                )
                if plan.reply.tool_name is None:
                    plan.tail = tail
            data = wire.chat_completion(completion_id, created, tail)
            if scenario is None:
                return exchange.send(200, data)
            return await exchange.send_ok(data, scenario)
        encoder = wire.ChunkEncoder(completion_id, created, plan.model, plan.include_usage)
        chunks = self.stream_chunks
        if scenario is not None and scenario.chunks is not None:
            chunks = scenario.chunks
        pieces = scenario.pieces if scenario is not None else None
        events = encoder.events(plan.reply, plan.n, chunks, exchange.azure, pieces)
        await exchange.stream(events, scenario, self.chunk_delay)

    async def _admit(
        self, exchange: Exchange, body: dict[str, Any], marker_texts: Callable[[], list[Any]]
    ) -> tuple[Scenario | None, str] | None:
        """What every POST route checks first: markers, the model, scripted misbehaviour.

        None means the exchange has been answered (a 400, or the scenario's misbehaviour).
        """
        try:
            scenario = self._scenario(exchange.request, marker_texts)
        except MarkerError as exc:
            exchange.bad_request(str(exc))
            return None
        model = _model(body, exchange)
        if model is None:
            exchange.bad_request("you must provide a model parameter")
            return None
        if scenario is not None and await exchange.misbehave(scenario, model):
            return None
        return scenario, model

    async def _embeddings(self, exchange: Exchange) -> None:
        body = exchange.json_body()
        if body is None:
            return
        raw_input = body.get("input")
        admitted = await self._admit(
            exchange, body, lambda: raw_input if isinstance(raw_input, list) else [raw_input]
        )
        if admitted is None:
            return
        scenario, model = admitted
        inputs = _embedding_inputs(raw_input)
        if inputs is None:
            return exchange.bad_request(_EMBEDDING_INPUT_ERROR)
        dimensions = body.get("dimensions")
        if dimensions is None:
            dimensions = 3072 if model.endswith("-large") else 1536
        elif not isinstance(dimensions, int) or not 1 <= dimensions <= MAX_DIMENSIONS:
            message = f"Invalid 'dimensions': {dimensions!r}."
            return exchange.bad_request(message, "dimensions", "invalid_value")
        encoding = body.get("encoding_format") or "float"
        if encoding not in ("float", "base64"):
            message = (
                f"Invalid value for 'encoding_format': {encoding!r}. "
                "Supported values are: 'float' and 'base64'."
            )
            return exchange.bad_request(message, "encoding_format", "invalid_value")
        as_base64 = encoding == "base64"
        vectors = [embedding_value(key, dimensions, as_base64) for key, _ in inputs]
        tokens = sum(count for _, count in inputs)
        await exchange.send_ok(wire.embeddings_list(vectors, model, tokens), scenario)

    def _model_body(self, model: str) -> bytes:
        return orjson.dumps(wire.model_object(model))

    def _unknown_model(self, exchange: Exchange, model: str) -> bytes:
        message = f"The model '{model}' does not exist"
        return wire.error_body(message, "invalid_request_error", "model", "model_not_found")


def _scripted_text(scenario: Scenario | None, messages: list[Any]) -> str | None:
    """The reply text a scenario gives (``content``, else its ``pieces`` joined, else the
    system prompt it repeats), if any."""
    if scenario is None:
        return None
    if scenario.repeat_system_prompt:
        return " ".join(
            message_text(m.get("content"))
            for m in messages
            if isinstance(m, dict) and m.get("role") in ("system", "developer")
        )
    if scenario.content is None and scenario.pieces is not None:
        return "".join(scenario.pieces)
    return scenario.content


def _model(body: dict[str, Any], exchange: Exchange) -> str | None:
    """The body's model; Azure's classic routes fall back to the deployment in the path."""
    model = body.get("model")
    if isinstance(model, str) and model:
        return model
    return exchange.target if exchange.family == AZURE else None


def _auth_error(received: str | None) -> bytes:
    if not received:
        return wire.error_body(wire.MISSING_KEY_MESSAGE, "invalid_request_error")
    # The real API masks the key; the fake echoes it whole so tests can prove that
    # a gateway never relays an upstream error (and its credentials) verbatim.
    return wire.status_error(401, key=received)


def _embedding_inputs(raw: Any) -> list[tuple[bytes, int]] | None:
    """(vector key, token count) per input, or None where OpenAI rejects the input."""
    if isinstance(raw, str):
        return [(raw.encode(), max(1, count_tokens(raw)))] if raw else None
    if not isinstance(raw, list) or not raw:
        return None
    if all(type(item) is int for item in raw):
        return [(orjson.dumps(raw), len(raw))]
    result: list[tuple[bytes, int]] = []
    for item in raw:
        if isinstance(item, str) and item:
            result.append((item.encode(), max(1, count_tokens(item))))
        elif isinstance(item, list) and item and all(type(t) is int for t in item):
            result.append((orjson.dumps(item), len(item)))
        else:
            return None
    return result
