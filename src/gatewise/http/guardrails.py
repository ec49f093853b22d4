"""``POST /v1/guardrails/check``: the guardrails as a service, for applications and for
evaluation.

The body is ``{"input": "<text>" | [<chat messages>], "role": "user" | "assistant" |
"tool" (default "user"), "profile": "<name>" (optional)}``. Text written by an
assistant is read by the profile's output rules, everything else by its input
rules. The answer says whether anything was found, the strongest action taken
(``allow`` < ``flag`` < ``mask`` < ``block``), each result with its spans
(code-point offsets into the text as sent; ``index`` names the message of a
list), and the text after masking. A check needs a key like any model call and
counts against the caller's request limits.
"""

from __future__ import annotations

from typing import Any, cast

import orjson

from gatewise.core.errors import GatewayError, InvalidRequestError
from gatewise.formats.openai import parse_json_object
from gatewise.guardrails.base import TextRole
from gatewise.guardrails.masking import Vault, apply, mask_spans
from gatewise.guardrails.rules import Inspection, Profile, inspect
from gatewise.guardrails.setup import Guardrails
from gatewise.http.asgi import HTTPRequest, Send, send_json
from gatewise.http.openai import OpenAIFrontDoor
from gatewise.policies.traffic import TrafficControl
from gatewise.pricing.catalog import Price

ROLES = ("system", "developer", "user", "assistant", "tool")
SEVERITY = {"allow": 0, "flag": 1, "mask": 2, "block": 3}
#: The model name a check is counted under by limits that name models.
CHECK_MODEL = "guardrails/check"
#: What a check costs: no tokens of any model (a USD budget admits it at no cost).
FREE = Price()


class GuardrailCheckEndpoint:
    def __init__(
        self,
        guardrails: Guardrails,
        traffic: TrafficControl | None,
        max_body_bytes: int,
        errors: OpenAIFrontDoor,
    ) -> None:
        self.guardrails = guardrails
        self.traffic = traffic
        self.max_body_bytes = max_body_bytes
        self._errors = errors

    async def send_error(self, send: Send, request: HTTPRequest, error: GatewayError) -> None:
        await self._errors.send_error(send, request, error)

    async def check(self, request: HTTPRequest, send: Send) -> None:
        ctx = request.ctx
        ctx.operation = "guardrails.check"
        body = parse_json_object(await request.body(self.max_body_bytes))
        texts, as_list = _texts(body)
        profile = self._profile(body.get("profile"))
        admission = None
        traffic, principal = self.traffic, request.principal
        if traffic is not None and principal is not None:
            charge = traffic.charge(ctx, principal, CHECK_MODEL, lambda: 0, 0, FREE)
            if charge is not None:
                admission = await traffic.decide(ctx, charge)
        try:
            answer = await _check(profile, texts, as_list)
        finally:
            if admission is not None and traffic is not None:
                pending = traffic.settle(ctx, admission, None)
                if pending is not None:
                    await pending
        await send_json(send, 200, orjson.dumps(answer), ctx)

    def _profile(self, name: Any) -> Profile:
        if name is None:
            name = self.guardrails.config.check_profile
        if not isinstance(name, str) or name not in self.guardrails.profiles:
            raise InvalidRequestError(f"Unknown guardrail profile {name!r}.", param="profile")
        return self.guardrails.profile(name)


def _texts(body: dict[str, Any]) -> tuple[list[tuple[str, str]], bool]:
    """The texts to check, each with its author, and whether ``input`` was a list."""
    role = body.get("role", "user")
    if role not in ROLES:
        raise InvalidRequestError(f"'role' must be one of {', '.join(ROLES)}.", param="role")
    value = body.get("input")
    if isinstance(value, str):
        return [(value, role)], False
    if not isinstance(value, list) or not value:
        raise InvalidRequestError(
            "'input' must be a string or a non-empty list of chat messages.", param="input"
        )
    texts: list[tuple[str, str]] = []
    for index, message in enumerate(value):
        if not isinstance(message, dict):
            raise InvalidRequestError("Each message must be an object.", param=f"input[{index}]")
        author = message.get("role", role)
        if author not in ROLES:
            raise InvalidRequestError(
                f"'role' must be one of {', '.join(ROLES)}.", param=f"input[{index}].role"
            )
        content = message.get("content")
        if isinstance(content, list):
            content = "".join(
                part.get("text", "")
                for part in content
                if isinstance(part, dict) and isinstance(part.get("text"), str)
            )
        if not isinstance(content, str):
            raise InvalidRequestError(
                "'content' must be a string or a list of text parts.",
                param=f"input[{index}].content",
            )
        texts.append((content, author))
    return texts, True


async def _check(profile: Profile, texts: list[tuple[str, str]], as_list: bool) -> dict[str, Any]:
    vault = Vault()
    results: list[dict[str, Any]] = []
    outputs: list[str] = []
    strongest = "allow"
    for index, (text, role) in enumerate(texts):
        output = role == "assistant"
        rules = profile.output_rules if output else profile.input_rules
        seen: Inspection = await inspect(
            rules, text, cast(TextRole, role), "output" if output else "input", index
        )
        for verdict in seen.verdicts:
            result: dict[str, Any] = {
                "guardrail": verdict.guardrail,
                "category": verdict.category,
                "score": verdict.score,
                "action": verdict.action,
                "spans": [{"start": s, "end": e, "type": t} for s, e, t in verdict.spans],
            }
            if as_list:
                result["index"] = index
            results.append(result)
            if SEVERITY[verdict.action] > SEVERITY[strongest]:
                strongest = verdict.action
        masks = seen.masks
        if output:
            masks = [(span, "redact" if style == "placeholder" else style) for span, style in masks]
        outputs.append(
            apply(text, mask_spans(text, masks, vault, profile.hash_key)) if masks else text
        )
    answer: dict[str, Any] = {
        "flagged": bool(results),
        "action": strongest,
        "results": results,
        "profile": profile.name,
    }
    if as_list:
        answer["output"] = [
            {"role": role, "content": out}
            for (_text, role), out in zip(texts, outputs, strict=True)
        ]
    else:
        answer["output"] = outputs[0]
    return answer
