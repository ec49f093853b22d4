"""The OpenAI Responses API front door: ``/v1/responses`` and stored responses.

``POST /v1/responses`` runs on the canonical chat corridor, so it serves every
configured model; the translation lives in ``responses_request`` /
``responses_items`` (in) and ``responses_output`` / ``responses_stream`` (out).
Conversation state is the gateway's: responses are stored (unless
``store: false``) and ``previous_response_id`` rebuilds the whole
conversation from the store, so stateless upstreams work too. Every stored
response belongs to the caller's owner key; other owners get 404.

Not stored: responses created with ``store: false`` and failed responses.
Errors use OpenAI's envelope (the OpenAI door renders them).
"""

from __future__ import annotations

import time
from urllib.parse import parse_qs

import orjson

from gatewise.core.errors import (
    GatewayError,
    InvalidRequestError,
    NotFoundError,
    UpstreamUnavailableError,
)
from gatewise.core.types import JSONObject, Message
from gatewise.corridor.call import Call
from gatewise.corridor.chain import Corridor
from gatewise.formats.openai import parse_json_object
from gatewise.http.asgi import HTTPRequest, Send, send_event_data, send_json, start_event_stream
from gatewise.http.openai import OpenAIFrontDoor
from gatewise.http.responses_ids import ResponseIds, owner_key, response_id_of_item
from gatewise.http.responses_items import items_to_messages
from gatewise.http.responses_output import finish, new_response, output_items
from gatewise.http.responses_request import ResponsesRequest, parse_responses_request
from gatewise.http.responses_stream import ResponseStreamEncoder
from gatewise.store.responses import ResponseRepository, StoredResponse


class ResponsesFrontDoor:
    def __init__(
        self,
        corridor: Corridor,
        repository: ResponseRepository,
        max_body_bytes: int,
        errors: OpenAIFrontDoor,
    ) -> None:
        self.corridor = corridor
        self.repository = repository
        self.max_body_bytes = max_body_bytes
        self._errors = errors

    async def send_error(self, send: Send, request: HTTPRequest, error: GatewayError) -> None:
        await self._errors.send_error(send, request, error)

    # --- POST /v1/responses ----------------------------------------------------------

    async def create(self, request: HTTPRequest, send: Send) -> None:
        ctx = request.ctx
        ctx.operation = "responses"
        parsed = parse_responses_request(parse_json_object(await request.body(self.max_body_bytes)))
        owner = owner_key(request)
        history = await self._history(owner, parsed.previous_response_id)
        ids = ResponseIds()
        items = await self._resolve_references(owner, parsed.items)
        items = [item if "id" in item else {"id": ids.item(item["type"]), **item} for item in items]
        messages = items_to_messages(history + items)
        if parsed.instructions:
            messages.insert(0, Message(role="system", content=parsed.instructions))
        if not messages:
            raise InvalidRequestError("'input' must contain at least one item.", param="input")
        chat = parsed.chat
        chat.messages = messages
        call = self.corridor.open(ctx, request.principal, chat)
        response = new_response(ids, parsed.echo, int(time.time()))
        watch = request.start_watch()
        try:
            if parsed.stream:
                await self._stream(request, call, send, parsed, response, ids, owner, items)
                return
            result = await self.corridor.chat(call)
            reason = result.choices[0].finish_reason if result.choices else None
            finish(response, output_items(result, ids), reason, result.usage or ctx.usage)
            if parsed.store:
                await self._save(owner, parsed, response, items)
            watch.stop()
            await send_json(send, 200, orjson.dumps(response), ctx)
        finally:
            watch.stop()

    async def _stream(
        self,
        request: HTTPRequest,
        call: Call,
        send: Send,
        parsed: ResponsesRequest,
        response: JSONObject,
        ids: ResponseIds,
        owner: str,
        items: list[JSONObject],
    ) -> None:
        ctx = request.ctx
        stream = await self.corridor.chat_stream(call)
        encoder = ResponseStreamEncoder(response, ids)
        try:
            await start_event_stream(send, ctx)
            await send_event_data(send, encoder.start())
            async for batch in stream:
                data = encoder.feed(batch.chunks)
                if data:
                    await send_event_data(send, data)
            if encoder.usage is None:  # the upstream reported none: the corridor's estimate
                encoder.usage = ctx.usage
            tail = encoder.finish()
            if parsed.store:
                await self._save(owner, parsed, response, items)
        except GatewayError as error:
            ctx.status, ctx.error_type = error.status, error.type
            request.stop_watch()
            await send_event_data(send, _failed(encoder, error), last=True)
            return
        except Exception:
            failure = UpstreamUnavailableError("The stream failed unexpectedly.")
            ctx.status, ctx.error_type = 500, "server_error"
            request.stop_watch()
            await send_event_data(send, _failed(encoder, failure), last=True)
            raise
        finally:
            await stream.aclose()
        request.stop_watch()
        await send_event_data(send, tail, last=True)

    # --- conversation state ------------------------------------------------------------

    async def _history(self, owner: str, previous_id: str | None) -> list[JSONObject]:
        """The items of the conversation before this request, oldest first."""
        if previous_id is None:
            return []
        links = await self.repository.chain(owner, previous_id)
        if not links:
            raise NotFoundError(
                f"Previous response with id '{previous_id}' not found.",
                param="previous_response_id",
            )
        if links[0].previous_response_id is not None:
            raise NotFoundError(
                f"Response '{links[0].previous_response_id}', earlier in the conversation of "
                f"'{previous_id}', was deleted; the conversation cannot be continued.",
                param="previous_response_id",
            )
        items: list[JSONObject] = []
        for link in links:
            items += link.input_items
            items += link.output_items
        return items

    async def _resolve_references(self, owner: str, items: list[JSONObject]) -> list[JSONObject]:
        if not any(item["type"] == "item_reference" for item in items):
            return items
        loaded: dict[str, StoredResponse | None] = {}
        resolved: list[JSONObject] = []
        for index, item in enumerate(items):
            if item["type"] != "item_reference":
                resolved.append(item)
                continue
            item_id = item["id"]
            response_id = response_id_of_item(item_id)
            found = None
            if response_id is not None:
                if response_id not in loaded:
                    loaded[response_id] = await self.repository.get(owner, response_id)
                stored = loaded[response_id]
                if stored is not None:
                    candidates = stored.input_items + stored.output_items
                    found = next((c for c in candidates if c.get("id") == item_id), None)
            if found is None:
                raise InvalidRequestError(
                    f"Item with id '{item_id}' not found.", param=f"input[{index}].id"
                )
            resolved.append(dict(found))
        return resolved

    async def _save(
        self, owner: str, parsed: ResponsesRequest, response: JSONObject, items: list[JSONObject]
    ) -> None:
        output = response["output"]
        await self.repository.save(
            StoredResponse(
                id=response["id"],
                owner=owner,
                created_at=response["created_at"],
                model=parsed.model,
                status=response["status"],
                request=parsed.record,
                response={k: v for k, v in response.items() if k != "output"},
                input_items=items,
                output_items=output,
                previous_response_id=parsed.previous_response_id,
            )
        )

    # --- GET / DELETE /v1/responses/{id}[/input_items] -----------------------------------

    async def retrieve(self, request: HTTPRequest, send: Send) -> None:
        """``GET /v1/responses/{response_id}``"""
        stored = await self._stored(request)
        await send_json(send, 200, orjson.dumps(stored.to_response()), request.ctx)

    async def input_items(self, request: HTTPRequest, send: Send) -> None:
        """``GET /v1/responses/{response_id}/input_items``"""
        stored = await self._stored(request)
        body = _item_page(stored.input_items, parse_qs(request.query.decode("latin-1")))
        await send_json(send, 200, orjson.dumps(body), request.ctx)

    async def delete(self, request: HTTPRequest, send: Send) -> None:
        """``DELETE /v1/responses/{response_id}``"""
        request.ctx.operation = "responses"
        response_id = request.params["response_id"]
        if not await self.repository.delete(owner_key(request), response_id):
            raise _not_found(response_id)
        body = {"id": response_id, "object": "response", "deleted": True}
        await send_json(send, 200, orjson.dumps(body), request.ctx)

    async def _stored(self, request: HTTPRequest) -> StoredResponse:
        request.ctx.operation = "responses"
        if request.query and b"stream" in request.query:
            query = parse_qs(request.query.decode("latin-1"))
            if query.get("stream", [""])[-1].lower() == "true":
                raise InvalidRequestError(
                    "Streaming a stored response again is not supported by this gateway.",
                    param="stream",
                )
        response_id = request.params["response_id"]
        stored = await self.repository.get(owner_key(request), response_id)
        if stored is None:
            raise _not_found(response_id)
        return stored


def _not_found(response_id: str) -> NotFoundError:
    return NotFoundError(f"Response with id '{response_id}' not found.")


def _failed(encoder: ResponseStreamEncoder, error: GatewayError) -> bytes:
    # response.error.code is one of OpenAI's documented codes; the error event keeps ours.
    if error.status == 429:
        code = "rate_limit_exceeded"
    elif error.type == "guardrail_violation":
        code = "invalid_prompt"
    else:
        code = "server_error"
    return encoder.fail(code, error.code, error.message)


def _item_page(items: list[JSONObject], query: dict[str, list[str]]) -> JSONObject:
    """One page of ``GET /v1/responses/{id}/input_items`` (``limit``, ``order``, ``after``)."""
    try:
        limit = int(query.get("limit", ["20"])[-1])
    except ValueError:
        limit = 0
    if not 1 <= limit <= 100:
        raise InvalidRequestError("Invalid 'limit': use an integer from 1 to 100.", param="limit")
    order = query.get("order", ["desc"])[-1]
    if order not in ("asc", "desc"):
        raise InvalidRequestError("Invalid 'order': use 'asc' or 'desc'.", param="order")
    ordered = items if order == "asc" else items[::-1]
    start = 0
    after = query.get("after", [None])[-1]
    if after is not None:
        positions = [i for i, item in enumerate(ordered) if item.get("id") == after]
        if not positions:
            raise InvalidRequestError(f"No input item with id '{after}'.", param="after")
        start = positions[0] + 1
    page = ordered[start : start + limit]
    return {
        "object": "list",
        "data": page,
        "first_id": page[0].get("id") if page else None,
        "last_id": page[-1].get("id") if page else None,
        "has_more": start + limit < len(ordered),
    }
