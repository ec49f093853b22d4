"""JSON Schema (as OpenAI tools and response formats use it) -> Gemini's ``Schema``.

Gemini accepts a subset of OpenAPI 3.0 and answers 400 ("Unknown name ...: Cannot
find field") for any other key, so a schema is rebuilt from the keys Gemini knows
(``formats.gemini.SCHEMA_KEYS``) with these conversions:

- local ``$ref`` (``#/$defs/X``, ``#/definitions/X``) are inlined; recursive ones
  cannot be expressed and are refused with a 400;
- ``type: [T, "null"]``, ``anyOf``/``oneOf`` with a ``{"type": "null"}`` branch and
  ``null`` in an ``enum`` become ``nullable: true``; ``oneOf`` becomes ``anyOf``;
  ``allOf`` is merged into one schema; a one-branch ``anyOf`` is collapsed;
- ``const: "x"`` becomes ``enum: ["x"]``; non-string enums and consts are dropped
  (Gemini enums are strings); ``format`` is kept only where Gemini supports it;
- ``required`` keeps only names that are declared properties;
- dropped: ``additionalProperties``, ``$schema``, ``$id``, ``$comment``, ``$defs``,
  ``definitions``, ``title``, ``default``, ``examples``, ``exclusiveMinimum``,
  ``exclusiveMaximum``, ``multipleOf``, ``uniqueItems``, ``patternProperties``,
  ``propertyNames``, ``not``, ``if``/``then``/``else`` and any other unknown key.

The input is never modified (a request may fail over to another provider).
"""

from __future__ import annotations

from typing import Any

from gatewise.core.errors import InvalidRequestError
from gatewise.formats.gemini import SCHEMA_FORMATS

_MAX_DEPTH = 40
_COPIED = ("description", "pattern", "propertyOrdering")
_NUMBERS = ("minItems", "maxItems", "minProperties", "maxProperties", "minLength", "maxLength")
_BOUNDS = ("minimum", "maximum")


def clean_schema(schema: Any, param: str) -> dict[str, Any]:
    """Gemini's version of ``schema``; ``param`` names it in 400 errors."""
    if not isinstance(schema, dict):
        raise InvalidRequestError(
            f"Invalid '{param}': a JSON Schema must be an object.", param=param
        )
    definitions: dict[str, Any] = {}
    for key in ("definitions", "$defs"):
        section = schema.get(key)
        if isinstance(section, dict):
            definitions.update({f"#/{key}/{name}": sub for name, sub in section.items()})
    return _Cleaner(definitions, param).clean(schema, 0, ())


def parameters_schema(schema: Any, param: str) -> dict[str, Any] | None:
    """A function's ``parameters``: None for a function without arguments.

    Gemini rejects an object schema with no properties ("properties: should be
    non-empty for OBJECT type"); such a function is declared without parameters.
    """
    if schema is None:
        return None
    cleaned = clean_schema(schema, param)
    if cleaned.get("type", "object") == "object" and not cleaned.get("properties"):
        return None
    return cleaned


class _Cleaner:
    __slots__ = ("definitions", "param")

    def __init__(self, definitions: dict[str, Any], param: str) -> None:
        self.definitions = definitions
        self.param = param

    def fail(self, detail: str) -> InvalidRequestError:
        return InvalidRequestError(f"Invalid '{self.param}': {detail}", param=self.param)

    def clean(self, node: Any, depth: int, refs: tuple[str, ...]) -> dict[str, Any]:
        if not isinstance(node, dict):
            return {}  # `true` / `{}`: any value; Gemini's empty Schema says the same
        if depth > _MAX_DEPTH:
            raise self.fail("the schema is nested too deeply.")
        if "$ref" in node:
            return self._inline(node, depth, refs)
        if isinstance(node.get("allOf"), list):
            merged: dict[str, Any] = {}
            for sub in node["allOf"]:
                _merge(merged, self.clean(sub, depth + 1, refs))
            rest = {k: v for k, v in node.items() if k != "allOf"}
            return _merge(self.clean(rest, depth + 1, refs), merged)
        return self._rebuild(node, depth, refs)

    def _inline(self, node: dict[str, Any], depth: int, refs: tuple[str, ...]) -> dict[str, Any]:
        ref = node["$ref"]
        target = self.definitions.get(ref) if isinstance(ref, str) else None
        if target is None:
            raise self.fail(
                f"cannot resolve $ref {ref!r}; only local #/$defs/... references are supported."
            )
        if ref in refs:
            raise self.fail(f"recursive schemas ($ref {ref!r}) cannot be expressed for Gemini.")
        siblings = {k: v for k, v in node.items() if k != "$ref"}
        return self.clean({**target, **siblings}, depth + 1, (*refs, ref))

    def _rebuild(self, node: dict[str, Any], depth: int, refs: tuple[str, ...]) -> dict[str, Any]:
        out: dict[str, Any] = {}
        nullable = node.get("nullable") is True
        kind = node.get("type")
        if isinstance(kind, list):
            kinds = [k for k in kind if isinstance(k, str) and k != "null"]
            nullable = nullable or len(kinds) != len(kind)
            if len(kinds) > 1:
                out["anyOf"] = [{"type": k} for k in kinds]
            kind = kinds[0] if len(kinds) == 1 else None
        elif kind == "null":
            nullable, kind = True, None
        elif not isinstance(kind, str):
            kind = None

        branches = node.get("anyOf", node.get("oneOf"))
        if isinstance(branches, list):
            kept = [b for b in branches if not (isinstance(b, dict) and b.get("type") == "null")]
            nullable = nullable or len(kept) != len(branches)
            cleaned = [self.clean(b, depth + 1, refs) for b in kept]
            if len(cleaned) == 1:
                out.update(cleaned[0])
            elif cleaned:
                out["anyOf"] = cleaned

        values = node.get("enum")
        if "const" in node and values is None:
            values = [node["const"]]
        if isinstance(values, list):
            nullable = nullable or None in values
            strings = [v for v in values if v is not None]
            if strings and all(isinstance(v, str) for v in strings):
                out["enum"] = strings
                kind = kind or "string"

        properties = node.get("properties")
        if isinstance(properties, dict) and properties:
            out["properties"] = {
                name: self.clean(sub, depth + 1, refs) for name, sub in properties.items()
            }
            kind = kind or "object"
            required = node.get("required")
            if isinstance(required, list):
                names = [r for r in required if r in properties]
                if names:
                    out["required"] = names
        items = node.get("items")
        if isinstance(items, list):  # tuple validation: the first item's schema
            items = items[0] if items else None
        if isinstance(items, dict):
            out["items"] = self.clean(items, depth + 1, refs)
            kind = kind or "array"

        if kind is not None:
            out["type"] = kind.lower()
            fmt = node.get("format")
            if isinstance(fmt, str) and fmt in SCHEMA_FORMATS.get(out["type"], ()):
                out["format"] = fmt
        for key in _COPIED:
            if key in node:
                out[key] = node[key]
        for key in _NUMBERS:
            value = node.get(key)
            if isinstance(value, int) and not isinstance(value, bool):
                out[key] = value
        for key in _BOUNDS:
            value = node.get(key)
            if isinstance(value, int | float) and not isinstance(value, bool):
                out[key] = value
        if nullable:
            out["nullable"] = True
        return out


def _merge(into: dict[str, Any], other: dict[str, Any]) -> dict[str, Any]:
    """Merge ``other`` into ``into`` (allOf): properties and required are unions."""
    for key, value in other.items():
        if key == "properties" and isinstance(into.get(key), dict):
            into[key] = {**into[key], **value}
        elif key == "required" and isinstance(into.get(key), list):
            into[key] = into[key] + [name for name in value if name not in into[key]]
        else:
            into.setdefault(key, value)
    return into
