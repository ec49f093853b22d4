"""What changes between two configs: the plan ``gatewise config diff`` prints.

Pure: two loaded ``Config`` objects (and, optionally, their prompt registries)
go in, a ``Plan`` comes out. Each section keys its items by what an operator
calls them (a model by name, a deployment by ``model/deployment``, a prompt by
``name@vN``), so a reordered list is no change and a renamed item reads as one
removed and one added. Changed items list the fields that differ, old -> new.

Configs are compared as loaded, before secret references are resolved, so a
secret can only show as its ``${env:...}`` / ``${file:...}`` reference. As a
second fence, a secret-named field holding anything but a reference is shown
as ``<hidden>``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from gatewise.config.models import Config, ModelConfig
from gatewise.config.secrets import WHOLE_REFERENCE

if TYPE_CHECKING:
    from gatewise.prompts.registry import PromptRegistry

__all__ = ["FieldChange", "ItemChange", "Plan", "SectionPlan", "diff_configs", "render_text"]

Action = Literal["added", "changed", "removed"]
Items = dict[str, Any]

_SECRET_FIELD = re.compile(r"(api_key|secret|token|password|hash_key)$", re.IGNORECASE)
_HIDDEN = "<hidden>"
_MAX_SHOWN = 120
#: Sections with their own keyed items; every other top-level field is one item.
_KEYED = (
    "providers",
    "models",
    "deployments",
    "limits",
    "budgets",
    "guardrail_profiles",
    "guardrail_assignments",
    "prompts",
    "webhooks",
)
_OWN_SECTIONS = {"providers", "models", "limits", "budgets", "webhooks", "prompts", "version"}


@dataclass(frozen=True, slots=True)
class FieldChange:
    """One field of an item: ``path`` is dotted (``routing.fallbacks``); old/new JSON values."""

    path: str
    old: Any
    new: Any


@dataclass(frozen=True, slots=True)
class ItemChange:
    key: str
    action: Action
    #: For ``changed``: the fields that differ, sorted by path.
    fields: tuple[FieldChange, ...] = ()


@dataclass(frozen=True, slots=True)
class SectionPlan:
    section: str
    items: tuple[ItemChange, ...]


@dataclass(frozen=True, slots=True)
class Plan:
    sections: tuple[SectionPlan, ...]

    @property
    def has_changes(self) -> bool:
        return any(section.items for section in self.sections)

    def counts(self) -> dict[Action, int]:
        counts: dict[Action, int] = {"added": 0, "changed": 0, "removed": 0}
        for section in self.sections:
            for item in section.items:
                counts[item.action] += 1
        return counts

    def to_json(self) -> dict[str, Any]:
        """The plan as plain data (``--json``): stable keys, sections in plan order."""
        return {
            "changes": self.has_changes,
            "summary": self.counts(),
            "sections": {
                section.section: [
                    {
                        "key": item.key,
                        "action": item.action,
                        **(
                            {
                                "fields": [
                                    {"path": f.path, "old": f.old, "new": f.new}
                                    for f in item.fields
                                ]
                            }
                            if item.action == "changed"
                            else {}
                        ),
                    }
                    for item in section.items
                ]
                for section in self.sections
                if section.items
            },
        }


def diff_configs(
    old: Config,
    new: Config,
    old_prompts: PromptRegistry | None = None,
    new_prompts: PromptRegistry | None = None,
) -> Plan:
    """The plan from ``old`` to ``new``. Without registries, prompts come from the inline
    list only (a prompt folder is read by ``check_prompts``)."""
    before = _sections(old, old_prompts)
    after = _sections(new, new_prompts)
    order = [*_KEYED, *(name for name in before if name not in _KEYED)]
    return Plan(tuple(SectionPlan(name, _diff_items(before[name], after[name])) for name in order))


def _sections(config: Config, prompts: PromptRegistry | None) -> dict[str, Items]:
    data = {name: _dump(getattr(config, name)) for name in type(config).model_fields}
    guardrails = dict(data.pop("guardrails"))
    assign = guardrails.pop("assign")
    profiles = guardrails.pop("profiles")
    assignments: Items = {
        f"{scope}:{who}": profile
        for scope, pairs in assign.items()
        for who, profile in pairs.items()
    }
    sections: dict[str, Items] = {
        "providers": data["providers"],
        "models": {m["name"]: _without(m, "deployments") for m in data["models"]},
        "deployments": dict(_deployments(config.models)),
        "limits": {
            (limit.get("name") or f"{limit['per']}-{index}"): limit
            for index, limit in enumerate(data["limits"])
        },
        "budgets": {budget["name"]: budget for budget in data["budgets"]},
        "guardrail_profiles": profiles,
        "guardrail_assignments": assignments,
        "prompts": _prompts(config, prompts),
        "webhooks": {hook["name"]: hook for hook in data["webhooks"]},
        "guardrails": {"guardrails": guardrails},
    }
    for name, value in data.items():
        if name not in _OWN_SECTIONS:
            sections[name] = {name: value}
    return sections


def _deployments(models: Iterable[ModelConfig]) -> Iterable[tuple[str, Any]]:
    """``model/deployment`` keys, deployment named as the router names it (provider/model,
    ``#2`` for repeats) unless it has a name of its own."""
    for model in models:
        seen: dict[str, int] = {}
        for deployment in model.deployments:
            name = deployment.name
            if name is None:
                base = f"{deployment.provider}/{deployment.model}"
                seen[base] = seen.get(base, 0) + 1
                name = base if seen[base] == 1 else f"{base}#{seen[base]}"
            yield f"{model.name}/{name}", _dump(deployment)


def _prompts(config: Config, registry: PromptRegistry | None) -> Items:
    if registry is None:
        return {f"{p.name}@v{p.version}": _dump(p) for p in config.prompts.inline}
    return {f"{v.name}@v{v.version}": _dump(v.config) for v in registry.versions()}


def _dump(value: Any) -> Any:
    if hasattr(value, "model_dump"):
        return _mask(value.model_dump(mode="json"))
    if isinstance(value, Mapping):
        return {k: _dump(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_dump(v) for v in value]
    return value


def _mask(value: Any, field: str = "") -> Any:
    """Hide a secret-named field's value unless it is a reference (the second fence)."""
    if isinstance(value, dict):
        return {k: _mask(v, str(k)) for k, v in value.items()}
    if isinstance(value, list):
        return [_mask(v, field) for v in value]
    if (
        isinstance(value, str)
        and _SECRET_FIELD.search(field)
        and WHOLE_REFERENCE.match(value) is None
    ):
        return _HIDDEN
    return value


def _without(item: Mapping[str, Any], key: str) -> dict[str, Any]:
    return {k: v for k, v in item.items() if k != key}


def _diff_items(before: Items, after: Items) -> tuple[ItemChange, ...]:
    changes: list[ItemChange] = []
    for key in sorted(before.keys() | after.keys()):
        if key not in after:
            changes.append(ItemChange(key, "removed"))
        elif key not in before:
            changes.append(ItemChange(key, "added"))
        elif before[key] != after[key]:
            fields = tuple(sorted(_diff_fields(before[key], after[key], ""), key=lambda f: f.path))
            changes.append(ItemChange(key, "changed", fields))
    return tuple(changes)


def _diff_fields(old: Any, new: Any, path: str) -> Iterable[FieldChange]:
    """Dicts are walked key by key; anything else (lists included) compares whole."""
    if isinstance(old, dict) and isinstance(new, dict):
        for key in old.keys() | new.keys():
            sub = f"{path}.{key}" if path else str(key)
            if old.get(key) != new.get(key) or (key in old) != (key in new):
                yield from _diff_fields(old.get(key), new.get(key), sub)
        return
    yield FieldChange(path or "value", old, new)


def _show(value: Any) -> str:
    text = json.dumps(value, sort_keys=True, ensure_ascii=False)
    return text if len(text) <= _MAX_SHOWN else text[: _MAX_SHOWN - 1] + "…"


_SIGN = {"added": "+", "changed": "~", "removed": "-"}


def render_text(plan: Plan) -> str:
    """A readable plan: one block per section with changes, ``+ ~ -`` per item, fields
    indented under changed items; a summary line last."""
    lines: list[str] = []
    for section in plan.sections:
        if not section.items:
            continue
        lines.append(f"{section.section}:")
        for item in section.items:
            lines.append(f"  {_SIGN[item.action]} {item.key}  ({item.action})")
            for change in item.fields:
                lines.append(f"      {change.path}: {_show(change.old)} -> {_show(change.new)}")
    counts = plan.counts()
    if not plan.has_changes:
        lines.append("No changes.")
    else:
        lines.append(
            f"Plan: {counts['added']} to add, {counts['changed']} to change, "
            f"{counts['removed']} to remove."
        )
    return "\n".join(lines)
