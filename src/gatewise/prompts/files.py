"""Reading a folder of prompt files: one YAML document per prompt, ``file:line`` errors.

The folder is usually a Git checkout reviewed in merge requests, so a mistake must
point at its line the way the config loader does (``config.loader``): the same YAML
reading (duplicate keys, literal secrets refused) and the same issue format; every
problem of every file is reported at once.
"""

from __future__ import annotations

import difflib
from pathlib import Path
from typing import Any

from pydantic import ValidationError
from ruamel.yaml.comments import CommentedMap

from gatewise.config.loader import (
    ConfigError,
    ConfigIssue,
    YamlConverter,
    locate,
    node_pos,
    parse_yaml,
    render_path,
)
from gatewise.config.prompts import PromptConfig

SUFFIXES = (".yaml", ".yml")


def folder_of(folder: str, config_dir: Path | None) -> Path:
    """The prompt folder a config names (relative to the config file's folder)."""
    path = Path(folder)
    return path if path.is_absolute() or config_dir is None else config_dir / path


def load_folder(folder: Path) -> list[tuple[PromptConfig, str]]:
    """Every prompt in ``folder`` (sorted by file name) with the file it came from."""
    if not folder.is_dir():
        raise ConfigError([ConfigIssue(str(folder), None, None, "", "not a folder of prompts")])
    found: list[tuple[PromptConfig, str]] = []
    issues: list[ConfigIssue] = []
    for path in sorted(p for p in folder.iterdir() if p.suffix in SUFFIXES and p.is_file()):
        try:
            found.append((load_file(path), str(path)))
        except ConfigError as error:
            issues.extend(error.issues)
    if issues:
        raise ConfigError(issues)
    return found


def load_file(path: Path) -> PromptConfig:
    filename = str(path)
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError([ConfigIssue(filename, None, None, "", f"cannot read: {exc}")]) from None
    return parse_prompt_text(text, filename)


def parse_prompt_text(text: str, filename: str) -> PromptConfig:
    document = parse_yaml(text, filename)
    if not isinstance(document, CommentedMap):
        raise ConfigError([ConfigIssue(filename, 1, None, "", "a prompt file is a mapping")])
    walker = YamlConverter(filename)
    data = walker.convert(document, (), node_pos(document))
    issues = list(walker.issues)
    try:
        prompt = PromptConfig.model_validate(data)
    except ValidationError as exc:
        for error in exc.errors(include_url=False, include_input=False):
            issues.append(_issue(error, document, filename))
    else:
        if not issues:
            return prompt
    issues.sort(key=lambda issue: (issue.line or 0, issue.column or 0))
    raise ConfigError(issues)


def _issue(error: Any, document: CommentedMap, filename: str) -> ConfigIssue:
    loc = tuple(error["loc"])
    message = str(error["msg"]).removeprefix("Value error, ")
    if error["type"] == "missing":
        message = "required field is missing"
    elif error["type"] == "extra_forbidden" and len(loc) == 1:
        name = str(loc[0])
        close = difflib.get_close_matches(name, list(PromptConfig.model_fields), n=1)
        message = f"unknown field {name!r}" + (f"; did you mean {close[0]!r}?" if close else "")
    elif error["type"] == "extra_forbidden":
        message = f"unknown field {str(loc[-1])!r}"
    parts, (line, column), _ = locate(document, loc)
    return ConfigIssue(filename, line + 1, column + 1, render_path(parts), message)
