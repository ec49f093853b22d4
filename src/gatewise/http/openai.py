"""The OpenAI front door: ``/v1/chat/completions``, ``/v1/embeddings``, ``/v1/models``.

Translates OpenAI JSON to canonical requests, runs them through the corridor,
and writes OpenAI JSON (or an SSE stream of chunks) back. While the call allows
raw relay and the upstream speaks OpenAI's format, the upstream's own bytes go
back as they are (fields the canonical types do not model survive). Errors use
OpenAI's envelope so the official SDKs raise the right exception.
"""

from __future__ import annotations

from gatewise.core.errors import GatewayError, UpstreamUnavailableError
from gatewise.core.types import ChatRequest, NativeBody
from gatewise.corridor.call import Call
from gatewise.corridor.chain import Corridor
from gatewise.formats import openai as wire
from gatewise.http.asgi import (
    HTTPRequest,
    Send,
    send_event_data,
    send_json,
    start_event_stream,
)
from gatewise.http.errors import (
    openai_error_body,
    openai_error_headers,
    openai_stream_error_event,
)

DONE = b"data: [DONE]\n\n"
# Says that the upstream reported no usage and the gateway counted it itself.
ESTIMATED_USAGE_HEADER = {"x-gatewise-usage-estimated": "true"}


class OpenAIFrontDoor:
    def __init__(self, corridor: Corridor, max_body_bytes: int) -> None:
        self.corridor = corridor
        self.max_body_bytes = max_body_bytes

    async def send_error(self, send: Send, request: HTTPRequest, error: GatewayError) -> None:
        request.ctx.error_type = error.type
        await send_json(
            send, error.status, openai_error_body(error), request.ctx, openai_error_headers(error)
        )

    # --- POST /v1/chat/completions ---------------------------------------------

    async def chat_completions(self, request: HTTPRequest, send: Send) -> None:
        ctx = request.ctx
        ctx.operation = "chat"
        body = await request.body(self.max_body_bytes)
        data = wire.parse_json_object(body)
        chat = wire.parse_chat_request(data)
        call = self.corridor.open(ctx, request.principal, chat, native=NativeBody("openai", data))
        watch = request.start_watch()
        try:
            if chat.stream:
                await self._stream_chat(request, call, chat, send)
                return
            response = await self.corridor.chat(call)
            watch.stop()
            headers = ESTIMATED_USAGE_HEADER if ctx.usage_estimated else None
            body = wire.encode_chat_response(response, relay_raw=call.relay_raw)
            await send_json(send, 200, body, ctx, headers)
        finally:
            watch.stop()

    async def _stream_chat(
        self, request: HTTPRequest, call: Call, chat: ChatRequest, send: Send
    ) -> None:
        ctx = request.ctx
        stream = await self.corridor.chat_stream(call)
        include_usage = chat.wants_usage_in_stream
        relay = call.relay_raw
        try:
            await start_event_stream(send, ctx)
            async for batch in stream:
                parts: list[bytes] = []
                raw = batch.raw if relay and batch.wire == "openai" else None
                for index, chunk in enumerate(batch.chunks):
                    if chunk.usage is not None and not chunk.choices and not include_usage:
                        continue  # asked upstream for accounting only (the corridor records it)
                    data = raw[index] if raw is not None else wire.encode_chunk(chunk)
                    parts += (b"data: ", data, b"\n\n")
                if parts:
                    await send_event_data(send, b"".join(parts))
        except GatewayError as error:
            ctx.status = error.status
            ctx.error_type = error.type
            request.stop_watch()
            await send_event_data(send, openai_stream_error_event(error), last=True)
            return
        except Exception:
            failure = UpstreamUnavailableError("The stream failed unexpectedly.")
            ctx.status, ctx.error_type = 500, "server_error"
            request.stop_watch()
            await send_event_data(send, openai_stream_error_event(failure), last=True)
            raise
        finally:
            await stream.aclose()
        request.stop_watch()
        await send_event_data(send, DONE, last=True)

    # --- POST /v1/embeddings ------------------------------------------------------

    async def embeddings(self, request: HTTPRequest, send: Send) -> None:
        ctx = request.ctx
        ctx.operation = "embeddings"
        body = await request.body(self.max_body_bytes)
        embedding_request = wire.parse_embedding_request(wire.parse_json_object(body))
        call = self.corridor.open(ctx, request.principal, embedding_request)
        watch = request.start_watch()
        try:
            response = await self.corridor.embeddings(call)
        finally:
            watch.stop()
        await send_json(send, 200, wire.encode(response), ctx)

    # --- GET /v1/models, GET /v1/models/{id} -------------------------------------

    async def list_models(self, request: HTTPRequest, send: Send) -> None:
        request.ctx.operation = "models"
        cards = self.corridor.models(request.principal)
        await send_json(send, 200, wire.encode({"object": "list", "data": cards}), request.ctx)

    async def retrieve_model(self, request: HTTPRequest, send: Send) -> None:
        request.ctx.operation = "models"
        card = self.corridor.model(request.principal, request.params["model"])
        await send_json(send, 200, wire.encode(card), request.ctx)
