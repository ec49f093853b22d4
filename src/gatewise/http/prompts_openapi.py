"""Describing prompt endpoints: ``GET /v1/prompts`` entries and an OpenAPI 3.1 document.

Applications generate a typed client from ``GET /api/openapi.json``: one operation
per prompt path (and per pinned version), the request body being the prompt's input
schema plus ``stream``, the answer its output schema (or ``{"text": ...}``). OpenAPI
3.1 takes JSON Schema 2020-12 as it is, so the prompts' schemas go in unchanged.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from gatewise.prompts.registry import PromptFamily, PromptVersion

TEXT_ANSWER: dict[str, Any] = {
    "type": "object",
    "properties": {"text": {"type": "string"}},
    "required": ["text"],
}
ERROR: dict[str, Any] = {
    "type": "object",
    "properties": {
        "error": {
            "type": "object",
            "properties": {
                "message": {"type": "string"},
                "type": {"type": "string"},
                "param": {"type": ["string", "null"]},
                "code": {"type": ["string", "null"]},
            },
            "required": ["message", "type"],
        }
    },
    "required": ["error"],
}


def describe_version(version: PromptVersion) -> dict[str, Any]:
    config = version.config
    return {
        "version": version.version,
        "path": version.path,
        "model": config.model,
        "deprecated": config.deprecated is not False,
        "sunset": config.sunset.isoformat() if config.sunset is not None else None,
        "input_schema": config.input_schema,
        "output_schema": config.output_schema,
    }


def describe_family(family: PromptFamily) -> dict[str, Any]:
    """What a caller may know of a prompt: never its template or system message."""
    latest = family.latest
    return {
        "object": "prompt",
        "name": family.name,
        "path": family.path,
        "description": latest.config.description,
        "serving": [v.version for v in family.rollout.versions],
        "versions": [describe_version(family.versions[n]) for n in sorted(family.versions)],
    }


def openapi_document(families: Iterable[PromptFamily]) -> dict[str, Any]:
    paths: dict[str, Any] = {}
    schemas: dict[str, Any] = {"Error": ERROR, "TextAnswer": TEXT_ANSWER}
    for family in families:
        latest = family.latest
        paths[family.path] = {"post": _operation(latest, _operation_id(family.name), None)}
        for number in sorted(family.versions):
            version = family.versions[number]
            operation_id = _operation_id(f"{family.name}_v{number}")
            paths[version.path] = {"post": _operation(version, operation_id, number)}
    return {
        "openapi": "3.1.0",
        "info": {"title": "Gatewise prompt endpoints", "version": "1"},
        "paths": paths,
        "components": {
            "schemas": schemas,
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
        },
        "security": [{"bearer": []}],
    }


def _operation(version: PromptVersion, operation_id: str, pinned: int | None) -> dict[str, Any]:
    config = version.config
    body = dict(config.input_schema)
    properties = dict(body.get("properties", {}))
    properties["stream"] = {"type": "boolean", "default": False}
    body["properties"] = properties
    answer = config.output_schema if config.output_schema is not None else TEXT_ANSWER
    summary = config.description or f"The {version.name} prompt"
    error = {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}
    operation: dict[str, Any] = {
        "operationId": operation_id,
        "summary": summary if pinned is None else f"{summary} (version {pinned})",
        "requestBody": {"required": True, "content": {"application/json": {"schema": body}}},
        "responses": {
            "200": {
                "description": "The answer (an SSE stream when stream is true).",
                "content": {
                    "application/json": {"schema": answer},
                    "text/event-stream": {"schema": {"type": "string"}},
                },
            },
            "400": {"description": "Invalid input or blocked by a guardrail", "content": error},
            "401": {"description": "Missing or invalid key", "content": error},
            "403": {"description": "The key may not use this prompt", "content": error},
            "429": {"description": "Rate limit or budget exceeded", "content": error},
        },
    }
    if version.deprecated:
        operation["deprecated"] = True
    return operation


def _operation_id(name: str) -> str:
    return "".join(c if c.isalnum() else "_" for c in name)
