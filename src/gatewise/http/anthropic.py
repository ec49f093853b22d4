"""The Anthropic front door: ``POST /v1/messages`` and ``POST /v1/messages/count_tokens``.

Anthropic clients (``anthropic.Anthropic(base_url=<gateway root>)``) reach every
configured model, whatever its upstream: requests are translated to canonical
form (``anthropic_request``), answers back to Messages JSON or Anthropic's SSE
sequence (``anthropic_response``, ``anthropic_stream``), and errors use
Anthropic's envelope with ``request-id`` and ``x-request-id`` headers so the SDK
raises the right exception and shows the id.

Credentials in ``x-api-key`` or ``Authorization: Bearer`` are both accepted
(identity is checked by the pipeline once it exists, not here);
``anthropic-version`` and ``anthropic-beta`` are accepted and ignored: the door
speaks the 2023-06-01 shape, which every version since extends compatibly.
"""

from __future__ import annotations

import asyncio
import logging

from gatewise.core import tokens
from gatewise.core.context import RequestContext
from gatewise.core.errors import GatewayError, UpstreamUnavailableError
from gatewise.core.pipeline import Pipeline
from gatewise.core.types import ChatRequest, JSONObject
from gatewise.formats.openai import parse_json_object
from gatewise.http.anthropic_request import Translation, parse_request
from gatewise.http.anthropic_response import (
    encode_message,
    error_body,
    message_id,
    stream_error_event,
)
from gatewise.http.anthropic_stream import AnthropicStreamEncoder
from gatewise.http.asgi import (
    SSE_HEADERS,
    ClientDisconnected,
    HTTPRequest,
    Send,
    response_headers,
    response_start,
    send_event_data,
    send_json,
)
from gatewise.http.errors import openai_error_headers

log = logging.getLogger("gatewise")

# Counting a prompt this large takes long enough to move off the event loop.
_COUNT_IN_THREAD_BYTES = 256 * 1024


class AnthropicFrontDoor:
    def __init__(self, pipeline: Pipeline, max_body_bytes: int) -> None:
        self.pipeline = pipeline
        self.max_body_bytes = max_body_bytes

    async def send_error(self, send: Send, request: HTTPRequest, error: GatewayError) -> None:
        ctx = request.ctx
        ctx.error_type = error.type
        headers = openai_error_headers(error)  # retry-after(-ms), x-should-retry ...
        headers["request-id"] = ctx.request_id
        await send_json(send, error.status, error_body(error, ctx.request_id), ctx, headers)

    def _translate(
        self, ctx: RequestContext, data: JSONObject, *, count_only: bool
    ) -> tuple[Translation, str]:
        """The canonical request and the upstream model name used for token counts.

        Anthropic-only parameters are kept only when every deployment of the model
        is an Anthropic upstream (see ``anthropic_request``): anything else would
        answer 400 to them. Unknown models fail here with 404 ``not_found_error``.
        """
        model = data.get("model")
        native = False
        upstream_model = model if isinstance(model, str) else ""
        if isinstance(model, str):
            targets = self.pipeline.resolve(ctx, model).targets
            native = all(target.provider.kind == "anthropic" for target in targets)
            upstream_model = targets[0].model
        return parse_request(data, native=native, count_only=count_only), upstream_model

    # --- POST /v1/messages --------------------------------------------------------

    async def messages(self, request: HTTPRequest, send: Send) -> None:
        ctx = request.ctx
        ctx.operation = "chat"
        ctx.wire = "anthropic"
        data = parse_json_object(await request.body(self.max_body_bytes))
        translation, upstream_model = self._translate(ctx, data, count_only=False)
        if translation.dropped:
            ctx.decisions.append("anthropic:dropped:" + ",".join(translation.dropped))
        chat = translation.chat
        watch = request.start_watch()
        try:
            if chat.stream:
                ctx.stream = True
                await self._stream(request, chat, upstream_model, send)
                return
            response = await self.pipeline.chat(ctx, chat)
            watch.stop()
            body = encode_message(response, chat.model, message_id(ctx.request_id))
            await send_json(send, 200, body, ctx, {"request-id": ctx.request_id})
        finally:
            watch.stop()

    async def _stream(
        self, request: HTTPRequest, chat: ChatRequest, upstream_model: str, send: Send
    ) -> None:
        ctx = request.ctx
        stream = await self.pipeline.chat_stream(ctx, chat)
        encoder = AnthropicStreamEncoder(
            chat.model,
            message_id(ctx.request_id),
            tokens.quick_count_request(chat, upstream_model),
            lambda text: tokens.quick_count_text(text, upstream_model),
        )
        try:
            headers = response_headers(ctx, {"request-id": ctx.request_id})
            headers.extend(SSE_HEADERS)
            await send(response_start(ctx, 200, headers))
            await send_event_data(send, encoder.start())
            async for batch in stream:
                data = encoder.encode(batch)
                if data:
                    await send_event_data(send, data)
        except ClientDisconnected:
            raise
        except GatewayError as error:
            await self._end_with_error(request, send, error)
            return
        except Exception:
            log.exception("stream failed", extra={"request_id": ctx.request_id})
            failure = UpstreamUnavailableError("The stream failed unexpectedly.")
            await self._end_with_error(request, send, failure)
            return
        finally:
            await stream.aclose()
            if encoder.usage is not None:
                ctx.usage = encoder.usage
        request.stop_watch()
        await send_event_data(send, encoder.finish(), last=True)

    async def _end_with_error(self, request: HTTPRequest, send: Send, error: GatewayError) -> None:
        """After the 200: Anthropic's ``error`` event, then the end of the stream."""
        ctx = request.ctx
        ctx.status, ctx.error_type = error.status, error.type
        request.stop_watch()
        await send_event_data(send, stream_error_event(error, ctx.request_id), last=True)

    # --- POST /v1/messages/count_tokens --------------------------------------------

    async def count_tokens(self, request: HTTPRequest, send: Send) -> None:
        """Input tokens counted offline with the model's encoding (an estimate for
        non-OpenAI models, see ``core.tokens``)."""
        ctx = request.ctx
        ctx.operation = "count_tokens"
        body = await request.body(self.max_body_bytes)
        translation, upstream_model = self._translate(ctx, parse_json_object(body), count_only=True)
        chat = translation.chat
        ctx.model = chat.model
        if len(body) > _COUNT_IN_THREAD_BYTES or not tokens.is_loaded(upstream_model):
            count = await asyncio.to_thread(tokens.count_request, chat, upstream_model)
        else:
            count = tokens.count_request(chat, upstream_model)
        payload = b'{"input_tokens":' + str(count).encode() + b"}"
        await send_json(send, 200, payload, ctx, {"request-id": ctx.request_id})
