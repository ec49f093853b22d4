"""The prompt registry: every prompt version compiled once per generation.

Built from the config's ``prompts`` section (inline prompts and a folder of files):
templates compiled, schemas compiled, the request parameters and the response
headers of each version made up front, so serving a call renders and checks but
builds nothing else. Mistakes that need the whole config (an unknown model or
guardrail profile, two versions with one number, two prompts at one path) are
reported together, each at the file or config path it comes from.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from email.utils import format_datetime
from pathlib import Path
from typing import Any

from jinja2 import Template

from gatewise.config.limits import BudgetConfig, LimitConfig
from gatewise.config.loader import ConfigError, ConfigIssue
from gatewise.config.models import Config
from gatewise.config.prompts import PromptConfig, PromptsConfig
from gatewise.prompts.files import folder_of, load_folder
from gatewise.prompts.rollout import Rollout
from gatewise.prompts.schema import SchemaCheck
from gatewise.prompts.template import compile_template, render

#: The name under which access lists, subscriptions and limits see a prompt.
ACCESS_PREFIX = "prompt:"


@dataclass(frozen=True, slots=True, eq=False)
class PromptVersion:
    """One servable version: what to render, check and send."""

    config: PromptConfig
    name: str
    version: int
    path: str
    template: Template
    system: Template | None
    #: The system message when its template is plain text (rendered once, here).
    system_text: str | None
    inputs: SchemaCheck
    output: SchemaCheck | None
    #: ``ChatRequest`` keyword arguments besides model and messages.
    parameters: Mapping[str, Any]
    #: Headers of every answer (the prompt, its version, deprecation and sunset).
    headers: Mapping[str, str]
    #: What the request's decisions and records show: ``prompt:<name>@<version>``.
    decision: str
    access_name: str

    @property
    def deprecated(self) -> bool:
        return self.config.deprecated is not False


@dataclass(slots=True, eq=False)
class PromptFamily:
    """All versions of one prompt, and who answers its unpinned path."""

    name: str
    path: str
    versions: dict[int, PromptVersion]
    rollout: Rollout[PromptVersion]
    sticky: bool = False

    @property
    def latest(self) -> PromptVersion:
        return self.versions[max(self.versions)]


@dataclass(slots=True)
class PromptRegistry:
    families: dict[str, PromptFamily] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.families)

    def profiles(self) -> set[str]:
        """Guardrail profiles some prompt runs under (each needs a corridor lane)."""
        return {
            v.config.guardrail_profile
            for family in self.families.values()
            for v in family.versions.values()
            if v.config.guardrail_profile
        }

    def access_names(self) -> list[str]:
        """``prompt:<name>`` of each prompt: what allow-lists and subscriptions name."""
        return [ACCESS_PREFIX + name for name in self.families]

    def versions(self) -> Iterable[PromptVersion]:
        for family in self.families.values():
            yield from family.versions.values()


def check_prompts(
    config: Config, config_dir: Path | None, config_file: str = "config"
) -> PromptRegistry:
    """A config's prompts, read and checked (``ConfigError``): what ``serve`` and ``config
    validate`` run before anything is served. Also checks that every prompt the limits and
    budgets name exists (a rule naming no prompt would silently count nothing)."""
    names = [model.name for model in config.models]
    profiles = config.guardrails.all_profiles()
    registry = build_registry(config.prompts, config_dir, names, profiles, config_file)
    sections: tuple[tuple[str, Sequence[LimitConfig | BudgetConfig]], ...] = (
        ("limits", config.limits),
        ("budgets", config.budgets),
    )
    issues = [
        _issue(f"{config_file}: {section}[{index}].prompts[{p_index}]", f"unknown prompt {name!r}")
        for section, rules in sections
        for index, rule in enumerate(rules)
        for p_index, name in enumerate(rule.prompts or ())
        if name not in registry.families
    ]
    if issues:
        raise ConfigError(issues)
    return registry


def build_registry(
    section: PromptsConfig,
    config_dir: Path | None,
    models: Iterable[str],
    profiles: Iterable[str],
    config_file: str = "config",
) -> PromptRegistry:
    """The registry of a config; a ``ConfigError`` lists everything wrong at once."""
    sources: list[tuple[PromptConfig, str]] = [
        (prompt, f"{config_file}: prompts.inline[{index}]")
        for index, prompt in enumerate(section.inline)
    ]
    if section.folder is not None:
        sources += load_folder(folder_of(section.folder, config_dir))
    known_models, known_profiles = set(models), {*profiles, "off"}
    issues: list[ConfigIssue] = []
    grouped: dict[str, list[tuple[PromptConfig, str]]] = {}
    for prompt, where in sources:
        if prompt.model not in known_models:
            shown = ", ".join(sorted(known_models)) or "none"
            issues.append(_issue(where, f"model: unknown model {prompt.model!r} ({shown})"))
        profile = prompt.guardrail_profile
        if profile is not None and profile not in known_profiles:
            issues.append(_issue(where, f"guardrail_profile: unknown profile {profile!r}"))
        grouped.setdefault(prompt.name, []).append((prompt, where))
    registry = PromptRegistry()
    paths: dict[str, str] = {}
    for name, entries in grouped.items():
        family = _family(name, entries, issues)
        if family is None:
            continue
        for path in (family.path, *(v.path for v in family.versions.values())):
            if path in paths:
                issues.append(_issue(entries[0][1], f"path: {path} is served by {paths[path]}"))
            paths[path] = name
        registry.families[name] = family
    if issues:
        raise ConfigError(issues)
    return registry


def _family(
    name: str, entries: list[tuple[PromptConfig, str]], issues: list[ConfigIssue]
) -> PromptFamily | None:
    versions: dict[int, PromptVersion] = {}
    declared = {p.path for p, _where in entries if p.path is not None}
    if len(declared) > 1:
        issues.append(_issue(entries[0][1], f"path: versions of {name!r} name different paths"))
        return None
    path = declared.pop() if declared else f"/api/{name}"
    for prompt, where in entries:
        if prompt.version in versions:
            issues.append(_issue(where, f"version: {name!r} has two versions {prompt.version}"))
            continue
        versions[prompt.version] = compile_version(prompt, path)
    ordered = [versions[number] for number in sorted(versions)]
    if any(v.config.weight is not None for v in ordered):
        weights = [v.config.weight or 0 for v in ordered]
        if not any(weights):
            issues.append(_issue(entries[0][1], f"weight: no version of {name!r} has weight > 0"))
            return None
    else:
        current = [v for v in ordered if not v.deprecated] or ordered
        weights = [1 if v is current[-1] else 0 for v in ordered]
    sticky = any(v.config.sticky for v in ordered)
    return PromptFamily(name, path, versions, Rollout(ordered, weights, sticky=sticky), sticky)


def compile_version(prompt: PromptConfig, path: str) -> PromptVersion:
    parameters: dict[str, Any] = {
        key: value
        for key, value in prompt.parameters.model_dump(exclude_none=True).items()
        if key != "max_tokens"
    }
    if prompt.parameters.max_tokens is not None:
        parameters["max_tokens"] = prompt.parameters.max_tokens
    if prompt.output_schema is not None:
        parameters["response_format"] = {
            "type": "json_schema",
            "json_schema": {"name": prompt.name.replace("-", "_"), "schema": prompt.output_schema},
        }
    headers = {"x-gatewise-prompt": prompt.name, "x-gatewise-prompt-version": str(prompt.version)}
    if prompt.deprecated is not False:
        headers["deprecation"] = (
            "true" if prompt.deprecated is True else f"@{_epoch(prompt.deprecated)}"
        )
    if prompt.sunset is not None:
        headers["sunset"] = format_datetime(_utc(prompt.sunset), usegmt=True)
    return PromptVersion(
        config=prompt,
        name=prompt.name,
        version=prompt.version,
        path=f"{path}/v{prompt.version}",
        template=compile_template(prompt.template),
        system=compile_template(prompt.system) if prompt.system is not None else None,
        system_text=_plain(prompt.system),
        inputs=SchemaCheck(prompt.input_schema),
        output=SchemaCheck(prompt.output_schema) if prompt.output_schema is not None else None,
        parameters=parameters,
        headers=headers,
        decision=f"prompt:{prompt.name}@{prompt.version}",
        access_name=ACCESS_PREFIX + prompt.name,
    )


def _plain(source: str | None) -> str | None:
    """The text of a template without Jinja markup (what rendering it gives), else None."""
    if source is None or any(mark in source for mark in ("{{", "{%", "{#")):
        return None
    return render(compile_template(source), {}, "")


def _utc(moment: datetime | date) -> datetime:
    if not isinstance(moment, datetime):
        moment = datetime(moment.year, moment.month, moment.day)
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def _epoch(day: date) -> int:
    return int(_utc(day).timestamp())


def _issue(where: str, message: str) -> ConfigIssue:
    file, _, path = where.partition(": ")
    return ConfigIssue(file, None, None, path, message)
