"""The ``prompts`` section: prompts served as endpoints, inline or one YAML file each.

A prompt is reviewed like code: its template (sandboxed Jinja2), the JSON Schema of
its inputs, the model and parameters it runs with, an optional JSON Schema its
answer must match, the guardrail profile it runs under, and test cases. Versions of
one prompt share a name (and path); ``weight`` splits unpinned calls between them
(a canary), ``deprecated`` and ``sunset`` announce a version's end in headers.

``folder`` names a directory of ``*.yaml`` files, one prompt each (a Git checkout of
prompts works as is); they are read when the gateway builds a generation, with
``file:line`` errors like the config's own (``gatewise.prompts.files``).
"""

from __future__ import annotations

import re
from datetime import date, datetime
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, Field, model_validator

from gatewise.config.base import Name, Strict

#: A prompt's name: it becomes a path segment and a metric label.
PromptName = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[a-z0-9][a-z0-9_\-]*$")]
#: The body key that asks for a stream; no input variable may take it.
STREAM_KEY = "stream"
_PATH = re.compile(r"^/api(/[A-Za-z0-9][A-Za-z0-9._\-]*)+$")
_VERSION_SUFFIX = re.compile(r"/v\d+$")


def _check_template(text: str) -> str:
    from jinja2 import Environment, TemplateSyntaxError

    try:
        Environment().parse(text)
    except TemplateSyntaxError as error:
        raise ValueError(f"template line {error.lineno}: {error.message}") from None
    return text


def _check_schema(schema: dict[str, Any]) -> dict[str, Any]:
    from jsonschema import Draft202012Validator
    from jsonschema.exceptions import SchemaError

    try:
        Draft202012Validator.check_schema(schema)
    except SchemaError as error:
        where = "/".join(str(part) for part in error.absolute_path)
        raise ValueError(f"not a valid JSON Schema at '/{where}': {error.message}") from None
    return schema


def _check_path(path: str) -> str:
    if not _PATH.match(path):
        raise ValueError("a prompt path looks like /api/name (letters, digits, . _ -)")
    if _VERSION_SUFFIX.search(path) or path == "/api/openapi.json":
        raise ValueError("a prompt path may not end in /v<N> or be /api/openapi.json")
    return path


def _check_regex(value: str) -> str:
    try:
        re.compile(value)
    except re.error as error:
        raise ValueError(f"not a valid regular expression: {error}") from None
    return value


Template = Annotated[str, Field(min_length=1), AfterValidator(_check_template)]
JSONSchema = Annotated[dict[str, Any], AfterValidator(_check_schema)]


class PromptParameters(Strict):
    """Model parameters sent with every call of the prompt."""

    temperature: float | None = Field(None, ge=0, le=2)
    top_p: float | None = Field(None, gt=0, le=1)
    max_tokens: int | None = Field(None, ge=1)
    seed: int | None = None
    stop: list[str] | None = None


class PromptLimits(Strict):
    """Per-prompt bounds (rate limits and budgets come from ``limits``/``budgets``: a
    prompt's calls are calls of its model, by its caller)."""

    max_input_chars: int | None = Field(
        None, ge=1, description="A rendered prompt longer than this is refused with 400."
    )


class PromptExpect(Strict):
    """What a test case's answer must satisfy (all that are given)."""

    contains: list[str] = Field(default_factory=list)
    not_contains: list[str] = Field(default_factory=list)
    regex: Annotated[str, AfterValidator(_check_regex)] | None = None
    json_schema: JSONSchema | None = None
    equals: Any = None
    max_tokens: int | None = Field(None, ge=1, description="Completion tokens, at most.")
    max_latency_ms: float | None = Field(None, gt=0)


class PromptTestCase(Strict):
    name: str = Field(min_length=1, max_length=200)
    input: dict[str, Any] = Field(default_factory=dict)
    expect: PromptExpect = PromptExpect()


class PromptConfig(Strict):
    """One version of one prompt."""

    name: PromptName
    version: int = Field(1, ge=1, le=100_000)
    path: Annotated[str, AfterValidator(_check_path)] | None = Field(
        None, description="Where it is served; default /api/<name>. Versions at <path>/v<N>."
    )
    description: str | None = None
    system: Template | None = Field(None, description="The system message's template.")
    template: Template = Field(description="The user message's template (Jinja2, sandboxed).")
    input_schema: JSONSchema = Field(
        default_factory=lambda: {"type": "object"},
        description="JSON Schema of the request body (the template's variables).",
    )
    model: Name
    parameters: PromptParameters = PromptParameters()
    output_schema: JSONSchema | None = Field(
        None, description="The answer must be JSON matching this schema (one repair retry)."
    )
    guardrail_profile: Name | None = Field(
        None, description="The guardrail profile its calls run under (default: the caller's)."
    )
    limits: PromptLimits = PromptLimits()
    approval: Literal["none", "required"] = Field(
        "none", description="required: an app needs an approved subscription to prompt:<name>."
    )
    weight: int | None = Field(
        None,
        ge=0,
        le=1_000_000,
        description=(
            "Share of unpinned calls (a canary). When no version of the prompt sets one, "
            "the newest version that is not deprecated serves them all."
        ),
    )
    sticky: bool = Field(False, description="A caller's key always gets the same version.")
    deprecated: bool | date = False
    sunset: datetime | date | None = None
    tests: list[PromptTestCase] = Field(default_factory=list)

    @model_validator(mode="after")
    def _checks(self) -> PromptConfig:
        properties = self.input_schema.get("properties")
        if isinstance(properties, dict) and STREAM_KEY in properties:
            raise ValueError(f"input_schema.properties: {STREAM_KEY!r} is reserved (streaming)")
        if self.input_schema.get("type", "object") != "object":
            raise ValueError("input_schema.type: a prompt's input is an object")
        return self

    @property
    def served_at(self) -> str:
        return self.path or f"/api/{self.name}"


class PromptsConfig(Strict):
    """Where prompts come from."""

    folder: str | None = Field(
        None,
        min_length=1,
        description="A folder of *.yaml prompt files (relative: to this file's folder).",
    )
    inline: list[PromptConfig] = Field(default_factory=list)
