"""``gatewise config diff``: the plan per section, secrets as references, stable order, and
the real command's exit codes (0 no changes, 2 changes, 1 an invalid file)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

import gatewise
from gatewise.config.loader import parse_config_text
from gatewise.config.plan import Plan, diff_configs, render_text

BASE = """
providers:
  openai:
    type: openai
    api_key: ${env:OPENAI_API_KEY}
  mock:
    type: mock
models:
  - name: gpt
    description: first
    deployments:
      - provider: openai
        model: gpt-4o
      - provider: mock
        model: m1
        name: backup
  - name: cheap
    deployments:
      - provider: mock
        model: m2
limits:
  - name: per-key
    per: key
    requests_per_minute: 60
budgets:
  - name: monthly
    per: tenant
    period: month
    usd: 100
    webhook: finance
    alerts: [50, 90]
webhooks:
  - name: finance
    url: https://hooks.example.com/a
    secret: ${env:HOOK_KEY}
guardrails:
  profiles:
    strict:
      rules:
        - guardrail: prompt_injection
  assign:
    tenants:
      acme: strict
prompts:
  inline:
    - name: greet
      version: 1
      template: "Hello {{ name }}"
      model: gpt
"""


def _config(text: str = BASE, **replace: str):  # type: ignore[no-untyped-def]
    for old, new in replace.items():
        assert old in text, old
        text = text.replace(old, new)
    return parse_config_text(text, "test.yaml")


def _section(plan: Plan, name: str) -> dict[str, object]:
    (section,) = [s for s in plan.sections if s.section == name]
    return {item.key: item for item in section.items}


def test_identical_configs_have_no_changes() -> None:
    plan = diff_configs(_config(), _config())
    assert not plan.has_changes
    assert render_text(plan) == "No changes."
    assert plan.to_json() == {
        "changes": False,
        "summary": {"added": 0, "changed": 0, "removed": 0},
        "sections": {},
    }


def test_reordering_a_list_is_no_change() -> None:
    swapped = BASE.replace(
        "  - name: cheap\n    deployments:\n      - provider: mock\n        model: m2\n", ""
    )
    swapped = swapped.replace(
        "models:\n",
        "models:\n  - name: cheap\n    deployments:\n      - provider: mock\n        model: m2\n",
    )
    assert not diff_configs(_config(), _config(swapped)).has_changes


@pytest.mark.parametrize(
    ("section", "key", "action", "old_text", "new_text"),
    [
        ("models", "gpt", "changed", "description: first", "description: second"),
        (
            "models",
            "cheap",
            "removed",
            "  - name: cheap\n    deployments:\n      - provider: mock\n        model: m2\n",
            "",
        ),
        (
            "deployments",
            "gpt/openai/gpt-4o",
            "changed",
            "model: gpt-4o\n",
            "model: gpt-4o\n        weight: 3\n",
        ),
        (
            "deployments",
            "gpt/backup",
            "removed",
            "      - provider: mock\n        model: m1\n        name: backup\n",
            "",
        ),
        (
            "deployments",
            "gpt/mock/m3",
            "added",
            "        name: backup\n",
            "        name: backup\n      - provider: mock\n        model: m3\n",
        ),
        ("limits", "per-key", "changed", "requests_per_minute: 60", "requests_per_minute: 90"),
        (
            "limits",
            "per-ip",
            "added",
            "limits:\n",
            "limits:\n  - name: per-ip\n    per: ip\n    requests_per_minute: 5\n",
        ),
        ("budgets", "monthly", "changed", "usd: 100", "usd: 250"),
        (
            "guardrail_profiles",
            "strict",
            "changed",
            "guardrail: prompt_injection",
            "guardrail: pii",
        ),
        (
            "guardrail_assignments",
            "tenants:acme",
            "removed",
            "    tenants:\n      acme: strict\n",
            "    tenants: {}\n",
        ),
        (
            "guardrail_assignments",
            "models:gpt",
            "added",
            "      acme: strict\n",
            "      acme: strict\n    models:\n      gpt: strict\n",
        ),
        (
            "prompts",
            "greet@v1",
            "changed",
            'template: "Hello {{ name }}"',
            'template: "Hi {{ name }}"',
        ),
        (
            "prompts",
            "greet@v2",
            "added",
            "      model: gpt\n",
            "      model: gpt\n    - name: greet\n      version: 2\n      template: x\n      model: gpt\n",
        ),
        ("providers", "mock", "changed", "type: mock", "type: mock\n    reply: pong"),
        ("webhooks", "finance", "changed", "hooks.example.com/a", "hooks.example.com/b"),
        (
            "routing",
            "routing",
            "changed",
            "providers:\n",
            "routing:\n  headers: false\nproviders:\n",
        ),
    ],
)
def test_each_section_reports_added_changed_removed(
    section: str, key: str, action: str, old_text: str, new_text: str
) -> None:
    plan = diff_configs(_config(), _config(**{old_text: new_text}))
    item = _section(plan, section)[key]
    assert item.action == action  # type: ignore[attr-defined]
    text = render_text(plan)
    assert f"{section}:" in text
    assert key in text
    assert "to add" in text


def test_changed_fields_show_old_and_new() -> None:
    plan = diff_configs(_config(), _config(**{"usd: 100": "usd: 250", "[50, 90]": "[80]"}))
    item = _section(plan, "budgets")["monthly"]
    fields = {f.path: (f.old, f.new) for f in item.fields}  # type: ignore[attr-defined]
    assert fields["usd"] == ("100", "250") or fields["usd"] == (100, 250)
    assert fields["alerts"] == ([50, 90], [80])
    assert "alerts: [50, 90] -> [80]" in render_text(plan)


def test_secrets_show_as_references_never_values(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "resolved-old-value")
    monkeypatch.setenv("OPENAI_KEY_2", "resolved-new-value")
    plan = diff_configs(_config(), _config(**{"${env:OPENAI_API_KEY}": "${env:OPENAI_KEY_2}"}))
    item = _section(plan, "providers")["openai"]
    (change,) = item.fields  # type: ignore[attr-defined]
    assert (change.path, change.old, change.new) == (
        "api_key",
        "${env:OPENAI_API_KEY}",
        "${env:OPENAI_KEY_2}",
    )
    dumped = render_text(plan) + json.dumps(plan.to_json())
    assert "resolved-" not in dumped
    assert "${env:OPENAI_KEY_2}" in dumped


def test_order_is_stable_and_sorted() -> None:
    new = _config(
        **{
            "limits:\n": (
                "limits:\n  - name: zz\n    per: ip\n    requests_per_minute: 5\n"
                "  - name: aa\n    per: ip\n    requests_per_minute: 5\n"
            )
        }
    )
    first = diff_configs(_config(), new)
    assert [i.key for i in _section(first, "limits").values()] == ["aa", "zz"]  # type: ignore[attr-defined]
    assert render_text(first) == render_text(diff_configs(_config(), new))
    assert [s.section for s in first.sections][:3] == ["providers", "models", "deployments"]


# --- the real command line -------------------------------------------------------


def _gatewise(*args: str) -> subprocess.CompletedProcess[str]:
    src = str(Path(gatewise.__file__).resolve().parents[1])
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([src, os.environ.get("PYTHONPATH", "")])}
    return subprocess.run(
        [sys.executable, "-m", "gatewise", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=False,
    )


def test_cli_diff_exit_codes_and_output(tmp_path: Path) -> None:
    old = tmp_path / "old.yaml"
    new = tmp_path / "new.yaml"
    bad = tmp_path / "bad.yaml"
    old.write_text(BASE)
    new.write_text(BASE.replace("usd: 100", "usd: 250"))
    bad.write_text(BASE.replace("per: key", "per: nobody"))

    same = _gatewise("config", "diff", str(old), str(old))
    assert (same.returncode, same.stdout.strip()) == (0, "No changes.")

    changed = _gatewise("config", "diff", str(old), str(new))
    assert changed.returncode == 2, changed.stderr
    assert "budgets:\n  ~ monthly  (changed)\n      usd: " in changed.stdout
    assert "Plan: 0 to add, 1 to change, 0 to remove." in changed.stdout

    as_json = _gatewise("config", "diff", "--json", str(old), str(new))
    assert as_json.returncode == 2
    document = json.loads(as_json.stdout)
    assert document["summary"] == {"added": 0, "changed": 1, "removed": 0}
    assert document["sections"]["budgets"][0]["key"] == "monthly"

    invalid = _gatewise("config", "diff", str(old), str(bad))
    assert invalid.returncode == 1
    assert f"{bad}:" in invalid.stderr
    assert "limits[0].per" in invalid.stderr
    assert invalid.stdout == ""
