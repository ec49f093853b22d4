"""``gatewise guardrails eval|train``: measure the guardrails on labelled data; build the
optional model tier.

``eval`` runs a profile's guardrails (the built-in ``standard`` unless ``--profile``
names another, from ``--config`` or the built-in ones) over a JSON Lines file and
prints precision, recall, F1, false-positive rate and p50/p99 latency per guardrail
and per family or entity type. Rows are ``{"text", "label": "attack"|"benign",
"family"?, "role"?}`` (read by the guardrails that judge a whole text:
prompt_injection, moderation, custom ones) or ``{"text", "spans": [{"start", "end",
"type"}]}`` (read by pii and secrets; entity types compare by the gateway's short
labels, so EMAIL_ADDRESS in a file matches EMAIL).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import typer

from gatewise.config.guardrails import GuardrailsConfig
from gatewise.guardrails.base import Finding, Span, TextRole
from gatewise.guardrails.evaluation import Checker, evaluate, render
from gatewise.guardrails.masking import label_of
from gatewise.guardrails.rules import Profile, Rule, inspect
from gatewise.guardrails.setup import build_guardrails

#: Guardrails that report pieces of text: judged on span rows.
SPAN_GUARDRAILS = ("pii", "secrets")
ROLES: tuple[TextRole, ...] = ("system", "developer", "user", "assistant", "tool")


class EvalError(Exception):
    pass


def read_rows(path: Path) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    for number, line in enumerate(path.read_text(encoding="utf-8").split("\n"), start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as error:
            raise EvalError(f"{path}:{number}: not JSON ({error.msg})") from None
        if not isinstance(row, dict) or not isinstance(row.get("text"), str):
            raise EvalError(f"{path}:{number}: a row needs a string 'text'")
        if "spans" not in row and row.get("label") not in ("attack", "benign"):
            raise EvalError(f"{path}:{number}: a row needs 'spans' or 'label': attack|benign")
        if "spans" in row:
            row["spans"] = [{**s, "type": label_of(str(s["type"]))} for s in row["spans"]]
        rows.append(row)
    if not rows:
        raise EvalError(f"{path}: no rows")
    return rows


def rule_checkers(rules: Sequence[Rule], direction: str) -> Mapping[str, Checker]:
    """One checker per author role: the findings ``rules`` keep for a text (as the
    gateway runs them, through ``rules.inspect``)."""
    loop = asyncio.new_event_loop()

    def make(role: TextRole) -> Checker:
        def check(text: str) -> list[Finding]:
            seen = loop.run_until_complete(inspect(rules, text, role, direction))
            return [
                Finding(v.guardrail, v.category, v.score, tuple(_span(s) for s in v.spans))
                for v in seen.verdicts
            ]

        return check

    return {role: make(role) for role in ROLES}


def _span(span: tuple[int, int, str]) -> Span:
    return Span(*span)


def _kinds(guardrail: object) -> frozenset[str] | None:
    """The entity types a span guardrail reports, when it says (the built-in ones do)."""
    detector = getattr(guardrail, "detector", guardrail)
    detector = getattr(detector, "inner", detector)  # under the gateway's short labels
    kinds = getattr(detector, "entities", None) or getattr(detector, "categories", None)
    return frozenset(label_of(kind) for kind in kinds) if kinds else None


def run_eval(path: Path, profile: Profile) -> str:
    rows = read_rows(path)
    spans = "spans" in rows[0]
    if any(("spans" in row) != spans for row in rows):
        raise EvalError(f"{path}: mixes span rows and labelled rows; use one kind per file")
    out: list[str] = []
    for name in sorted({rule.name for rule in (*profile.input_rules, *profile.output_rules)}):
        if (name in SPAN_GUARDRAILS) != spans:
            continue
        rules = [r for r in profile.input_rules if r.name == name]
        direction = "input"
        if not rules:
            rules, direction = [r for r in profile.output_rules if r.name == name], "output"
        judged = rows
        kinds = _kinds(rules[0].guardrail)
        if spans and kinds is not None:  # another guardrail's entity types are not its misses
            judged = [
                {**row, "spans": [s for s in row["spans"] if s["type"] in kinds]} for row in rows
            ]
        out.append(render(evaluate(judged, rule_checkers(rules, direction), name)))
    if not out:
        kind = "span" if spans else "labelled"
        raise EvalError(f"profile {profile.name!r} has no guardrail that reads {kind} rows")
    return "\n\n".join(out)


def eval_command(path: Path, profile_name: str | None, config_path: Path | None) -> int:
    from gatewise.config.loader import ConfigError, load_config
    from gatewise.config.secrets import SecretResolutionError, interpolate

    try:
        if config_path is not None:
            section = load_config(config_path).guardrails
            base = config_path.resolve().parent
        else:
            section, base = GuardrailsConfig(), None
        rails = build_guardrails(section, lambda text: interpolate(text, base))
        name = profile_name or section.check_profile
        if name not in rails.profiles:
            raise EvalError(
                f"unknown profile {name!r} (known: {', '.join(sorted(rails.profiles))})"
            )
        typer.echo(run_eval(path, rails.profile(name)))
    except (EvalError, ConfigError, SecretResolutionError, OSError) as error:
        typer.echo(f"error: {error}", err=True)
        return 1
    return 0
