"""One prompt call: check the input, render the messages, walk the corridor, check the answer.

The front door (``http/prompts.py``) and the test runner (``prompts/testing.py``)
share this, so a prompt test exercises what production serves. The rendered request
is an ordinary canonical ``ChatRequest``: keys, access, limits, guardrails, routing,
usage and records apply to it unchanged. An answer that must match an output schema
and does not gets one repair call: the model sees its own answer and the validation
error; both calls' tokens and cost are recorded on the request.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import orjson

from gatewise.core.context import RequestContext
from gatewise.core.errors import GatewayError, InvalidRequestError
from gatewise.core.types import ChatRequest, Message, Usage
from gatewise.corridor.chain import Corridor
from gatewise.prompts.registry import PromptVersion
from gatewise.prompts.template import render

if TYPE_CHECKING:
    from gatewise.identity.principal import Principal

#: Decisions a prompt call adds (records, logs and the outcome counters read them).
REPAIRED = "prompt:repaired"
SCHEMA_FAILED = "prompt:schema_failed"
_REPAIR = (
    "Your answer did not match the required JSON Schema: {problem}. "
    "Answer again with only a JSON document that matches the schema."
)


class OutputSchemaError(GatewayError):
    """The model's answer did not match the prompt's output schema, even after a repair."""

    status = 502
    type = "upstream_error"
    code = "output_schema_mismatch"


def chat_request(
    version: PromptVersion, variables: Mapping[str, Any], *, stream: bool = False
) -> ChatRequest:
    """The canonical request for ``variables`` (the body, without ``stream``); a bad
    input is a 400 that names the field, before any model is called."""
    problem = version.inputs.problem(variables)
    if problem is not None:
        field, message = problem
        shown = f"'{field}' " if field else ""
        raise InvalidRequestError(
            f"Invalid input {shown}for prompt `{version.name}`: {message}.",
            param=field or None,
            code="invalid_input",
        )
    text = render(version.template, variables, version.name)
    messages = [Message(role="user", content=text)]
    system = version.system_text
    if system is None and version.system is not None:
        system = render(version.system, variables, version.name)
    if system is not None:
        messages.insert(0, Message(role="system", content=system))
    limit = version.config.limits.max_input_chars
    if limit is not None and sum(len(m.text()) for m in messages) > limit:
        raise InvalidRequestError(
            f"The rendered prompt is longer than `{version.name}` allows ({limit} characters).",
            code="input_too_long",
        )
    return ChatRequest(
        model=version.config.model, messages=messages, stream=stream or None, **version.parameters
    )


def note(ctx: RequestContext, version: PromptVersion) -> None:
    """Say on the request which prompt version serves it."""
    ctx.operation = "prompt"
    ctx.prompt = version.name
    ctx.prompt_version = version.version
    ctx.decisions.append(version.decision)


def parse_output(version: PromptVersion, text: str) -> tuple[Any, str | None]:
    """The answer as JSON and what is wrong with it (None: it matches the schema)."""
    check = version.output
    assert check is not None
    try:
        document = orjson.loads(text.strip() or b"null")
    except orjson.JSONDecodeError:
        return None, "the answer is not JSON"
    problem = check.problem(document)
    if problem is None:
        return document, None
    field, message = problem
    return document, f"'{field}' {message}" if field else message


async def answer(
    corridor: Corridor,
    ctx: RequestContext,
    principal: Principal | None,
    version: PromptVersion,
    request: ChatRequest,
) -> tuple[str, Any]:
    """The model's text and (with an output schema) its parsed, valid JSON."""
    profile = version.config.guardrail_profile
    response = await corridor.chat(corridor.open(ctx, principal, request, profile=profile))
    text = _text(response.choices)
    if version.output is None:
        return text, None
    document, problem = parse_output(version, text)
    if problem is None:
        return text, document
    ctx.decisions.append(REPAIRED)
    first_usage, first_cost = ctx.usage, ctx.cost_micros
    repair = ChatRequest(
        model=request.model,
        messages=[
            *request.messages,
            Message(role="assistant", content=text),
            Message(role="user", content=_REPAIR.format(problem=problem)),
        ],
        **version.parameters,
    )
    try:
        response = await corridor.chat(corridor.open(ctx, principal, repair, profile=profile))
    finally:
        ctx.usage = _added(first_usage, ctx.usage)
        if first_cost is not None or ctx.cost_micros is not None:
            ctx.cost_micros = (first_cost or 0) + (ctx.cost_micros or 0)
    text = _text(response.choices)
    document, problem = parse_output(version, text)
    if problem is not None:
        ctx.decisions.append(SCHEMA_FAILED)
        raise OutputSchemaError(
            f"The model's answer did not match the output schema of `{version.name}` "
            f"after a repair attempt: {problem}."
        )
    return text, document


def _text(choices: list[Any]) -> str:
    return (choices[0].message.content or "") if choices else ""


def _added(first: Usage | None, second: Usage | None) -> Usage | None:
    if first is None or second is None:
        return second or first
    return Usage(
        prompt_tokens=first.prompt_tokens + second.prompt_tokens,
        completion_tokens=first.completion_tokens + second.completion_tokens,
        total_tokens=first.total_tokens + second.total_tokens,
    )
