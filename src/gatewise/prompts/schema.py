"""JSON Schema checks of a prompt's input and output, with errors that name the field.

Validators are compiled once per generation; a valid document costs one
``is_valid`` pass (about 10 µs for a small object). Only a failing document is
walked again for its best error. Messages name the field and the rule, never the
value: the value may be personal data and error bodies end up in logs.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from jsonschema import Draft202012Validator
from jsonschema.exceptions import ValidationError, best_match

_RULES = {
    "type": "must be of type {value}",
    "enum": "must be one of {value}",
    "const": "must be {value}",
    "minLength": "must be at least {value} characters long",
    "maxLength": "must be at most {value} characters long",
    "minimum": "must be >= {value}",
    "maximum": "must be <= {value}",
    "exclusiveMinimum": "must be > {value}",
    "exclusiveMaximum": "must be < {value}",
    "pattern": "must match the pattern {value}",
    "minItems": "must have at least {value} items",
    "maxItems": "must have at most {value} items",
    "format": "must be a valid {value}",
}


class SchemaCheck:
    """One compiled JSON Schema.

    The common shape of a prompt's schemas (an object of strings, numbers, booleans
    and string enums, with ``required`` and ``additionalProperties``) is checked by a
    plain function compiled from the schema (about 1 µs instead of jsonschema's 10);
    any other keyword leaves the document to jsonschema. The fast check only ever
    says yes where jsonschema would: a document it refuses goes to jsonschema too.
    """

    __slots__ = ("is_valid", "schema", "validator")

    def __init__(self, schema: dict[str, Any]) -> None:
        self.schema = schema
        self.validator = Draft202012Validator(schema)
        full = self.validator.is_valid
        fast = compile_fast(schema)
        self.is_valid: Callable[[Any], bool] = full if fast is None else _either(fast, full)

    def problem(self, document: Any) -> tuple[str, str] | None:
        """``(field path, what is wrong)`` for a document that fails, else None."""
        if self.is_valid(document):
            return None
        error = best_match(self.validator.iter_errors(document))
        if error is None:  # pragma: no cover - is_valid said no
            return "", "does not match the schema"
        return describe(error, document)


def _either(fast: Callable[[Any], bool], full: Callable[[Any], bool]) -> Callable[[Any], bool]:
    def is_valid(document: Any) -> bool:
        return fast(document) or full(document)

    return is_valid


#: Keywords that only annotate (they never fail a document).
_ANNOTATIONS = frozenset({"title", "description", "default", "examples", "$comment"})
_TYPES: dict[str, tuple[type, ...]] = {
    "string": (str,),
    "integer": (int,),
    "number": (int, float),
    "boolean": (bool,),
    "null": (type(None),),
}


def compile_fast(schema: Any) -> Callable[[Any], bool] | None:
    """A strict yes-only check for a flat object schema, or None for any other shape."""
    if not isinstance(schema, dict) or schema.get("type") != "object":
        return None
    if set(schema) - _ANNOTATIONS - {"type", "properties", "required", "additionalProperties"}:
        return None
    properties = schema.get("properties", {})
    required = schema.get("required", [])
    extra_allowed = schema.get("additionalProperties", True)
    if not isinstance(properties, dict) or not isinstance(required, list):
        return None
    if type(extra_allowed) is not bool:  # a schema for the extra fields: jsonschema's job
        return None
    checks: dict[str, Callable[[Any], bool]] = {}
    for name, sub in properties.items():
        check = _compile_value(sub)
        if check is None:
            return None
        checks[name] = check
    needed = tuple(required)

    def fast(document: Any) -> bool:
        if type(document) is not dict:
            return False
        for name in needed:
            if name not in document:
                return False
        for name, value in document.items():
            check = checks.get(name)
            if check is None:
                if not extra_allowed:
                    return False
            elif not check(value):
                return False
        return True

    return fast


def _compile_value(schema: Any) -> Callable[[Any], bool] | None:
    if not isinstance(schema, dict):
        return None
    keys = set(schema) - _ANNOTATIONS
    kind = schema.get("type")
    if "enum" in schema:
        values = schema["enum"]
        if keys - {"enum", "type"} or not all(type(v) is str for v in values):
            return None
        if kind not in (None, "string"):
            return None
        members = frozenset(values)
        return lambda value: type(value) is str and value in members
    if kind not in _TYPES or keys - {"type", "minLength", "maxLength", "minimum", "maximum"}:
        return None
    exact = _TYPES[kind]
    low, high = schema.get("minimum"), schema.get("maximum")
    shortest, longest = schema.get("minLength", 0), schema.get("maxLength")
    if kind == "string":
        if low is not None or high is not None:
            return None
        return lambda value: (
            type(value) is str
            and len(value) >= shortest
            and (longest is None or len(value) <= longest)
        )
    if "minLength" in schema or "maxLength" in schema:
        return None
    return lambda value: (
        type(value) in exact and (low is None or value >= low) and (high is None or value <= high)
    )


def describe(error: ValidationError, document: Any) -> tuple[str, str]:
    """A field path (``items[2].name``) and a message without the offending value."""
    path = _render(error.absolute_path)
    rule = str(error.validator)
    value: Any = error.validator_value
    schema: Any = error.schema
    if rule == "required":
        instance = error.instance if isinstance(error.instance, dict) else {}
        missing = next((name for name in value if name not in instance), "")
        return _join(path, str(missing)), "is required"
    if rule == "additionalProperties":
        instance = error.instance if isinstance(error.instance, dict) else {}
        allowed = set(schema.get("properties", {})) if isinstance(schema, dict) else set()
        extra = next((name for name in instance if name not in allowed), "")
        return _join(path, str(extra)), "is not an allowed field"
    template = _RULES.get(rule)
    if template is not None:
        return path, template.format(value=value)
    return path, f"does not match the schema ({rule})"


def _render(parts: Any) -> str:
    out = ""
    for part in parts:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def _join(path: str, name: str) -> str:
    return f"{path}.{name}" if path else name
