"""A small JSON document that satisfies a JSON Schema: tool arguments for replies without a model.

The built-in ``mock`` provider calls offered tools with such arguments, so tool-using
clients (agents, frameworks) work against the quickstart's offline models; the fake
upstreams in ``gatewise.testing`` answer the same way. Common schema shapes are
covered (objects, arrays, scalars, enums, consts, unions); deep or exotic schemas get
a best effort, never an error.
"""

from __future__ import annotations

from typing import Any

_MAX_SCHEMA_DEPTH = 6


def sample_from_schema(schema: Any, depth: int = 0) -> Any:
    """A small document that satisfies common JSON Schemas (for tool arguments, json_schema)."""
    if not isinstance(schema, dict) or depth > _MAX_SCHEMA_DEPTH:
        return {} if depth == 0 else "fake"
    if schema.get("enum"):
        return schema["enum"][0]
    if "const" in schema:
        return schema["const"]
    for key in ("anyOf", "oneOf", "allOf"):
        if schema.get(key):
            return sample_from_schema(schema[key][0], depth + 1)
    kind = schema.get("type")
    if isinstance(kind, list):
        kind = next((k for k in kind if k != "null"), "null")
    if kind == "object" or (kind is None and "properties" in schema):
        properties = schema.get("properties") or {}
        return {name: sample_from_schema(sub, depth + 1) for name, sub in properties.items()}
    if kind == "array":
        items = schema.get("items")
        return [sample_from_schema(items, depth + 1)] if isinstance(items, dict) else []
    return _SCALARS.get(kind, "fake") if isinstance(kind, str) else "fake"


_SCALARS: dict[str, Any] = {
    "string": "fake",
    "integer": 1,
    "number": 1.5,
    "boolean": True,
    "null": None,
}
