"""Load a YAML configuration into a validated ``Config``, with exact error locations.

Every problem becomes a ``ConfigIssue`` naming file, line, column and field path
(``providers.openai.api_key``, ``models[0].deployments[1].provider``), so a bad
config in CI points straight at the line to fix. All issues are collected and
raised together in one ``ConfigError``.

Two rules keep secrets out of error output: messages are built from pydantic's
``msg`` (never its ``input``), and before validation every string in the file
is checked for the shape of a literal credential, which is reported by position
only.

Secret references (``${env:X}``, ``${file:Y}``) are *not* resolved here, so CI
can validate a config without production secrets. The gateway resolves them at
start-up with ``resolve_secret``, which reads relative ``${file:...}`` paths
from the config file's directory (kept on ``LoadedConfig.path``).
"""

from __future__ import annotations

import difflib
import json
import os
import re
import types
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal, Union, get_args, get_origin

from pydantic import BaseModel, ValidationError
from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq, TaggedScalar
from ruamel.yaml.constructor import DuplicateKeyError
from ruamel.yaml.error import MarkedYAMLError, YAMLError

from gatewise.config.models import Config
from gatewise.config.providers import ProviderSection
from gatewise.config.secrets import SecretValue, looks_like_literal_secret, resolve

__all__ = [
    "ConfigError",
    "ConfigIssue",
    "LoadedConfig",
    "load",
    "load_config",
    "parse_config_text",
    "render_path",
    "resolve_secret",
]

Part = str | int
Pos = tuple[int, int]  # 0-based (line, column), as ruamel reports them

# The field that selects a provider's kind; pydantic inserts its value into `loc`.
_DISCRIMINATOR = "type"
_YAML_STR_TAG = "tag:yaml.org,2002:str"
_SECRET_ADVICE = (
    "put secrets in the environment or a file and reference them as ${env:NAME} or ${file:PATH}"
)
_PLAIN_KEY = re.compile(r"^[A-Za-z0-9_\-]+$")
_PATH_PREFIX = re.compile(r"^([A-Za-z0-9_\-]+(?:\.[A-Za-z0-9_\-]+|\[\d+\])*): (.+)$", re.DOTALL)
_PATH_PART = re.compile(r"\.?([A-Za-z0-9_\-]+)|\[(\d+)\]")
_DUPLICATE_KEY = re.compile(r'found duplicate key "(.*)" with value', re.DOTALL)


@dataclass(frozen=True)
class ConfigIssue:
    """One problem in a config file. ``line`` and ``column`` are 1-based."""

    file: str
    line: int | None
    column: int | None
    path: str
    message: str

    def __str__(self) -> str:
        where = self.file
        if self.line is not None:
            where += f":{self.line}"
            if self.column is not None:
                where += f":{self.column}"
        if self.path:
            return f"{where}: {self.path}: {self.message}"
        return f"{where}: {self.message}"


class ConfigError(Exception):
    """A config could not be loaded; ``issues`` lists every problem found."""

    def __init__(self, issues: Sequence[ConfigIssue]) -> None:
        self.issues = list(issues)
        super().__init__(str(self))

    def __str__(self) -> str:
        return "\n".join(str(issue) for issue in self.issues)


@dataclass(frozen=True)
class LoadedConfig:
    """A validated config plus the (absolute) file it came from, if any.

    The path matters at start-up: relative ``${file:...}`` references are read
    from the config file's directory, not from wherever the gateway was started.
    """

    config: Config
    path: Path | None

    @property
    def base_dir(self) -> Path | None:
        return self.path.parent if self.path is not None else None

    def resolve_secret(self, reference: str) -> SecretValue:
        return resolve_secret(reference, self.path)


def resolve_secret(reference: str, config_path: Path | None) -> SecretValue:
    """Resolve ``${env:X}`` / ``${file:Y}``; relative files are read next to ``config_path``.

    Raises ``gatewise.config.secrets.SecretResolutionError`` naming the unset
    variable or unreadable file. With ``config_path=None`` relative files are
    read from the current directory.
    """
    base_dir = Path(os.path.abspath(config_path)).parent if config_path is not None else None
    return resolve(reference, base_dir)


def load(path: Path) -> LoadedConfig:
    """Read and validate a config file; keep its location for resolving secrets."""
    filename = str(path)
    try:
        text = path.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise _error(filename, "the file does not exist") from None
    except IsADirectoryError:
        raise _error(filename, "this is a directory, not a config file") from None
    except UnicodeDecodeError:
        raise _error(filename, "the file is not UTF-8 text") from None
    except OSError as exc:
        raise _error(filename, f"cannot read the file: {exc.strerror or exc}") from None
    # abspath, not resolve(): keep symlinked dirs (e.g. Kubernetes ConfigMap mounts) as given.
    return LoadedConfig(parse_config_text(text, filename), Path(os.path.abspath(path)))


def load_config(path: Path) -> Config:
    """Read and validate a config file; raise ``ConfigError`` listing every problem."""
    return load(path).config


def parse_config_text(text: str, filename: str) -> Config:
    """Validate YAML text (from a file, git, an admin upload ...); ``filename`` labels errors."""
    document = parse_yaml(text, filename)
    if document is None:
        raise _error(filename, "the file is empty", line=1)
    if not isinstance(document, CommentedMap):
        raise _error(
            filename,
            "the top level must be a mapping of sections (server, providers, models ...), "
            f"not {'a list' if isinstance(document, list) else 'a single value'}",
            line=1,
        )
    walker = YamlConverter(filename)
    data = walker.convert(document, (), node_pos(document))
    issues = list(walker.issues)
    try:
        config = Config.model_validate(data)
    except ValidationError as exc:
        reported = {issue.path for issue in issues}
        for error in exc.errors(include_url=False, include_input=False):
            issue = _issue_from_error(error, document, filename)
            if issue.path not in reported:  # e.g. api_key already flagged as a literal secret
                issues.append(issue)
    else:
        if not issues:
            return config
    issues.sort(key=lambda issue: (issue.line or 0, issue.column or 0))
    raise ConfigError(issues)


def render_path(parts: Sequence[Part]) -> str:
    """``('models', 0, 'name')`` -> ``models[0].name``; odd keys are quoted: ``["a.b"]``.

    A key shaped like a credential is shown as ``[<redacted>]``: paths are printed.
    """
    out = ""
    for part in parts:
        if isinstance(part, int):
            out += f"[{part}]"
        elif looks_like_literal_secret(part):
            out += "[<redacted>]"
        elif _PLAIN_KEY.match(part):
            out += f".{part}" if out else part
        else:
            out += f"[{json.dumps(part)}]"
    return out


# --- YAML parsing -------------------------------------------------------------


def parse_yaml(text: str, filename: str) -> Any:
    yaml = YAML(typ="rt")
    try:
        return yaml.load(text)
    except DuplicateKeyError as exc:
        raise ConfigError([_duplicate_key_issue(exc, text, filename)]) from None
    except MarkedYAMLError as exc:
        message = f"invalid YAML: {exc.problem or exc.context or 'syntax error'}"
        if exc.problem and exc.context and exc.context_mark is not None:
            message += f" ({exc.context} started on line {exc.context_mark.line + 1})"
        mark = exc.problem_mark or exc.context_mark
        line, column = (mark.line + 1, mark.column + 1) if mark is not None else (None, None)
        raise _error(filename, message, line=line, column=column) from None
    except YAMLError as exc:  # e.g. a control character rejected by the reader
        position = getattr(exc, "position", None)
        line = text.count("\n", 0, position) + 1 if isinstance(position, int) else None
        message = f"invalid YAML: {getattr(exc, 'reason', None) or type(exc).__name__}"
        raise _error(filename, message, line=line) from None


def _duplicate_key_issue(exc: DuplicateKeyError, text: str, filename: str) -> ConfigIssue:
    """Report a duplicate key without ruamel's message, which quotes both values."""
    match = _DUPLICATE_KEY.search(str(exc.problem))
    key = match.group(1) if match else None
    mark = exc.problem_mark
    line, column = (mark.line + 1, mark.column + 1) if mark is not None else (None, None)
    path = ""
    if key is not None and exc.context_mark is not None:
        parent = _mapping_path(text, (exc.context_mark.line, exc.context_mark.column))
        if parent is not None:
            path = render_path([*parent, key])
    what = f"key {_shown(key)}" if key is not None else "key"
    return ConfigIssue(filename, line, column, path, f"duplicate {what} in the same mapping")


def _mapping_path(text: str, start: Pos) -> list[Part] | None:
    """Path of the mapping starting at ``start``, found by re-reading with duplicates allowed."""
    yaml = YAML(typ="rt")
    yaml.allow_duplicate_keys = True
    try:
        document = yaml.load(text)
    except YAMLError:
        return None
    for node, parts in _containers(document, []):
        if isinstance(node, CommentedMap) and node_pos(node) == start:
            return parts
    return None


def _containers(node: Any, parts: list[Part]) -> Iterator[tuple[Any, list[Part]]]:
    yield node, parts
    if isinstance(node, CommentedMap):
        for key, value in node.items():
            yield from _containers(value, [*parts, key])
    elif isinstance(node, CommentedSeq):
        for index, value in enumerate(node):
            yield from _containers(value, [*parts, index])


# --- converting ruamel nodes to plain data, and the literal-secret scan ---------------


class YamlConverter:
    """Turns ruamel's commented nodes into dicts/lists/scalars, flagging literal secrets."""

    def __init__(self, filename: str) -> None:
        self.filename = filename
        self.issues: list[ConfigIssue] = []

    def convert(self, node: Any, parts: tuple[Part, ...], pos: Pos) -> Any:
        tag = getattr(getattr(node, "tag", None), "value", None)
        if isinstance(node, CommentedMap | CommentedSeq) and tag is not None:
            self._flag(parts, pos, f"unsupported YAML tag {tag}")
        if isinstance(node, CommentedMap):
            out: dict[Any, Any] = {}
            for key, value in node.items():
                key_pos = _key_pos(node, key, pos)
                key_parts = (*parts, key)
                plain_key = self.convert(key, key_parts, key_pos)
                out[plain_key] = self.convert(value, key_parts, key_pos)
            return out
        if isinstance(node, CommentedSeq):
            return [
                self.convert(item, (*parts, index), _item_pos(node, index, pos))
                for index, item in enumerate(node)
            ]
        if isinstance(node, TaggedScalar):
            if tag != _YAML_STR_TAG:
                self._flag(parts, pos, f"unsupported YAML tag {tag}")
            return self.convert(str(node.value), parts, pos)
        if isinstance(node, str):
            kind = looks_like_literal_secret(node)
            if kind is not None:
                self._flag(parts, pos, f"looks like {kind}; {_SECRET_ADVICE}")
            return str(node)
        if isinstance(node, bytes):
            self._flag(parts, pos, "binary values are not supported")
            return None
        if isinstance(node, bool):
            return bool(node)
        if isinstance(node, int):
            return int(node)
        if isinstance(node, float):
            return float(node)
        return node  # None, dates

    def _flag(self, parts: tuple[Part, ...], pos: Pos, message: str) -> None:
        self.issues.append(_issue(self.filename, pos, render_path(parts), message))


# --- mapping pydantic errors to YAML positions --------------------------------


def _issue_from_error(error: Any, document: CommentedMap, filename: str) -> ConfigIssue:
    """One pydantic error -> one issue at the YAML node it is about."""
    kind: str = error["type"]
    loc: tuple[Part, ...] = tuple(error["loc"])
    ctx: dict[str, Any] = error.get("ctx") or {}
    message = _clean(str(error["msg"]))

    if kind == "value_error":
        # Validators that check several fields prefix their message with the field's path.
        match = _PATH_PREFIX.match(message)
        target = locate(document, loc)[2]
        if match and isinstance(target, CommentedMap) and _parse_path(match[1])[0] in target:
            loc = (*loc, *_parse_path(match[1]))
            message = match[2]
    elif kind == "missing":
        message = "required field is missing"
    elif kind == "extra_forbidden":
        message = _unknown_field_message(loc)
    elif kind in ("model_type", "dict_type"):
        message = "expected a mapping (key: value pairs)"
    elif kind == "list_type":
        message = "expected a list"
    elif kind == "union_tag_invalid":
        loc = (*loc, _DISCRIMINATOR)
        expected = ctx.get("expected_tags")
        message = f"unknown {_DISCRIMINATOR} {_shown(ctx.get('tag'))}; expected one of {expected}"
    elif kind == "union_tag_not_found":
        loc = (*loc, _DISCRIMINATOR)
        tags = ", ".join(repr(tag) for tag in _union_tags(loc[:-1]))
        message = "required field is missing" + (f"; one of {tags}" if tags else "")

    parts, pos, _ = locate(document, loc)
    return _issue(filename, pos, render_path(parts), message)


def locate(document: CommentedMap, loc: tuple[Part, ...]) -> tuple[list[Part], Pos, Any]:
    """Follow ``loc`` through the YAML: the field path, the position to blame, the node found.

    Skips the discriminator tag pydantic inserts for tagged unions and the
    ``[key]`` marker for invalid dict keys. A field absent from the YAML (a
    missing one) stays in the path but the position is its parent mapping's, and
    the node returned is None.
    """
    node: Any = document
    pos = node_pos(document)
    parts: list[Part] = []
    in_yaml = True
    for part in loc:
        if part == "[key]":
            continue
        if not in_yaml:
            parts.append(part)
        elif isinstance(node, CommentedMap):
            if part in node:
                parts.append(part)
                pos = _key_pos(node, part, pos)
                node = node[part]
            elif part == node.get(_DISCRIMINATOR):
                continue
            else:
                parts.append(part)
                in_yaml, node = False, None
        elif isinstance(node, CommentedSeq) and isinstance(part, int) and 0 <= part < len(node):
            parts.append(part)
            pos = _item_pos(node, part, pos)
            node = node[part]
        elif isinstance(node, CommentedSeq):
            parts.append(part)
            in_yaml, node = False, None
        else:
            break  # a scalar: the rest names union members, not fields
    return parts, pos, node


def _parse_path(path: str) -> tuple[Part, ...]:
    return tuple(
        int(match.group(2)) if match.group(2) is not None else match.group(1)
        for match in _PATH_PART.finditer(path)
    )


def _clean(message: str) -> str:
    for prefix in ("Value error, ", "Assertion failed, "):
        if message.startswith(prefix):
            return message[len(prefix) :]
    return message


def _unknown_field_message(loc: tuple[Part, ...]) -> str:
    name = str(loc[-1]) if loc else ""
    allowed = _fields_at(loc[:-1])
    close = difflib.get_close_matches(name, allowed, n=1)
    if close:
        return f"unknown field {_shown(name)}; did you mean {close[0]!r}?"
    expected = f"; expected one of: {', '.join(allowed)}" if allowed else ""
    return f"unknown field {_shown(name)}{expected}"


# --- walking the schema (for "did you mean" and the list of provider types) ----------


def _schema_type(loc: tuple[Part, ...], *, unwrap: bool = True) -> Any:
    """The annotation at a raw pydantic ``loc`` (tags included), or None if unknown."""
    annotation: Any = Config
    for part in loc:
        if part == "[key]":
            continue
        annotation = _schema_step(annotation, part)
        if annotation is None:
            return None
    return _unwrap(annotation) if unwrap else annotation


def _schema_step(annotation: Any, part: Part) -> Any:
    section = _provider_section(annotation)
    if section is not None:  # the part is the section's type, built in or a plug-in's
        return section.model_for(part) if isinstance(part, str) else None
    annotation = _unwrap(annotation)
    origin = get_origin(annotation)
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        field = annotation.model_fields.get(part) if isinstance(part, str) else None
        return field.annotation if field is not None else None
    if origin in (Union, types.UnionType):
        members = [_unwrap(arg) for arg in get_args(annotation) if arg is not type(None)]
        for member in members:
            if part in _tags_of(member):
                return member
        return _schema_step(members[0], part) if len(members) == 1 else None
    if origin is list and isinstance(part, int):
        return get_args(annotation)[0]
    if origin is dict and isinstance(part, str):
        return get_args(annotation)[1]
    return None


def _provider_section(annotation: Any) -> ProviderSection | None:
    """The ``ProviderSection`` marker of an ``Annotated[...]`` provider section, if any."""
    if get_origin(annotation) is not Annotated:
        return None
    return next((m for m in annotation.__metadata__ if isinstance(m, ProviderSection)), None)


def _unwrap(annotation: Any) -> Any:
    while get_origin(annotation) is Annotated:
        annotation = get_args(annotation)[0]
    return annotation


def _tags_of(annotation: Any) -> tuple[str, ...]:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        field = annotation.model_fields.get(_DISCRIMINATOR)
        if field is not None and get_origin(field.annotation) is Literal:
            return tuple(str(arg) for arg in get_args(field.annotation))
    return ()


def _fields_at(loc: tuple[Part, ...]) -> list[str]:
    annotation = _schema_type(loc)
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return list(annotation.model_fields)
    return []


def _union_tags(loc: tuple[Part, ...]) -> list[str]:
    annotation = _schema_type(loc, unwrap=False)
    section = _provider_section(annotation)
    if section is not None:
        return section.known_types()
    annotation = _unwrap(annotation)
    if get_origin(annotation) not in (Union, types.UnionType):
        return []
    return [tag for arg in get_args(annotation) for tag in _tags_of(_unwrap(arg))]


# --- small helpers ------------------------------------------------------------------


def node_pos(node: Any) -> Pos:
    lc = getattr(node, "lc", None)
    return (lc.line or 0, lc.col or 0) if lc is not None else (0, 0)


def _key_pos(node: CommentedMap, key: Any, default: Pos) -> Pos:
    try:
        line, column = node.lc.key(key)
    except (KeyError, TypeError, AttributeError):  # merged (<<) keys have no position
        return default
    return (int(line), int(column))


def _item_pos(node: CommentedSeq, index: int, default: Pos) -> Pos:
    try:
        line, column = node.lc.item(index)
    except (KeyError, IndexError, TypeError, AttributeError):
        return default
    return (int(line), int(column))


def _issue(filename: str, pos: Pos, path: str, message: str) -> ConfigIssue:
    return ConfigIssue(filename, pos[0] + 1, pos[1] + 1, path, message)


def _error(
    filename: str, message: str, *, line: int | None = None, column: int | None = None
) -> ConfigError:
    return ConfigError([ConfigIssue(filename, line, column, "", message)])


def _shown(value: Any) -> str:
    """``repr`` of a user-supplied name for a message, unless it looks like a credential."""
    return "<redacted>" if looks_like_literal_secret(str(value)) else repr(value)
