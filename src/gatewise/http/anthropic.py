"""The Anthropic front door: ``POST /v1/messages`` and ``POST /v1/messages/count_tokens``.

Anthropic clients (``anthropic.Anthropic(base_url=<gateway root>)``) reach every
configured model, whatever its upstream: requests are translated to canonical
form (``anthropic_request``), answers back to Messages JSON or Anthropic's SSE
sequence (``anthropic_response``, ``anthropic_stream``), and errors use
Anthropic's envelope with ``request-id`` and ``x-request-id`` headers so the SDK
raises the right exception and shows the id. The same handlers also answer at
``/messages`` and ``/v1/v1/messages`` (see ``runtime/generation.py``): clients
given a base URL with ``/v1`` append ``/messages`` or ``/v1/messages`` to it.

Pass-through: when an Anthropic upstream answers and the call allows raw relay
(no step may change output), the upstream's own body or events go to the client
as they are (its id and model, thinking blocks with signatures, citations,
``stop_sequence``, usage), and the provider sent the client's own body
(``NativeBody``). A streamed call decides once the stream is open, from the
deployment that answered (``Call.target``): relay, or encode from canonical
chunks. Failures after the 200 end with the door's own ``error`` event either way.

Credentials in ``x-api-key`` or ``Authorization: Bearer`` are both accepted;
``anthropic-version`` and ``anthropic-beta`` are accepted and ignored: the door
speaks the 2023-06-01 shape, which every version since extends compatibly.
"""

from __future__ import annotations

import asyncio
import logging

from gatewise.core import tokens
from gatewise.core.errors import GatewayError, UpstreamUnavailableError
from gatewise.core.types import ChatRequest, ChunkBatch, JSONObject, NativeBody, raw_of
from gatewise.corridor.call import Call
from gatewise.corridor.chain import Corridor
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
from gatewise.providers.base import Provider
from gatewise.routing.catalog import Route

log = logging.getLogger("gatewise")

# Counting a prompt this large takes long enough to move off the event loop.
_COUNT_IN_THREAD_BYTES = 256 * 1024


def relays_anthropic(provider: Provider) -> bool:
    """Whether ``provider``'s stream batches carry Anthropic events (``ChunkBatch.raw``)."""
    return getattr(provider, "wire", None) == "anthropic"


def relayed(batch: ChunkBatch) -> bytes:
    """A batch's own Anthropic events (one blob per upstream read)."""
    raw = batch.raw
    return b"".join(raw) if raw else b""


class AnthropicFrontDoor:
    def __init__(self, corridor: Corridor, max_body_bytes: int) -> None:
        self.corridor = corridor
        self.max_body_bytes = max_body_bytes

    async def send_error(self, send: Send, request: HTTPRequest, error: GatewayError) -> None:
        ctx = request.ctx
        ctx.error_type = error.type
        headers = openai_error_headers(error)  # retry-after(-ms), x-should-retry ...
        headers["request-id"] = ctx.request_id
        await send_json(send, error.status, error_body(error, ctx.request_id), ctx, headers)

    def _translate(self, data: JSONObject, *, count_only: bool) -> tuple[Translation, Route | None]:
        """The canonical request and the model's route (None when ``model`` is not a string:
        the translation names that field).

        Anthropic-only parameters are kept only when every deployment of the model
        is an Anthropic upstream (see ``anthropic_request``): anything else would
        answer 400 to them. Unknown models fail here with 404 ``not_found_error``.
        """
        model = data.get("model")
        route = None
        native = False
        if isinstance(model, str):
            route = self.corridor.resolve(model)
            native = all(target.provider.kind == "anthropic" for target in route.targets)
        return parse_request(data, native=native, count_only=count_only), route

    # --- POST /v1/messages --------------------------------------------------------

    async def messages(self, request: HTTPRequest, send: Send) -> None:
        ctx = request.ctx
        ctx.operation = "chat"
        ctx.wire = "anthropic"
        data = parse_json_object(await request.body(self.max_body_bytes))
        translation, route = self._translate(data, count_only=False)
        if translation.dropped:
            ctx.decisions.append("anthropic:dropped:" + ",".join(translation.dropped))
        chat = translation.chat
        native = NativeBody("anthropic", data)
        call = self.corridor.open(ctx, request.principal, chat, route=route, native=native)
        watch = request.start_watch()
        try:
            if chat.stream:
                await self._stream(request, call, send)
                return
            response = await self.corridor.chat(call)
            watch.stop()
            body = raw_of(response, "anthropic") if call.relay_raw else None
            if body is None:
                body = encode_message(response, chat.model, message_id(ctx.request_id))
            await send_json(send, 200, body, ctx, {"request-id": ctx.request_id})
        finally:
            watch.stop()

    async def _stream(self, request: HTTPRequest, call: Call, send: Send) -> None:
        ctx = request.ctx
        stream = await self.corridor.chat_stream(call)
        target = call.target
        encoder: AnthropicStreamEncoder | None = None
        if not (call.relay_raw and target is not None and relays_anthropic(target.provider)):
            encoder = AnthropicStreamEncoder(
                call.model, message_id(ctx.request_id), call.prompt_tokens()
            )
        try:
            headers = response_headers(ctx, {"request-id": ctx.request_id})
            headers.extend(SSE_HEADERS)
            await send(response_start(ctx, 200, headers))
            if encoder is not None:
                await send_event_data(send, encoder.start())
            async for batch in stream:
                data = encoder.encode(batch) if encoder is not None else relayed(batch)
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
        request.stop_watch()
        # A relayed stream is complete as it is (message_start ... message_stop).
        tail = encoder.finish(ctx.usage) if encoder is not None else b""
        await send_event_data(send, tail, last=True)

    async def _end_with_error(self, request: HTTPRequest, send: Send, error: GatewayError) -> None:
        """After the 200: Anthropic's ``error`` event, then the end of the stream."""
        ctx = request.ctx
        ctx.status, ctx.error_type = error.status, error.type
        request.stop_watch()
        await send_event_data(send, stream_error_event(error, ctx.request_id), last=True)

    # --- POST /v1/messages/count_tokens --------------------------------------------

    async def count_tokens(self, request: HTTPRequest, send: Send) -> None:
        """The prompt's input tokens: Anthropic's own count when the first deployment a call
        of this caller would try is an Anthropic upstream, else (or when it cannot answer)
        counted offline with the model's encoding (an estimate for non-OpenAI models, see
        ``core.tokens``), said so in ``x-gatewise-estimated: true``."""
        ctx = request.ctx
        ctx.operation = "count_tokens"
        body = await request.body(self.max_body_bytes)
        data = parse_json_object(body)
        translation, route = self._translate(data, count_only=True)
        chat = translation.chat
        ctx.model = chat.model
        assert route is not None  # the translation refused a model that is not a string
        self.corridor.authorize(request.principal, chat.model)
        headers = {"request-id": ctx.request_id}
        # Where a call of this caller could go (residency and health apply): the prompt
        # goes to no deployment a call could not.
        plan = self.corridor.plan(ctx, request.principal, chat, route)
        first = plan[0]
        counter = getattr(first.provider, "count_tokens", None)
        count = None
        if counter is not None:
            try:
                count = await counter(data, first.model)
            except GatewayError as error:
                if error.status < 500 and error.status != 429:
                    raise  # the upstream's verdict on the request itself (a 400 ...)
                log.warning("count_tokens upstream unavailable, counting locally: %s", error)
        if count is None:
            count = await self._count_locally(chat, first.model, len(body))
            headers["x-gatewise-estimated"] = "true"
        payload = b'{"input_tokens":' + str(count).encode() + b"}"
        await send_json(send, 200, payload, ctx, headers)

    async def _count_locally(self, chat: ChatRequest, upstream_model: str, size: int) -> int:
        if size > _COUNT_IN_THREAD_BYTES or not tokens.is_loaded(upstream_model):
            return await asyncio.to_thread(tokens.count_request, chat, upstream_model)
        return tokens.count_request(chat, upstream_model)
