"""Config loading: every error names file, line and field path, and never shows a secret."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from pydantic import ValidationError

import gatewise
from gatewise.config.loader import (
    ConfigError,
    ConfigIssue,
    load,
    load_config,
    parse_config_text,
    render_path,
    resolve_secret,
)
from gatewise.config.models import Config
from gatewise.config.providers import MockProviderConfig, OpenAIProviderConfig
from gatewise.config.secrets import SecretResolutionError

REPO = Path(__file__).resolve().parents[2]
QUICKSTART = REPO / "examples" / "quickstart.yaml"
OPENAI_LIKE_KEY = "sk-proj-abcdefghijklmnopqrstuvwxyz012345"
GITHUB_LIKE_TOKEN = "ghp_abcdefghijklmnopqrstuvwxyz0123456789"

# (id, yaml, expected line, expected path, fragment of the message)
ERROR_CASES = [
    (
        "unknown key",
        "server:\n  port: 8080\n  hots: 0.0.0.0\n",
        3,
        "server.hots",
        "unknown field 'hots'; did you mean 'host'?",
    ),
    (
        "unknown top-level section",
        "version: 1\nsever:\n  port: 8080\n",
        2,
        "sever",
        "did you mean 'server'?",
    ),
    (
        "wrong type",
        "server:\n  host: 127.0.0.1\n  port: eighty\n",
        3,
        "server.port",
        "valid integer",
    ),
    (
        "literal secret in api_key",
        f"providers:\n  openai:\n    type: openai\n    api_key: {OPENAI_LIKE_KEY}\n",
        4,
        "providers.openai.api_key",
        "looks like an OpenAI key; put secrets in the environment or a file",
    ),
    (
        "literal secret in a header",
        "providers:\n"
        "  openai:\n"
        "    type: openai\n"
        "    api_key: ${env:OPENAI_API_KEY}\n"
        "    headers:\n"
        f"      X-Extra: Bearer {GITHUB_LIKE_TOKEN}\n",
        6,
        "providers.openai.headers.X-Extra",
        "looks like a GitHub token",
    ),
    (
        "literal secret in a model description",
        "providers:\n"
        "  mock: {type: mock}\n"
        "models:\n"
        "  - name: m\n"
        f"    description: 'try {OPENAI_LIKE_KEY}'\n"
        "    deployments: [{provider: mock, model: m}]\n",
        5,
        "models[0].description",
        "looks like an OpenAI key",
    ),
    (
        "bad discriminator",
        "providers:\n  p:\n    type: nope\n",
        3,
        "providers.p.type",
        "unknown type 'nope'; expected one of 'openai', 'openai-compatible', 'azure', 'anthropic', 'gemini', 'mock'",
    ),
    (
        "provider without a type",
        "providers:\n  p:\n    base_url: http://localhost\n",
        2,
        "providers.p.type",
        "required field is missing",
    ),
    (
        "missing required field",
        "providers:\n  oa:\n    type: openai\n    base_url: https://example.com/v1\n",
        2,
        "providers.oa.api_key",
        "required field is missing",
    ),
    (
        "missing field in a list item",
        "providers:\n  mock: {type: mock}\nmodels:\n  - name: a\n    owned_by: me\n",
        4,
        "models[0].deployments",
        "required field is missing",
    ),
    (
        "unknown provider in a deployment",
        "providers:\n"
        "  mock: {type: mock}\n"
        "models:\n"
        "  - name: m\n"
        "    deployments:\n"
        "      - provider: mock\n"
        "        model: m\n"
        "      - provider: nowhere\n"
        "        model: m\n",
        8,
        "models[0].deployments[1].provider",
        "unknown provider 'nowhere' (configured: mock)",
    ),
    (
        "duplicate model names",
        "providers:\n"
        "  mock: {type: mock}\n"
        "models:\n"
        "  - name: a\n"
        "    deployments: [{provider: mock, model: a}]\n"
        "  - name: a\n"
        "    deployments: [{provider: mock, model: a}]\n",
        6,
        "models[1].name",
        "duplicate model name 'a'",
    ),
    (
        "azure deployments without api_version",
        "providers:\n"
        "  az:\n"
        "    type: azure\n"
        "    endpoint: https://example.openai.azure.com\n"
        "    api_key: ${env:AZURE_OPENAI_KEY}\n",
        2,
        "providers.az",
        "api_version is required when api_style is 'deployments'",
    ),
    (
        "invalid provider name",
        "providers:\n  'bad name':\n    type: mock\n",
        2,
        'providers["bad name"]',
        "should match pattern",
    ),
    (
        "YAML syntax error",
        "server:\n  host: a: b\n",
        2,
        "",
        "invalid YAML: mapping values are not allowed here",
    ),
    (
        "duplicate key",
        "server:\n  port: 8080\n  host: a\n  port: 9090\n",
        4,
        "server.port",
        "duplicate key 'port'",
    ),
    (
        "duplicate limit names",
        "providers:\n"
        "  mock: {type: mock}\n"
        "models:\n"
        "  - {name: a, deployments: [{provider: mock, model: a}]}\n"
        "  - {name: b, deployments: [{provider: mock, model: b}]}\n"
        "limits:\n"
        "  - {name: x, per: key, models: [a], requests_per_minute: 5}\n"
        "  - {name: x, per: key, models: [b], requests_per_minute: 50}\n",
        8,
        "limits[1].name",
        "duplicate limit name 'x'",
    ),
    (
        "a limit's name taken by another limit's default name",
        "providers:\n"
        "  mock: {type: mock}\n"
        "models:\n"
        "  - {name: a, deployments: [{provider: mock, model: a}]}\n"
        "limits:\n"
        "  - {name: key-1, per: key, requests_per_minute: 5}\n"
        "  - {per: key, concurrent: 2}\n",
        7,
        "limits[1].name",
        "duplicate limit name 'key-1'",
    ),
    (
        "a limit on a model that is not configured",
        "providers:\n"
        "  mock: {type: mock}\n"
        "models:\n"
        "  - {name: a, deployments: [{provider: mock, model: a}]}\n"
        "limits:\n"
        "  - per: key\n"
        "    models: [a, gpt-*]\n"
        "    requests_per_minute: 5\n",
        7,
        "limits[0].models[1]",
        "'gpt-*' matches no configured model (configured: a)",
    ),
    (
        "a budget on a model that is not configured",
        "providers:\n"
        "  mock: {type: mock}\n"
        "models:\n"
        "  - {name: a, deployments: [{provider: mock, model: a}]}\n"
        "budgets:\n"
        "  - {name: b, per: app, tokens: 5, period: day, models: [b]}\n",
        6,
        "budgets[0].models[0]",
        "'b' matches no configured model (configured: a)",
    ),
    (
        "a boolean where a limit needs a number",
        "limits:\n  - per: key\n    requests_per_minute: true\n",
        3,
        "limits[0].requests_per_minute",
        "valid integer",
    ),
    ("empty file", "", 1, "", "the file is empty"),
    ("only comments", "# nothing here yet\n", 1, "", "the file is empty"),
    ("top level is a list", "- server\n", 1, "", "top level must be a mapping"),
    ("unsupported tag", "server: !custom x\n", 1, "server", "unsupported YAML tag !custom"),
]


def _write(tmp_path: Path, text: str, name: str = "gw.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


@pytest.mark.parametrize(
    ("text", "line", "path", "message"),
    [case[1:] for case in ERROR_CASES],
    ids=[case[0] for case in ERROR_CASES],
)
def test_error_names_file_line_and_path(
    tmp_path: Path, text: str, line: int, path: str, message: str
) -> None:
    file = _write(tmp_path, text)
    with pytest.raises(ConfigError) as caught:
        load_config(file)
    issues = caught.value.issues
    matching = [issue for issue in issues if issue.path == path]
    assert matching, f"no issue at {path!r} in:\n{caught.value}"
    issue = matching[0]
    assert issue.file == str(file)
    assert issue.line == line
    assert message in issue.message
    prefix = f"{file}:{line}:" if issue.column is not None else f"{file}:{line}: "
    assert str(issue).startswith(prefix)
    assert str(issue).endswith(issue.message)
    if path:
        assert f": {path}: " in str(issue)
    rendered = str(caught.value)
    assert str(issue) in rendered.splitlines()
    assert OPENAI_LIKE_KEY not in rendered
    assert GITHUB_LIKE_TOKEN not in rendered


def test_all_issues_are_reported_at_once_in_line_order() -> None:
    text = (
        "server:\n"
        "  port: nope\n"
        "providers:\n"
        "  oa:\n"
        "    type: openai\n"
        f"    api_key: {OPENAI_LIKE_KEY}\n"
        "    colour: blue\n"
    )
    with pytest.raises(ConfigError) as caught:
        parse_config_text(text, "inline.yaml")
    found = [(issue.line, issue.path) for issue in caught.value.issues]
    assert found == [
        (2, "server.port"),
        (6, "providers.oa.api_key"),  # reported once, by the literal-secret scan
        (7, "providers.oa.colour"),
    ]
    assert str(caught.value).count("\n") == 2
    assert str(caught.value).startswith("inline.yaml:2:3: server.port: ")


def test_duplicate_key_never_shows_the_values() -> None:
    text = f"providers:\n  m:\n    type: mock\n    reply: {OPENAI_LIKE_KEY}\n    reply: x\n"
    with pytest.raises(ConfigError) as caught:
        parse_config_text(text, "dup.yaml")
    assert str(caught.value) == (
        "dup.yaml:5:5: providers.m.reply: duplicate key 'reply' in the same mapping"
    )


def test_a_key_shaped_like_a_secret_is_redacted_from_the_path() -> None:
    text = f"server:\n  {OPENAI_LIKE_KEY}: 1\n"
    with pytest.raises(ConfigError) as caught:
        parse_config_text(text, "k.yaml")
    assert OPENAI_LIKE_KEY not in str(caught.value)
    assert str(caught.value).startswith("k.yaml:2:3: server[<redacted>]: looks like an OpenAI key")


def test_missing_file_is_an_issue_naming_the_file(tmp_path: Path) -> None:
    missing = tmp_path / "nope.yaml"
    with pytest.raises(ConfigError) as caught:
        load_config(missing)
    assert caught.value.issues == [
        ConfigIssue(str(missing), None, None, "", "the file does not exist")
    ]
    assert str(caught.value) == f"{missing}: the file does not exist"


def test_quickstart_is_valid_and_round_trips() -> None:
    config = load_config(QUICKSTART)
    assert config.server.host == "127.0.0.1"
    assert config.server.port == 8080
    assert isinstance(config.providers["mock"], MockProviderConfig)
    openai = config.providers["openai"]
    assert isinstance(openai, OpenAIProviderConfig)
    assert openai.api_key == "${env:OPENAI_API_KEY}"  # kept as a reference, not resolved
    assert openai.optional is True
    assert [model.name for model in config.models] == [
        "mock-gpt",
        "mock-embed",
        "gpt-4o-mini",
        "text-embedding-3-small",
    ]
    assert Config.model_validate(config.model_dump()) == config
    assert parse_config_text(QUICKSTART.read_text(), "quickstart.yaml") == config


def test_env_references_are_not_resolved_at_load_time(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("GATEWISE_TEST_UNSET_KEY", raising=False)
    text = "providers:\n  oa:\n    type: openai\n    api_key: ${env:GATEWISE_TEST_UNSET_KEY}\n"
    loaded = load(_write(tmp_path, text))
    assert loaded.path == tmp_path / "gw.yaml"
    with pytest.raises(SecretResolutionError, match="GATEWISE_TEST_UNSET_KEY"):
        loaded.resolve_secret("${env:GATEWISE_TEST_UNSET_KEY}")


def test_file_references_resolve_next_to_the_config(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config_dir = tmp_path / "conf"
    (config_dir / "secrets").mkdir(parents=True)
    (config_dir / "secrets" / "openai").write_text("s3cret-value\n", encoding="utf-8")
    text = "providers:\n  oa:\n    type: openai\n    api_key: ${file:secrets/openai}\n"
    config_file = _write(config_dir, text)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)

    loaded = load(Path("..") / "conf" / "gw.yaml")
    assert loaded.base_dir == config_file.parent
    secret = loaded.resolve_secret("${file:secrets/openai}")
    assert secret.reveal() == "s3cret-value"
    assert "s3cret" not in repr(secret)
    assert resolve_secret("${file:secrets/openai}", config_file).reveal() == "s3cret-value"


def test_render_path() -> None:
    assert render_path(["models", 0, "deployments", 1, "provider"]) == (
        "models[0].deployments[1].provider"
    )
    assert render_path(["providers", "azure.eu", "api_key"]) == 'providers["azure.eu"].api_key'


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


def test_cli_validate_accepts_the_quickstart() -> None:
    result = _gatewise("config", "validate", str(QUICKSTART))
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == f"OK: {QUICKSTART} is valid (2 providers, 4 models)"


def test_cli_validate_rejects_with_locations_and_hides_secrets(tmp_path: Path) -> None:
    text = (
        "providers:\n"
        "  oa:\n"
        "    type: openai\n"
        f"    api_key: {OPENAI_LIKE_KEY}\n"
        "    headers:\n"
        f"      X-Extra: {GITHUB_LIKE_TOKEN}\n"
    )
    file = _write(tmp_path, text)
    result = _gatewise("config", "validate", str(file))
    assert result.returncode == 1
    output = result.stdout + result.stderr
    assert f"{file}:4:5: providers.oa.api_key: looks like an OpenAI key" in result.stderr
    assert f"{file}:6:7: providers.oa.headers.X-Extra: looks like a GitHub token" in result.stderr
    assert result.stderr.strip().endswith(f"INVALID: {file} has 2 errors")
    assert OPENAI_LIKE_KEY not in output
    assert GITHUB_LIKE_TOKEN not in output


def test_cli_schema_is_json_with_providers() -> None:
    result = _gatewise("config", "schema")
    assert result.returncode == 0, result.stderr
    schema = json.loads(result.stdout)
    assert schema["$schema"].startswith("https://json-schema.org/")
    assert schema["title"] == "Gatewise configuration"
    assert "providers" in schema["properties"]
    assert '"providers"' in result.stdout


def test_provider_proxy_needs_http_and_a_referenced_password() -> None:
    base = "providers:\n  p:\n    type: openai-compatible\n    base_url: http://x/v1\n    proxy: {proxy}\n"
    assert parse_config_text(base.format(proxy="http://proxy:3128"), "c.yaml").providers["p"].proxy
    assert (
        parse_config_text(
            base.format(proxy="'http://me:${env:PROXY_PASSWORD}@proxy:3128'"), "c.yaml"
        )
        .providers["p"]
        .proxy
    )
    for bad, fragment in (
        ("'http://me:hunter2@proxy:3128'", "proxy password must be a reference"),
        ("https://proxy:443", "http:// URL"),
    ):
        with pytest.raises(ConfigError) as caught:
            parse_config_text(base.format(proxy=bad), "c.yaml")
        text = str(caught.value)
        assert "c.yaml:5" in text and "providers.p.proxy" in text and fragment in text
        assert "hunter2" not in text


def test_the_production_example_is_valid() -> None:
    config = load_config(REPO / "examples" / "production.yaml")
    assert config.state.backend == "redis" and config.state.on_error == "closed"
    assert config.auth.mode == "keys" and config.auth.oidc[0].name == "gitlab"
    assert [b.name for b in config.budgets] == ["tenant-monthly", "app-daily-tokens"]
    assert config.budgets[0].webhook == "finance"
    approval = {m.name for m in config.models if m.approval == "required"}
    assert approval == {"prod-gpt", "prod-claude"}


@pytest.mark.parametrize(
    ("section", "message"),
    [
        ({"budgets": [{"name": "b", "per": "app", "usd": 5.5, "period": "day"}]}, "float"),
        ({"budgets": [{"name": "b", "per": "app", "period": "day"}]}, "exactly one of usd"),
        (
            {
                "budgets": [
                    {
                        "name": "b",
                        "per": "app",
                        "tokens": 5,
                        "period": "day",
                        "timezone": "Mars/Olympus",
                    }
                ]
            },
            "unknown time zone",
        ),
        (
            {
                "budgets": [
                    {"name": "b", "per": "app", "tokens": 5, "period": "day", "webhook": "nope"}
                ]
            },
            "unknown webhook 'nope'",
        ),
        ({"limits": [{"per": "key"}]}, "at least one of"),
        ({"state": {"backend": "redis"}}, "redis_url: required"),
        ({"state": {"backend": "redis", "redis_url": "redis://:hunter2@r:6379/0"}}, "reference"),
    ],
)
def test_traffic_sections_reject_mistakes_with_a_reason(
    section: dict[str, object], message: str
) -> None:
    with pytest.raises(ValidationError, match=message):
        Config.model_validate(section)
