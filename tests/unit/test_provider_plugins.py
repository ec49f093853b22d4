"""Provider types: the registry, and config sections validated by a plug-in's own model.

Plug-ins are "installed" per test by the ``install_plugins`` fixture (a dist-info
folder on sys.path); the plug-in itself is ``tests/echo_plugin.py``.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from typing import Any, Literal

import pytest
from pydantic import ConfigDict, ValidationError

from gatewise.commands.config import schema_command
from gatewise.config import plugins
from gatewise.config.loader import ConfigError, ConfigIssue, parse_config_text
from gatewise.config.models import Config
from gatewise.config.plugins import PluginError
from gatewise.config.providers import BUILTIN_PROVIDER_CONFIGS, MockProviderConfig, ProviderBase
from gatewise.providers.registry import (
    BUILTIN_TYPES,
    ProviderType,
    UnknownProviderType,
    known_types,
    provider_type,
)
from tests.echo_plugin import PROVIDER_TYPE, EchoConfig, EchoProvider

Install = Callable[[dict[str, str]], None]
ECHO = {"echo": "tests.echo_plugin:PROVIDER_TYPE"}
BUILTINS = ["openai", "openai-compatible", "azure", "anthropic", "gemini", "mock"]


def _issues(text: str) -> list[ConfigIssue]:
    with pytest.raises(ConfigError) as caught:
        parse_config_text(text, "gw.yaml")
    return caught.value.issues


def _one_issue(text: str) -> ConfigIssue:
    issues = _issues(text)
    assert len(issues) == 1, issues
    return issues[0]


# --- the registry -------------------------------------------------------------------


def test_builtin_types_are_registered_with_the_configs_models() -> None:
    assert list(BUILTIN_TYPES) == BUILTINS
    assert tuple(t.config_model for t in BUILTIN_TYPES.values()) == BUILTIN_PROVIDER_CONFIGS
    mock = provider_type("mock").create("m", MockProviderConfig(type="mock"), None)
    assert (mock.name, mock.kind) == ("m", "mock")


def test_loading_a_builtin_config_reads_no_entry_points(monkeypatch: pytest.MonkeyPatch) -> None:
    def no_scan(**_: Any) -> Any:
        raise AssertionError("entry points were read")

    monkeypatch.setattr(plugins, "entry_points", no_scan)
    plugins.clear_cache()
    config = parse_config_text(
        "providers:\n  m: {type: mock}\n  o: {type: openai, api_key: '${env:K}'}\n", "gw.yaml"
    )
    assert sorted(config.providers) == ["m", "o"]
    assert provider_type("openai").name == "openai"


def test_provider_modules_are_imported_only_when_built() -> None:
    code = (
        "import json, sys\n"
        "from gatewise.config.loader import parse_config_text\n"
        "from gatewise.providers.registry import provider_type\n"
        "text = 'providers:\\n  m: {type: mock}\\n  o: {type: openai, api_key: \"${env:K}\"}\\n'\n"
        "config = parse_config_text(text, 'gw.yaml')\n"
        "loaded = lambda: sorted(m for m in sys.modules if m.startswith('gatewise.providers.'))\n"
        "print(json.dumps(loaded()))\n"
        "provider_type('mock').create('m', config.providers['m'], None)\n"
        "print(json.dumps(loaded()))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    before, after = (json.loads(line) for line in result.stdout.splitlines())
    assert before == ["gatewise.providers.base", "gatewise.providers.registry"]
    assert "gatewise.providers.mock" in after and "gatewise.providers.openai" not in after


def test_an_installed_plugin_is_found_by_its_entry_point_name(install_plugins: Install) -> None:
    with pytest.raises(UnknownProviderType) as caught:
        provider_type("echo")
    assert "'echo'" in str(caught.value) and "'mock'" in str(caught.value)
    install_plugins(ECHO)
    assert provider_type("echo") is PROVIDER_TYPE
    assert known_types() == [*BUILTINS, "echo"]


def test_an_entry_point_named_like_a_builtin_type_is_ignored(install_plugins: Install) -> None:
    install_plugins({"mock": "tests.echo_plugin:PROVIDER_TYPE"})
    assert provider_type("mock") is BUILTIN_TYPES["mock"]
    config = parse_config_text("providers:\n  m: {type: mock}\n", "gw.yaml")
    assert isinstance(config.providers["m"], MockProviderConfig)
    assert known_types() == BUILTINS


def test_provider_type_checks_its_config_model() -> None:
    class Loose(ProviderBase):
        model_config = ConfigDict(extra="allow")
        type: Literal["loose"]

    with pytest.raises(TypeError, match=r"EchoConfig.type must be annotated Literal\['other'\]"):
        ProviderType("other", EchoConfig, EchoProvider)
    with pytest.raises(TypeError, match=r"must subclass gatewise\.config\.providers\.ProviderBase"):
        ProviderType("dict", dict, EchoProvider)  # type: ignore[type-var]
    with pytest.raises(TypeError, match="must keep ProviderBase's model_config"):
        ProviderType("loose", Loose, EchoProvider)


# --- config sections of a plug-in type ------------------------------------------------

ECHO_SECTION = "providers:\n  e:\n    type: echo\n    reply: pong\n    repeat: 2\n"


def test_a_plugin_section_is_validated_by_the_plugins_model(install_plugins: Install) -> None:
    install_plugins(ECHO)
    config = parse_config_text(
        ECHO_SECTION + "    timeouts: {connect: 2}\n"
        "models:\n  - name: m\n    deployments: [{provider: e, model: m}]\n",
        "gw.yaml",
    )
    section = config.providers["e"]
    assert isinstance(section, EchoConfig)
    assert (section.type, section.reply, section.repeat) == ("echo", "pong", 2)
    assert section.timeouts.connect == 2.0 and section.optional is False  # ProviderBase's fields
    with pytest.raises(ValidationError):
        section.reply = "changed"  # type: ignore[misc]  # frozen, like every config model


def test_a_plugin_sections_unknown_field_is_an_error_at_its_line(install_plugins: Install) -> None:
    install_plugins(ECHO)
    issue = _one_issue(ECHO_SECTION + "    rpely: x\n")
    assert (issue.line, issue.column, issue.path) == (6, 5, "providers.e.rpely")
    assert issue.message == "unknown field 'rpely'; did you mean 'reply'?"
    assert (
        str(issue) == "gw.yaml:6:5: providers.e.rpely: unknown field 'rpely'; did you mean 'reply'?"
    )


def test_a_plugin_sections_missing_and_mistyped_fields(install_plugins: Install) -> None:
    install_plugins(ECHO)
    missing, mistyped = _issues("providers:\n  e:\n    type: echo\n    repeat: many\n")
    assert (missing.line, missing.path, missing.message) == (
        2,
        "providers.e.reply",
        "required field is missing",
    )
    assert (mistyped.line, mistyped.column, mistyped.path) == (4, 5, "providers.e.repeat")
    assert "valid integer" in mistyped.message
    too_many = _one_issue(ECHO_SECTION.replace("repeat: 2", "repeat: 11"))
    assert (too_many.line, too_many.path) == (5, "providers.e.repeat")


def test_plugin_errors_carry_the_type_in_their_location_like_builtin_ones(
    install_plugins: Install,
) -> None:
    install_plugins(ECHO)
    with pytest.raises(ValidationError) as caught:
        Config.model_validate({"providers": {"e": {"type": "echo"}, "o": {"type": "openai"}}})
    locations = {error["loc"] for error in caught.value.errors()}
    assert locations == {
        ("providers", "e", "echo", "reply"),
        ("providers", "o", "openai", "api_key"),
    }


def test_an_unknown_type_lists_builtin_and_installed_types(install_plugins: Install) -> None:
    text = "providers:\n  p:\n    reply: x\n    type: ech\n"
    expected = ", ".join(repr(name) for name in BUILTINS)
    issue = _one_issue(text)
    assert (issue.line, issue.column, issue.path) == (4, 5, "providers.p.type")
    assert issue.message == f"unknown type 'ech'; expected one of {expected}"
    install_plugins(ECHO)
    assert _one_issue(text).message == f"unknown type 'ech'; expected one of {expected}, 'echo'"
    missing = _one_issue("providers:\n  p:\n    reply: x\n")
    assert (missing.line, missing.path) == (2, "providers.p.type")
    assert missing.message == f"required field is missing; one of {expected}, 'echo'"


@pytest.mark.parametrize(
    ("reference", "message"),
    [
        (
            "tests.no_such_plugin:PROVIDER_TYPE",
            "the plug-in 'echo' (tests.no_such_plugin:PROVIDER_TYPE) could not be loaded: "
            "ModuleNotFoundError: No module named 'tests.no_such_plugin'",
        ),
        (
            "tests.echo_plugin:NOT_A_PROVIDER_TYPE",
            "the plug-in 'echo' must be a gatewise.providers.registry.ProviderType, not dict",
        ),
    ],
    ids=["import fails", "not a provider type"],
)
def test_a_broken_plugin_is_an_error_on_the_type(
    install_plugins: Install, reference: str, message: str
) -> None:
    install_plugins({"echo": reference})
    issue = _one_issue(ECHO_SECTION)
    assert (issue.line, issue.column, issue.path, issue.message) == (
        3,
        5,
        "providers.e.type",
        message,
    )
    with pytest.raises(PluginError):
        provider_type("echo")


# --- the JSON Schema ------------------------------------------------------------------


def _schema(capsys: pytest.CaptureFixture[str]) -> tuple[dict[str, Any], list[str], str]:
    """`gatewise config schema`'s schema, the provider types it describes, its stderr."""
    assert schema_command() == 0
    out, err = capsys.readouterr()
    schema = json.loads(out)
    [section] = schema["properties"]["providers"]["patternProperties"].values()
    mapping = section["discriminator"]["mapping"]
    assert sorted(choice["$ref"] for choice in section["oneOf"]) == sorted(mapping.values())
    return schema, list(mapping), err


def test_the_schema_describes_builtin_and_installed_provider_types(
    install_plugins: Install, capsys: pytest.CaptureFixture[str]
) -> None:
    schema, types, _ = _schema(capsys)
    assert (
        schema["properties"]["providers"] == Config.model_json_schema()["properties"]["providers"]
    )
    assert sorted(types) == sorted(BUILTINS)
    install_plugins(ECHO)
    schema, types, err = _schema(capsys)
    assert sorted(types) == sorted([*BUILTINS, "echo"])
    echo = schema["$defs"]["EchoConfig"]
    assert echo["properties"]["type"]["const"] == "echo"
    assert echo["properties"]["repeat"]["maximum"] == 10
    assert set(echo["required"]) == {"type", "reply"}
    assert echo["additionalProperties"] is False
    assert err == ""


def test_the_schema_leaves_a_broken_plugin_out_with_a_warning(
    install_plugins: Install, capsys: pytest.CaptureFixture[str]
) -> None:
    install_plugins({**ECHO, "broken": "tests.no_such_plugin:X"})
    _, types, err = _schema(capsys)
    assert sorted(types) == sorted([*BUILTINS, "echo"])
    assert err.startswith(
        "warning: the plug-in 'broken' (tests.no_such_plugin:X) could not be loaded"
    )
