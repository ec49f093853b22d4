"""The prompt front door: ``POST /api/<prompt>`` (and ``/v<N>``), ``GET /v1/prompts``.

An application posts the prompt's inputs (``{"message": ...}``, plus ``"stream":
true`` for SSE) and never sees the prompt. The door picks the version (pinned by
path, else the rollout), checks the caller may use it, validates the input (a 400
naming the field, before any model call), renders a canonical ``ChatRequest`` and
walks the same corridor as ``/v1/chat/completions``. The answer is ``{"text": ...}``,
or the parsed JSON document when the prompt has an output schema. Errors use
OpenAI's envelope; every answer says which prompt version served it, and a
deprecated version says so in ``Deprecation`` and ``Sunset`` headers.

Streams are SSE: ``data: {"delta": "..."}`` per piece of text, then (with an output
schema) ``data: {"output": {...}}`` once the whole answer checked out, then
``data: [DONE]``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import orjson

from gatewise.core.errors import (
    GatewayError,
    InvalidRequestError,
    NotFoundError,
    PermissionDeniedError,
    UpstreamUnavailableError,
)
from gatewise.core.types import ChatRequest
from gatewise.corridor.chain import Corridor
from gatewise.formats.openai import parse_json_object
from gatewise.http.asgi import (
    SSE_HEADERS,
    HTTPRequest,
    Send,
    response_headers,
    response_start,
    send_event_data,
    send_json,
)
from gatewise.http.errors import openai_error_body, openai_error_headers, openai_stream_error_event
from gatewise.http.prompts_openapi import describe_family, openapi_document
from gatewise.http.routes import Endpoint, Handler
from gatewise.identity.roles import Permission
from gatewise.prompts.outcomes import PromptOutcomes
from gatewise.prompts.registry import PromptFamily, PromptRegistry, PromptVersion
from gatewise.prompts.run import (
    SCHEMA_FAILED,
    OutputSchemaError,
    answer,
    chat_request,
    note,
    parse_output,
)

if TYPE_CHECKING:
    from gatewise.identity.directory import Directory
    from gatewise.identity.principal import Principal

DONE = b"data: [DONE]\n\n"
_STREAM = "stream"


class PromptFrontDoor:
    def __init__(
        self,
        corridor: Corridor,
        registry: PromptRegistry,
        max_body_bytes: int,
        outcomes: PromptOutcomes | None = None,
        directory: Callable[[], Directory] | None = None,
    ) -> None:
        self.corridor = corridor
        self.registry = registry
        self.max_body_bytes = max_body_bytes
        self.outcomes = outcomes
        self._directory = directory

    async def send_error(self, send: Send, request: HTTPRequest, error: GatewayError) -> None:
        request.ctx.error_type = error.type
        await send_json(
            send, error.status, openai_error_body(error), request.ctx, openai_error_headers(error)
        )

    def routes(self) -> list[tuple[str, Endpoint]]:
        """Each prompt at its path and each version at ``<path>/v<N>``, and the listings."""
        routes: list[tuple[str, Endpoint]] = [
            ("/v1/prompts", Endpoint({"GET": self.list_prompts}, self)),
            ("/v1/prompts/{name}", Endpoint({"GET": self.retrieve}, self)),
            ("/api/openapi.json", Endpoint({"GET": self.openapi}, self)),
        ]
        for family in self.registry.families.values():
            routes.append((family.path, Endpoint({"POST": self._serving(family, None)}, self)))
            for version in family.versions.values():
                handler = self._serving(family, version)
                routes.append((version.path, Endpoint({"POST": handler}, self)))
        return routes

    def _serving(self, family: PromptFamily, pinned: PromptVersion | None) -> Handler:
        async def serve(request: HTTPRequest, send: Send) -> None:
            await self.serve(request, send, family, pinned)

        return serve

    # --- POST /api/<prompt>[/v<N>] -----------------------------------------------------

    async def serve(
        self,
        request: HTTPRequest,
        send: Send,
        family: PromptFamily,
        pinned: PromptVersion | None,
    ) -> None:
        ctx = request.ctx
        ctx.operation = "prompt"
        principal = request.principal
        version = pinned
        if version is None:
            key = principal.key_id if family.sticky and principal is not None else None
            version = family.rollout.pick(key)
        note(ctx, version)
        self.check_access(principal, version)
        data = parse_json_object(await request.body(self.max_body_bytes))
        stream = data.pop(_STREAM, False)
        if type(stream) is not bool:
            raise InvalidRequestError("'stream' must be true or false.", param=_STREAM)
        chat = chat_request(version, data, stream=stream)
        if stream:
            ctx.stream = True
        watch = request.start_watch()
        try:
            if stream:
                await self._stream(request, send, version, chat)
                return
            text, document = await answer(self.corridor, ctx, principal, version, chat)
            watch.stop()
            body = orjson.dumps({"text": text} if version.output is None else document)
            await send_json(send, 200, body, ctx, version.headers)  # type: ignore[arg-type]
        finally:
            watch.stop()

    async def _stream(
        self, request: HTTPRequest, send: Send, version: PromptVersion, chat: ChatRequest
    ) -> None:
        ctx = request.ctx
        profile = version.config.guardrail_profile
        call = self.corridor.open(ctx, request.principal, chat, profile=profile)
        stream = await self.corridor.chat_stream(call)
        collected: list[str] | None = [] if version.output is not None else None
        try:
            headers = response_headers(ctx, version.headers)  # type: ignore[arg-type]
            headers.extend(SSE_HEADERS)
            await send(response_start(ctx, 200, headers))
            async for batch in stream:
                parts: list[bytes] = []
                for chunk in batch.chunks:
                    for choice in chunk.choices:
                        text = choice.delta.content
                        if choice.index == 0 and text:
                            parts += (b"data: ", orjson.dumps({"delta": text}), b"\n\n")
                            if collected is not None:
                                collected.append(text)
                if parts:
                    await send_event_data(send, b"".join(parts))
            if collected is not None:
                document, problem = parse_output(version, "".join(collected))
                if problem is not None:
                    ctx.decisions.append(SCHEMA_FAILED)
                    raise _schema_error(version, problem)
                final = b"data: " + orjson.dumps({"output": document}) + b"\n\n"
                await send_event_data(send, final)
        except GatewayError as error:
            ctx.status, ctx.error_type = error.status, error.type
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

    # --- who may use what --------------------------------------------------------------

    def check_access(self, principal: Principal | None, version: PromptVersion) -> None:
        """Raise a 403 unless ``principal`` may call the prompt: its role calls models, its
        allow-lists take ``prompt:<name>``, and an ``approval: required`` prompt has an
        approved subscription for the caller's app."""
        if principal is None:
            return
        if not principal.can(Permission.MODELS_CALL):
            raise PermissionDeniedError(f"Your role ({principal.role}) may not call prompts.")
        name = version.access_name
        if not principal.access.allows(name):
            raise PermissionDeniedError(
                f"You are not allowed to use the prompt `{version.name}`.",
                code="prompt_not_allowed",
            )
        if version.config.approval == "required":
            directory = self._directory() if self._directory is not None else None
            if directory is None or not directory.is_approved(principal.app_id, name):
                raise PermissionDeniedError(
                    f"The prompt `{version.name}` needs an approved subscription to `{name}` "
                    "for your app (POST /admin/v1/subscriptions).",
                    code="subscription_required",
                )

    def _may_use(self, principal: Principal | None, family: PromptFamily) -> bool:
        try:
            self.check_access(principal, family.latest)
        except PermissionDeniedError:
            return False
        return True

    def _visible(self, principal: Principal | None) -> list[PromptFamily]:
        return [f for f in self.registry.families.values() if self._may_use(principal, f)]

    # --- GET /v1/prompts, /v1/prompts/{name}, /api/openapi.json -----------------------

    async def list_prompts(self, request: HTTPRequest, send: Send) -> None:
        request.ctx.operation = "prompts"
        data = [describe_family(f) for f in self._visible(request.principal)]
        body = orjson.dumps({"object": "list", "data": data})
        await send_json(send, 200, body, request.ctx)

    async def retrieve(self, request: HTTPRequest, send: Send) -> None:
        request.ctx.operation = "prompts"
        name = request.params["name"]
        family = self.registry.families.get(name)
        if family is None or not self._may_use(request.principal, family):
            raise NotFoundError(f"The prompt `{name}` does not exist or you may not use it.")
        outcomes = self.outcomes
        described = describe_family(family)
        if outcomes is not None:
            for entry in described["versions"]:
                entry["outcomes"] = outcomes.of(name, entry["version"]).report()
        await send_json(send, 200, orjson.dumps(described), request.ctx)

    async def openapi(self, request: HTTPRequest, send: Send) -> None:
        request.ctx.operation = "prompts"
        document = openapi_document(self._visible(request.principal))
        await send_json(send, 200, orjson.dumps(document), request.ctx)


def _schema_error(version: PromptVersion, problem: str) -> GatewayError:
    return OutputSchemaError(
        f"The model's answer did not match the output schema of `{version.name}`: {problem}."
    )
