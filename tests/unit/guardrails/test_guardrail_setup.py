"""Building guardrails from the config: who gets which profile, and plug-ins."""

from __future__ import annotations

from collections.abc import Sequence
from functools import partial
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from gatewise.config.guardrails import GuardrailsConfig
from gatewise.guardrails.base import Finding, TextRole
from gatewise.guardrails.setup import Guardrails, UnknownGuardrailPlugin, custom, used_profiles
from gatewise.identity.directory import Directory


class Corporate:
    """A plug-in guardrail: the factory gets its name and options."""

    def __init__(self, name: str, options: dict[str, Any]) -> None:
        self.name = name
        self.word = options["word"]

    async def scan(self, text: str, role: TextRole) -> Sequence[Finding]:
        return [Finding(self.name, "word", 1.0)] if self.word in text else []


def make_corporate(name: str, options: dict[str, Any]) -> Corporate:
    return Corporate(name, options)


def install_guardrail_plugin(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    dist_info = tmp_path / "corp_guard-1.0.dist-info"
    dist_info.mkdir()
    (dist_info / "METADATA").write_text("Metadata-Version: 2.1\nName: corp-guard\nVersion: 1.0\n")
    (dist_info / "entry_points.txt").write_text(
        f"[gatewise.guardrails]\ncorporate = {__name__}:make_corporate\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))


async def test_a_plugin_guardrail_loads_through_its_entry_point(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    install_guardrail_plugin(tmp_path, monkeypatch)
    section = GuardrailsConfig.model_validate(
        {"custom": {"corp": {"type": "plugin", "plugin": "corporate", "options": {"word": "zeta"}}}}
    )
    guardrail = custom("corp", section.custom["corp"], lambda ref: ref)
    assert [f.category for f in await guardrail.scan("project zeta", "user")] == ["word"]
    missing = GuardrailsConfig.model_validate(
        {"custom": {"x": {"type": "plugin", "plugin": "not-installed"}}}
    )
    with pytest.raises(UnknownGuardrailPlugin, match="not-installed"):
        custom("x", missing.custom["x"], lambda ref: ref)


def directory() -> Any:
    """The indexes a ``Directory`` resolves caller names with, and its own resolver."""
    found = SimpleNamespace(
        tenants_by_id={"t1": SimpleNamespace(name="acme"), "t2": SimpleNamespace(name="beta")},
        teams_by_id={"tm1": SimpleNamespace(name="support")},
        apps_by_id={"a1": SimpleNamespace(name="bot")},
    )
    found.config_names = partial(Directory.config_names, found)
    return found


def caller(**ids: str | None) -> Any:
    base = {"key_id": None, "tenant_id": None, "team_id": None, "app_id": None}
    return SimpleNamespace(**{**base, **ids})


def test_the_most_specific_assignment_wins() -> None:
    section = GuardrailsConfig.model_validate(
        {
            "default": "standard",
            "profiles": {"k": {}, "a": {}, "t": {}, "n": {}, "m": {}},
            "assign": {
                "keys": {"key1": "k"},
                "apps": {"acme/bot": "a"},
                "teams": {"acme/support": "t"},
                "tenants": {"acme": "n", "beta": "off"},
                "models": {"gpt-4o": "m"},
            },
        }
    )
    rails = Guardrails(section, {}, directory=directory)
    full = {"tenant_id": "t1", "team_id": "tm1", "app_id": "a1"}
    assert rails.choose(caller(key_id="key1", **full), "gpt-4o") == "k"
    assert rails.choose(caller(key_id="key2", **full), "gpt-4o") == "a"
    assert rails.choose(caller(tenant_id="t1", team_id="tm1"), "gpt-4o") == "t"
    assert rails.choose(caller(tenant_id="t1"), "gpt-4o") == "n"
    assert rails.choose(caller(tenant_id="t2"), "gpt-4o") == "off"
    assert rails.choose(caller(tenant_id="t9"), "gpt-4o") == "m"
    assert rails.choose(None, "other") == "standard"
    assert used_profiles(rails) == ["a", "k", "m", "n", "standard", "t"]


class Counting:
    name = "counting"

    def __init__(self) -> None:
        self.calls = 0

    def detect(self, text: str, role: TextRole = "user") -> list[Finding]:
        self.calls += 1
        return [Finding(self.name, role, 1.0)] if "x" in text else []


def test_findings_are_remembered_per_text_and_role_within_a_bound() -> None:
    from gatewise.guardrails.base import SyncGuardrail

    detector = Counting()
    guardrail = SyncGuardrail(detector, memory=2)
    assert guardrail.detect("x one", "user")[0].category == "user"
    assert guardrail.detect("x one", "user")[0].category == "user"
    assert detector.calls == 1
    assert guardrail.detect("x one", "tool")[0].category == "tool"  # another role: read again
    assert detector.calls == 2
    guardrail.detect("two", "user")  # the memory is full: the oldest entry goes
    guardrail.detect("x one", "user")
    assert detector.calls == 4
    never = SyncGuardrail(Counting(), memory=0)
    never.detect("x", "user")
    never.detect("x", "user")
    assert never.detector.calls == 2  # type: ignore[attr-defined]


def test_what_cannot_start_is_one_line_naming_the_setting(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from gatewise.config.models import Config
    from gatewise.runtime.prepare import StartupError, prepare_guardrails

    monkeypatch.delenv("GW_MISSING_SECRET", raising=False)
    monkeypatch.setenv("GW_DLP_TOKEN", "t0k")

    def start(section: dict[str, Any]) -> Guardrails:
        return prepare_guardrails(Config.model_validate({"guardrails": section}), tmp_path)

    with pytest.raises(
        StartupError, match=r"^guardrails.hash_key: environment variable GW_MISSING"
    ):
        start({"hash_key": "${env:GW_MISSING_SECRET}"})
    hook = {"type": "webhook", "url": "http://127.0.0.1:9/check"}
    missing = {**hook, "headers": {"authorization": "Bearer ${env:GW_MISSING_SECRET}"}}
    with pytest.raises(StartupError, match=r"^guardrails.custom.w.headers.authorization: "):
        start({"custom": {"w": missing}})
    fine = {**hook, "headers": {"authorization": "Bearer ${env:GW_DLP_TOKEN}", "x-team": "a"}}
    rails = start({"custom": {"w": fine}, "profiles": {"p": {"rules": [{"guardrail": "w"}]}}})
    assert b"authorization: Bearer t0k\r\nx-team: a\r\n" in rails.guardrails["w"]._head.encode()  # type: ignore[attr-defined]
    monkeypatch.setenv("GATEWISE_MODEL_DIR", str(tmp_path))
    with pytest.raises(
        StartupError, match=r"^guardrails.model_tier: .*gatewise.guardrails.injection.train"
    ):
        start({"model_tier": True})


async def test_an_awaitable_guardrail_remembers_scans_but_not_one_off_readings() -> None:
    from gatewise.guardrails.base import RememberingGuardrail

    class Judging(RememberingGuardrail):
        name = "judging"

        def __init__(self) -> None:
            super().__init__(memory=8)
            self.calls = 0

        async def judge(self, text: str, role: TextRole) -> list[Finding]:
            self.calls += 1
            return [Finding(self.name, role, 1.0)]

    guardrail = Judging()
    assert (await guardrail.scan("a system prompt", "system"))[0].category == "system"
    await guardrail.scan("a system prompt", "system")
    assert guardrail.calls == 1
    await guardrail.scan_once("a stream window", "assistant")
    await guardrail.scan_once("a stream window", "assistant")
    assert guardrail.calls == 3


async def test_a_long_text_is_read_off_the_event_loop_and_not_remembered() -> None:
    import threading

    from gatewise.guardrails.base import OFF_LOOP_CHARS, SyncGuardrail

    class Where:
        name = "where"

        def __init__(self) -> None:
            self.threads: list[int] = []

        def detect(self, text: str, role: TextRole = "user") -> list[Finding]:
            self.threads.append(threading.get_ident())
            return []

    detector = Where()
    guardrail = SyncGuardrail(detector)
    loop_thread = threading.get_ident()
    await guardrail.scan("short", "user")
    long = "x" * OFF_LOOP_CHARS
    await guardrail.scan(long, "user")
    await guardrail.scan(long, "user")
    await guardrail.scan_once(long, "assistant")
    assert detector.threads[0] == loop_thread
    assert len(detector.threads) == 4 and loop_thread not in detector.threads[1:]
