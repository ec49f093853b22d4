"""The thin ASGI layer the front doors stand on: request reading and response writing.

No framework on the hot path: each framework layer costs CPU on every
request (measured here: Starlette about 0.04-0.05 ms and FastAPI another
0.06-0.09 ms per request, against ~0.16 ms for the whole gateway). This
module gives the front doors just what they need: the body (with a size
limit), headers, JSON and SSE responses, and a watch that cancels the work
when the client goes away.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Awaitable, Callable, Mapping, MutableMapping
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

from gatewise.core.context import RequestContext, new_request_id
from gatewise.core.errors import InvalidRequestError, RequestTooLargeError
from gatewise.observe.traceparent import accept as accept_trace

if TYPE_CHECKING:
    from gatewise.identity.principal import Principal

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

JSON_CONTENT_TYPE = (b"content-type", b"application/json")
SSE_HEADERS = (
    (b"content-type", b"text/event-stream; charset=utf-8"),
    (b"cache-control", b"no-cache"),
    (b"x-accel-buffering", b"no"),
)
_VALID_REQUEST_ID = re.compile(rb"^[A-Za-z0-9._:\-]{1,128}$")
#: The ASGI extension of a server that takes header lines the app framed itself: the
#: ``http.response.start`` message may then carry them, as bytes, under this key
#: (``gatewise.http.protocol`` offers it; with any other server they go as pairs).
FRAMED_HEADERS = "gatewise.framed_headers"


#: The parameters of a path that has none (shared: read-only).
NO_PARAMS: Mapping[str, str] = MappingProxyType({})


class ClientDisconnected(Exception):
    """The client went away; nothing more can be sent."""


class HTTPRequest:
    """One inbound HTTP request as the front doors see it."""

    __slots__ = (
        "_receive",
        "ctx",
        "headers",
        "method",
        "params",
        "path",
        "principal",
        "query",
        "scope",
        "watch",
    )

    def __init__(self, scope: Scope, receive: Receive) -> None:
        self.scope = scope
        self._receive = receive
        self.method: str = scope["method"]
        self.path: str = scope["path"]
        self.query: bytes = scope.get("query_string", b"")
        self.headers: dict[bytes, bytes] = dict(scope["headers"])
        supplied = self.headers.get(b"x-request-id")
        request_id = (
            supplied.decode("ascii")
            if supplied and _VALID_REQUEST_ID.match(supplied)
            else new_request_id()
        )
        self.ctx = RequestContext(request_id, self.method, self.path)
        self.ctx.headers = self.headers
        traceparent = self.headers.get(b"traceparent")
        if traceparent is not None:  # W3C trace context (a malformed one is ignored)
            accept_trace(self.ctx, traceparent, self.headers.get(b"tracestate"))
        #: The authenticated caller (set by the app before the handler runs; None for
        #: public routes).
        self.principal: Principal | None = None
        #: The path's parameters (``/v1/models/{model}`` ...), set by the route table.
        self.params: Mapping[str, str] = NO_PARAMS
        extensions = scope.get("extensions")
        if extensions and FRAMED_HEADERS in extensions:
            self.ctx.framed_headers = True
        client = scope.get("client")
        if client:
            self.ctx.client_ip = client[0]
        self.watch: DisconnectWatch | None = None

    def header(self, name: bytes) -> str | None:
        """A header by its lower-case name (the last one wins when repeated)."""
        value = self.headers.get(name)
        return value.decode("latin-1") if value is not None else None

    async def body(self, limit: int) -> bytes:
        """The whole body, refusing (413) anything over ``limit`` bytes."""
        declared = self.headers.get(b"content-length")
        if declared is not None:
            try:
                length = int(declared)
            except ValueError:
                raise InvalidRequestError("The Content-Length header is not a number.") from None
            if length > limit:
                raise _too_large(limit)
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await self._receive()
            if message["type"] == "http.disconnect":
                raise ClientDisconnected()
            chunk = message.get("body", b"")
            if chunk:
                size += len(chunk)
                if size > limit:
                    raise _too_large(limit)
                chunks.append(chunk)
            if not message.get("more_body", False):
                break
        return chunks[0] if len(chunks) == 1 else b"".join(chunks)

    def start_watch(self) -> DisconnectWatch:
        """Watch for the client leaving (call after the body was read, and after the call
        was opened: a streamed call, ``ctx.stream``, is watched from the start)."""
        self.watch = DisconnectWatch(self._receive, grace=0.0 if self.ctx.stream else None)
        return self.watch

    def stop_watch(self) -> None:
        if self.watch is not None:
            self.watch.stop()

    @property
    def disconnected(self) -> bool:
        return self.watch is not None and self.watch.disconnected


def _too_large(limit: int) -> RequestTooLargeError:
    return RequestTooLargeError(
        f"The request body is larger than this gateway accepts ({limit} bytes)."
    )


class DisconnectWatch:
    """Cancels the handling task when the client disconnects mid-request.

    That cancellation propagates into the upstream call, which closes its
    connection: a client that goes away stops the (paid) upstream work.

    Watching costs a task per request, so it starts only once the request has
    lived ``GRACE`` seconds: a request that finishes sooner pays for one timer,
    and one that waits on a model (seconds) is watched for nearly all its life.
    A stream is watched at once (``grace=0``): it is long anyway, and it holds
    what the next call may need (a concurrency slot) until its end is seen.
    """

    GRACE = 0.05

    __slots__ = ("_active", "_owner", "_receive", "_task", "_timer", "disconnected")

    def __init__(self, receive: Receive, *, grace: float | None = None) -> None:
        self.disconnected = False
        self._active = True
        self._receive = receive
        self._owner = asyncio.current_task()
        self._task: asyncio.Task[None] | None = None
        self._timer: asyncio.TimerHandle | None = None
        if grace == 0.0:
            self._start()
        else:
            self._timer = asyncio.get_running_loop().call_later(
                self.GRACE if grace is None else grace, self._start
            )

    def _start(self) -> None:
        self._timer = None
        if self._active:
            self._task = asyncio.ensure_future(self._watch())

    async def _watch(self) -> None:
        while True:
            message = await self._receive()
            if message["type"] == "http.disconnect":
                if self._active and self._owner is not None:
                    self.disconnected = True
                    self._owner.cancel()
                return

    def stop(self) -> None:
        """Stop watching: call before sending the final bytes of the response."""
        self._active = False
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self._task is not None:
            self._task.cancel()
            self._task = None


def response_headers(
    ctx: RequestContext, extra: dict[str, str] | None = None
) -> list[tuple[bytes, bytes]]:
    """The gateway's headers of every response (the rate headers come with ``response_start``)."""
    headers = [(b"x-request-id", ctx.request_id.encode("ascii"))]
    if ctx.deployment is not None:
        headers += routing_headers(ctx)
    if ctx.cache is not None:  # hit, miss or bypass (``cache.step``)
        headers.append((b"x-gatewise-cache", ctx.cache.encode("ascii")))
    if extra:
        headers.extend((k.encode("latin-1"), v.encode("latin-1")) for k, v in extra.items())
    return headers


def routing_headers(ctx: RequestContext) -> list[tuple[bytes, bytes]]:
    """Which deployment answered, on which provider, after how many attempts."""
    provider = ""
    for attempt in reversed(ctx.attempts):
        if attempt.deployment == ctx.deployment:
            provider = attempt.provider
            break
    return [
        (b"x-gatewise-deployment", (ctx.deployment or "").encode("latin-1")),
        (b"x-gatewise-provider", provider.encode("latin-1")),
        (b"x-gatewise-attempts", str(len(ctx.attempts)).encode("ascii")),
    ]


def response_start(ctx: RequestContext, status: int, headers: list[tuple[bytes, bytes]]) -> Message:
    """The ``http.response.start`` message, with ``ctx``'s rate headers: framed lines for a
    server that takes them, pairs added to ``headers`` for any other."""
    message: Message = {"type": "http.response.start", "status": status, "headers": headers}
    rate_headers = ctx.rate_headers
    if rate_headers:
        if ctx.framed_headers:
            message[FRAMED_HEADERS] = rate_headers
        else:
            headers.extend(header_pairs(rate_headers))
    return message


def header_pairs(lines: bytes) -> list[tuple[bytes, bytes]]:
    """Framed header lines (``name: value\\r\\n`` each) as ASGI ``(name, value)`` pairs."""
    pairs = []
    for line in lines.split(b"\r\n"):
        if line:
            name, _, value = line.partition(b": ")
            pairs.append((name, value))
    return pairs


async def send_json(
    send: Send,
    status: int,
    body: bytes,
    ctx: RequestContext,
    extra_headers: dict[str, str] | None = None,
) -> None:
    headers = response_headers(ctx, extra_headers)
    headers.append(JSON_CONTENT_TYPE)
    headers.append((b"content-length", str(len(body)).encode("ascii")))
    ctx.status = status
    await send(response_start(ctx, status, headers))
    await send({"type": "http.response.body", "body": body})


async def start_event_stream(send: Send, ctx: RequestContext) -> None:
    headers = response_headers(ctx)
    headers.extend(SSE_HEADERS)
    await send(response_start(ctx, 200, headers))


async def send_event_data(send: Send, data: bytes, *, last: bool = False) -> None:
    try:
        await send({"type": "http.response.body", "body": data, "more_body": not last})
    except OSError as exc:  # uvicorn raises ClientDisconnect (an OSError) on a closed socket
        raise ClientDisconnected() from exc
