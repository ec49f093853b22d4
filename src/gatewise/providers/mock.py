"""Provider ``mock``: deterministic answers without any network.

For demos, for trying the gateway offline, and for users' own CI: the same
request always gets the same reply; latency, streamed chunk count and forced
errors are configurable. The reply echoes the last user message unless a fixed
``reply`` is configured. When tools are offered (and ``tool_choice`` is not
``none``) the mock calls one, as a model would: the forced tool, else the first,
with arguments that fit its JSON Schema; after a tool result it answers in text.
So agents and tool-using frameworks work against the quickstart's offline models.
"""

from __future__ import annotations

import asyncio
import hashlib
import itertools
import math
import struct
import time
from collections.abc import AsyncIterator
from typing import Any

import orjson

from gatewise.config.providers import MockProviderConfig
from gatewise.core.errors import UpstreamError
from gatewise.core.types import (
    ChatChunk,
    ChatRequest,
    ChatResponse,
    Choice,
    ChunkBatch,
    ChunkChoice,
    Delta,
    Embedding,
    EmbeddingRequest,
    EmbeddingResponse,
    EmbeddingUsage,
    FunctionCall,
    NativeBody,
    ResponseMessage,
    ToolCall,
    ToolCallDelta,
    Usage,
)
from gatewise.formats.openai import floats_to_base64
from gatewise.providers.schema_sample import sample_from_schema


def estimate_tokens(text: str) -> int:
    """A rough count (about four characters per token) for the mock's usage figures."""
    return max(1, math.ceil(len(text) / 4)) if text else 0


class MockProvider:
    kind = "mock"

    def __init__(self, name: str, config: MockProviderConfig) -> None:
        self.name = name
        self.config = config
        self._calls = itertools.count(1)

    async def start(self) -> None:
        return None

    async def close(self) -> None:
        return None

    # --- behaviour ------------------------------------------------------------

    async def _begin(self) -> None:
        if self.config.latency_ms:
            await asyncio.sleep(self.config.latency_ms / 1000.0)
        fail = self.config.fail
        if fail is not None and next(self._calls) % fail.every == 0:
            raise UpstreamError(
                fail.message,
                status=fail.status,
                type="rate_limit_error" if fail.status == 429 else "server_error",
                code="mock_failure",
                headers={"retry-after": "1"} if fail.status == 429 else None,
            )

    def _reply(self, request: ChatRequest) -> str:
        if self.config.reply is not None:
            return self.config.reply
        response_format = request.response_format
        if response_format is not None and response_format.get("type") == "json_schema":
            spec = response_format.get("json_schema")  # a document that fits (prompt endpoints)
            schema = spec.get("schema") if isinstance(spec, dict) else None
            return orjson.dumps(sample_from_schema(schema)).decode()
        last_user = next((m for m in reversed(request.messages) if m.role == "user"), None)
        text = last_user.text() if last_user else ""
        return f"Mock reply to: {text[:500]}" if text else "Mock reply."

    def _tool_call(self, request: ChatRequest) -> FunctionCall | None:
        """The tool to call and its arguments (JSON), or None for a text reply."""
        choice = request.tool_choice
        if not request.tools or request.messages[-1].role == "tool" or choice == "none":
            return None
        functions = [
            tool["function"] for tool in request.tools if isinstance(tool.get("function"), dict)
        ]
        if isinstance(choice, dict):
            forced = choice.get("function")
            name = forced.get("name") if isinstance(forced, dict) else None
            functions = [f for f in functions if f.get("name") == name] or functions
        if not functions:
            return None
        function = functions[0]
        arguments = sample_from_schema(function.get("parameters") or {"type": "object"})
        return FunctionCall(str(function.get("name", "tool")), orjson.dumps(arguments).decode())

    def _usage(self, request: ChatRequest, completion: str) -> Usage:
        prompt = sum(estimate_tokens(m.text()) + 3 for m in request.messages)
        output = estimate_tokens(completion)
        return Usage(prompt_tokens=prompt, completion_tokens=output, total_tokens=prompt + output)

    def _truncate(self, request: ChatRequest, text: str) -> tuple[str, str]:
        limit = request.output_token_limit
        if limit is not None and estimate_tokens(text) > limit:
            return text[: limit * 4], "length"
        return text, "stop"

    # --- the Provider protocol --------------------------------------------------

    async def chat(
        self, request: ChatRequest, model: str, native: NativeBody | None = None
    ) -> ChatResponse:
        await self._begin()
        created = int(time.time())
        tool = self._tool_call(request)
        choices = []
        text = ""
        for index in range(request.n or 1):
            if tool:
                call = ToolCall(id=f"call_mock{index}", function=tool)
                message = ResponseMessage(content=None, tool_calls=[call])
                choices.append(Choice(index, message, "tool_calls"))
            else:
                text, finish = self._truncate(request, self._reply(request))
                choices.append(Choice(index, ResponseMessage(content=text), finish))
        usage = self._usage(request, text)
        return ChatResponse(
            id=_completion_id(request), created=created, model=model, choices=choices, usage=usage
        )

    async def chat_stream(
        self, request: ChatRequest, model: str, native: NativeBody | None = None
    ) -> MockChunkStream:
        await self._begin()
        return MockChunkStream(self, request, model)

    async def embed(self, request: EmbeddingRequest, model: str) -> EmbeddingResponse:
        await self._begin()
        inputs: list[Any] = request.input if isinstance(request.input, list) else [request.input]
        if inputs and isinstance(inputs[0], int):
            inputs = [inputs]  # one input given as token ids
        dimensions = request.dimensions or self.config.embedding_dimensions
        data = []
        tokens = 0
        for index, item in enumerate(inputs):
            text = item if isinstance(item, str) else " ".join(map(str, item))
            tokens += estimate_tokens(text) if isinstance(item, str) else len(item)
            vector = _vector(text, dimensions)
            encoded = floats_to_base64(vector) if request.encoding_format == "base64" else vector
            data.append(Embedding(index=index, embedding=encoded))
        return EmbeddingResponse(
            data=data, model=model, usage=EmbeddingUsage(prompt_tokens=tokens, total_tokens=tokens)
        )


class MockChunkStream:
    def __init__(self, provider: MockProvider, request: ChatRequest, model: str) -> None:
        self._provider = provider
        self._request = request
        self._model = model

    def __aiter__(self) -> AsyncIterator[ChunkBatch]:
        return self._batches()

    async def _batches(self) -> AsyncIterator[ChunkBatch]:
        """Without a chunk delay everything after the first chunk goes out in one batch."""
        first = True
        pending: list[ChatChunk] = []
        async for chunk in self._chunks():
            if first:
                yield ChunkBatch([chunk])
                first = False
            elif self._provider.config.chunk_delay_ms:
                yield ChunkBatch([chunk])
            else:
                pending.append(chunk)
        if pending:
            yield ChunkBatch(pending)

    async def _chunks(self) -> AsyncIterator[ChatChunk]:
        provider, request = self._provider, self._request
        config = provider.config
        ident, created, model = _completion_id(request), int(time.time()), self._model

        def chunk(delta: Delta, finish: str | None = None) -> ChatChunk:
            return ChatChunk(
                id=ident, created=created, model=model, choices=[ChunkChoice(0, delta, finish)]
            )

        yield chunk(Delta(role="assistant", content=""))
        tool = provider._tool_call(request)
        text = ""
        if tool:
            call = ToolCallDelta(0, "call_mock0", "function", FunctionCall(tool.name, ""))
            yield chunk(Delta(tool_calls=[call]))
            arguments = FunctionCall(arguments=tool.arguments)
            yield chunk(Delta(tool_calls=[ToolCallDelta(0, function=arguments)]))
            text = tool.arguments or ""
            finish = "tool_calls"
        else:
            text, finish = provider._truncate(request, provider._reply(request))
            for piece in _split(text, config.stream_chunks):
                if config.chunk_delay_ms:
                    await asyncio.sleep(config.chunk_delay_ms / 1000.0)
                yield chunk(Delta(content=piece))
        yield chunk(Delta(), finish)
        yield ChatChunk(
            id=ident,
            created=created,
            model=model,
            choices=[],
            usage=provider._usage(request, text),
        )

    async def aclose(self) -> None:
        return None


def _completion_id(request: ChatRequest) -> str:
    seed = "\x00".join(m.text() for m in request.messages).encode()
    return "chatcmpl-mock" + hashlib.blake2b(seed, digest_size=8).hexdigest()


def _split(text: str, parts: int) -> list[str]:
    if not text:
        return [""]
    size = max(1, math.ceil(len(text) / parts))
    return [text[i : i + size] for i in range(0, len(text), size)]


def _vector(text: str, dimensions: int) -> list[float]:
    """A deterministic unit vector derived from the text."""
    digest = b""
    counter = 0
    while len(digest) < dimensions * 4:
        digest += hashlib.sha256(f"{counter}:{text}".encode()).digest()
        counter += 1
    raw = struct.unpack(f"<{dimensions}I", digest[: dimensions * 4])
    values = [(v / 0xFFFFFFFF) * 2 - 1 for v in raw]
    norm = math.sqrt(sum(v * v for v in values)) or 1.0
    return [v / norm for v in values]
