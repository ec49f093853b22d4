"""The guardrails section: what a config may say, and the errors that name the field."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from gatewise.config.guardrails import DEFAULT_PROFILES, GuardrailsConfig
from gatewise.guardrails.base import Span
from gatewise.guardrails.masking import Vault, apply, mask_spans


def config(**section: Any) -> GuardrailsConfig:
    return GuardrailsConfig.model_validate(section)


@pytest.mark.parametrize(
    ("section", "message"),
    [
        (
            {"profiles": {"p": {"rules": [{"guardrail": "nope"}]}}},
            "profiles.p.rules[0].guardrail: unknown guardrail 'nope'",
        ),
        (
            {"profiles": {"p": {"rules": [{"guardrail": "prompt_injection", "action": "mask"}]}}},
            "profiles.p.rules[0].action: prompt_injection finds no piece of text to mask",
        ),
        (
            {"profiles": {"p": {"rules": [{"guardrail": "system_prompt_leak", "on": "input"}]}}},
            "profiles.p.rules[0].on: system_prompt_leak reads output only",
        ),
        ({"assign": {"tenants": {"acme": "missing"}}}, "assign.tenants.acme: unknown profile"),
        ({"default": "missing"}, "default: unknown profile 'missing'"),
        ({"profiles": {"off": {}}}, "profiles.off: the name 'off' is reserved"),
        (
            {"custom": {"w": {"type": "webhook"}}},
            "url: required for a webhook guardrail",
        ),
        (
            {"moderation": {"patterns": ["(unclosed"]}},
            "not a valid regular expression",
        ),
    ],
)
def test_mistakes_are_named(section: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError, match=message.replace("[", r"\[").replace("]", r"\]")):
        config(**section)


def test_built_in_profiles_exist_and_can_be_overridden() -> None:
    plain = config()
    assert set(plain.all_profiles()) == {"standard", "strict", "off"}
    own = config(profiles={"standard": {"rules": [{"guardrail": "pii", "action": "flag"}]}})
    assert own.all_profiles()["standard"].rules[0].action == "flag"
    assert own.all_profiles()["strict"] == DEFAULT_PROFILES["strict"]


def test_a_custom_guardrail_can_be_used_by_a_rule() -> None:
    section = config(
        custom={"corp": {"type": "webhook", "url": "http://127.0.0.1:9/check"}},
        profiles={"p": {"rules": [{"guardrail": "corp", "on": "both"}]}},
        assign={"models": {"gpt-4o": "p"}},
    )
    assert section.assign.models == {"gpt-4o": "p"}


def test_placeholders_number_values_by_first_appearance_and_repeat() -> None:
    vault = Vault()
    text = "a@x.io b@x.io a@x.io"
    spans = [
        (Span(0, 6, "EMAIL"), "placeholder"),
        (Span(7, 13, "EMAIL"), "placeholder"),
        (Span(14, 20, "EMAIL"), "placeholder"),
    ]
    assert apply(text, mask_spans(text, spans, vault)) == "<EMAIL_1> <EMAIL_2> <EMAIL_1>"
    assert vault.value("<EMAIL_2>") == "b@x.io"


def test_overlapping_spans_merge_into_one_replacement() -> None:
    text = "card 4111 1111 1111 1111 end"
    spans = [(Span(5, 24, "CREDIT_CARD"), "redact"), (Span(10, 14, "PHONE"), "redact")]
    assert apply(text, mask_spans(text, spans, None)) == "card [CREDIT_CARD] end"


def test_hashes_are_stable_per_value() -> None:
    text = "x a@x.io y a@x.io"
    spans = [(Span(2, 8, "EMAIL"), "hash"), (Span(11, 17, "EMAIL"), "hash")]
    out = apply(text, mask_spans(text, spans, None))
    first, second = out.split(" ")[1], out.split(" ")[3]
    assert first == second and first.startswith("[EMAIL:") and "a@x.io" not in out


def test_the_hash_key_is_a_reference_and_keys_the_tags(monkeypatch: pytest.MonkeyPatch) -> None:
    from gatewise.config.secrets import resolve_reference
    from gatewise.guardrails.setup import build_guardrails

    with pytest.raises(ValidationError, match="must be a reference"):
        config(hash_key="literal-key")
    monkeypatch.setenv("GW_TEST_HASH_KEY", "k1")
    keyed = build_guardrails(config(hash_key="${env:GW_TEST_HASH_KEY}"), resolve_reference)
    profile = keyed.profile("standard")
    assert profile.hash_key == b"k1"
    text = "x a@x.io"
    spans = [(Span(2, 8, "EMAIL"), "hash")]
    tag = apply(text, mask_spans(text, spans, None, profile.hash_key))
    assert tag == apply(text, mask_spans(text, spans, None, b"k1"))
    assert tag != apply(text, mask_spans(text, spans, None, b"k2"))


async def test_a_findings_overlapping_spans_are_reported_once() -> None:
    from gatewise.guardrails.base import Finding, SyncGuardrail
    from gatewise.guardrails.rules import Rule, inspect

    class Twice:
        name = "prompt_injection"

        def detect(self, text: str, role: str = "user") -> list[Finding]:
            spans = (Span(10, 30, "x"), Span(4, 12, "x"), Span(14, 30, "x"), Span(40, 45, "x"))
            return [Finding(self.name, "x", 0.9, spans)]

    seen = await inspect([Rule(SyncGuardrail(Twice()), "flag")], "t" * 50, "user", "input")
    assert seen.verdicts[0].spans == ((4, 30, "x"), (40, 45, "x"))
