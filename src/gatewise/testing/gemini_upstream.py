"""``FakeGeminiUpstream``: a real HTTP server that speaks the Gemini API (Developer API, v1beta).

Routes (under ``/v1beta`` or ``/v1``): ``POST models/{model}:generateContent``,
``:streamGenerateContent`` (SSE with ``?alt=sse``, else one streamed JSON array),
``:batchEmbedContents``, ``:embedContent``; ``GET models`` and ``GET models/{model}``.
Auth: ``x-goog-api-key`` or ``?key=`` (a wrong key is Google's 400
``API_KEY_INVALID``, a missing one its 403). What the model says lives in
``gemini_reply``, the byte shapes in ``gemini_wire``, request validation in
``gemini_checks``, answering conventions and misbehaviour in ``gemini_exchange``;
this module holds the fake's state and route logic.

Scenarios: ``fake.script(Scenario(...))`` (statuses with Google's error bodies,
``reset_after``, ``garbage``, ``slow_first_byte`` ...) or ``GeminiScenario(finish_reason=
"SAFETY")`` / ``GeminiScenario(block_reason="SAFETY")``; in-band ``[[fake:...]]`` markers
in the last user text (or an embedding input) work as with the OpenAI fake.
"""

from __future__ import annotations

import secrets
from collections.abc import Sequence

from gatewise.testing import gemini_wire as wire
from gatewise.testing.fake_base import FakeUpstream, RecordedRequest
from gatewise.testing.gemini_checks import embed_problem, request_problem
from gatewise.testing.gemini_exchange import GeminiExchange, GeminiScenario, parse_gemini_markers
from gatewise.testing.gemini_reply import GeminiReply, compose_reply, last_user_text, parts_text
from gatewise.testing.httpserver import Request, Response
from gatewise.testing.openai_exchange import Exchange
from gatewise.testing.openai_reply import MAX_DIMENSIONS, embedding_value
from gatewise.testing.scenario import MARKER_PREFIX_BYTES, MarkerError, Scenario

__all__ = ["DEFAULT_MODELS", "FakeGeminiUpstream", "GeminiScenario"]

DEFAULT_MODELS = wire.DEFAULT_MODELS
_VERSIONS = ("/v1beta/", "/v1/")
_GENERATE, _STREAM = "generateContent", "streamGenerateContent"
_BATCH_EMBED, _EMBED = "batchEmbedContents", "embedContent"
_ACTIONS = frozenset({_GENERATE, _STREAM, _BATCH_EMBED, _EMBED})
_LIST, _GET = "list", "get"


def route(path: str, method: str) -> tuple[str, str] | None:
    """(action, model) for a known route: an API method, ``list`` or ``get``."""
    for version in _VERSIONS:
        if path.startswith(version):
            rest = path[len(version) :]
            break
    else:
        return None
    if rest == "models":
        return (_LIST, "") if method == "GET" else None
    if not rest.startswith("models/") or len(rest) <= 7:
        return None
    model, colon, action = rest[7:].rpartition(":")
    if not colon:
        return (_GET, rest[7:]) if method == "GET" else None
    if method == "POST" and model and action in _ACTIONS:
        return action, model
    return None


class FakeGeminiUpstream(FakeUpstream):
    """A fake Gemini upstream. ``api_key`` makes it demand that key; ``stream_chunks`` is
    the number of text pieces per streamed answer; ``record=False`` turns recording off.
    ``script()`` takes ``Scenario`` or ``GeminiScenario``."""

    _memo: dict[tuple[str, bytes], tuple[GeminiReply, int]]

    def __init__(
        self,
        *,
        api_key: str | None = None,
        models: Sequence[str] = DEFAULT_MODELS,
        stream_chunks: int = 8,
        chunk_delay: float = 0.0,
        record: bool = True,
        max_recorded: int = 1000,
    ) -> None:
        super().__init__(api_key, models, stream_chunks, chunk_delay, record, max_recorded)
        self._models_body = wire.models_list(self.models)
        self._prefix = secrets.token_urlsafe(6).replace("-", "x").replace("_", "y")

    @property
    def base_url(self) -> str:
        """``url + "/v1beta"``: what a gateway's ``gemini`` provider takes as ``base_url``."""
        return self.url + "/v1beta"

    # -- request handling ---------------------------------------------------------
    async def handle(self, request: Request, response: Response) -> None:
        self.request_count += 1
        if self.record:
            self._recorded.append(RecordedRequest(request))
        found = route(request.path, request.method)
        request_id = b"%d" % next(self._ids)
        if found is None:
            exchange = GeminiExchange(request, response, request_id)
            message = f"Method not found: {request.method} {request.path}"
            return exchange.error(404, message)
        action, model = found
        sse = request.query.get("alt") == "sse"
        exchange = GeminiExchange(request, response, request_id, "gemini", action, model, sse=sse)
        if self.api_key is not None:
            received = exchange.received_key()
            if not received:
                return exchange.error(403, wire.MISSING_KEY_MESSAGE)
            if received != self.api_key:
                return exchange.send(400, wire.invalid_key_body())
        if action in (_GENERATE, _STREAM):
            await self._generate(exchange, model, stream=action == _STREAM)
        elif action in (_BATCH_EMBED, _EMBED):
            await self._embed(exchange, model, batch=action == _BATCH_EMBED)
        else:
            await self._models(exchange, model or "gemini", listing=action == _LIST)

    def _parse_markers(self, text: str) -> Scenario | None:
        return parse_gemini_markers(text)

    def _response_id(self) -> str:
        return f"{self._prefix}{next(self._ids):012x}"

    async def _generate(self, exchange: GeminiExchange, model: str, *, stream: bool) -> None:
        request = exchange.request
        memo_key: tuple[str, bytes] | None = None
        planned = None
        if not self._scenarios and MARKER_PREFIX_BYTES not in request.body:
            memo_key = (model, request.body)
            planned = self._memo.get(memo_key)
        scenario: Scenario | None = None
        if planned is None:
            body = exchange.json_body()
            if body is None:
                return
            try:
                scenario = self._scenario(request, lambda: [last_user_text(body)])
            except MarkerError as exc:
                return exchange.error(400, str(exc))
            if scenario is not None and await exchange.misbehave(scenario, model):
                return
            problem = request_problem(body)
            if problem is not None:
                return exchange.error(400, problem)
            finish = scenario.finish_reason if isinstance(scenario, GeminiScenario) else None
            content = scenario.content if scenario is not None else None
            n = (body.get("generationConfig") or {}).get("candidateCount") or 1
            planned = (compose_reply(body, content, finish), n)
            if memo_key is not None and scenario is None:
                self._remember(memo_key, planned)
        reply, n = planned
        block = scenario.block_reason if isinstance(scenario, GeminiScenario) else None
        if not stream:
            data = wire.generate_response(reply, n, model, self._response_id(), block)
            if scenario is None:
                return exchange.send(200, data)
            return await exchange.send_ok(data, scenario)
        chunks = self.stream_chunks
        if scenario is not None and scenario.chunks is not None:
            chunks = scenario.chunks
        events = wire.stream_events(reply, n, model, self._response_id(), chunks, block)
        frames = wire.sse_frames(events) if exchange.sse else wire.array_frames(events)
        await exchange.stream(frames, scenario, self.chunk_delay)

    async def _embed(self, exchange: GeminiExchange, model: str, *, batch: bool) -> None:
        body = exchange.json_body()
        if body is None:
            return
        items = body.get("requests") if batch else [{**body, "model": f"models/{model}"}]
        if not isinstance(items, list) or not items:
            return exchange.error(400, "* BatchEmbedContentsRequest.requests: is empty\n")
        texts = [
            parts_text((item.get("content") or {}).get("parts")) if isinstance(item, dict) else ""
            for item in items
        ]
        try:
            scenario = self._scenario(exchange.request, lambda: texts)
        except MarkerError as exc:
            return exchange.error(400, str(exc))
        if scenario is not None and await exchange.misbehave(scenario, model):
            return
        vectors = []
        default = wire.EMBEDDING_DIMENSIONS.get(model, 768)
        for i, (item, text) in enumerate(zip(items, texts, strict=True)):
            problem = embed_problem(item, model, f"requests[{i}]")
            if problem is None and not text:
                problem = f"* BatchEmbedContentsRequest.requests[{i}].content.parts: empty text\n"
            if problem is not None:
                return exchange.error(400, problem)
            dimensions = min(item.get("outputDimensionality") or default, MAX_DIMENSIONS)
            vectors.append(embedding_value(text.encode(), dimensions, False))
        data = wire.batch_embeddings(vectors) if batch else wire.single_embedding(vectors[0])
        await exchange.send_ok(data, scenario)

    def _model_body(self, model: str) -> bytes:
        return wire.model_json(model)

    def _unknown_model(self, exchange: Exchange, model: str) -> bytes:
        return wire.error_body(404, f"models/{model} is not found for API version v1beta.")
