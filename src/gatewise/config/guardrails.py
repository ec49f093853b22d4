"""The ``guardrails`` section: named profiles of rules, and who gets which profile.

A *profile* is a list of *rules*. A rule names a guardrail (a built-in one:
``prompt_injection``, ``pii``, ``secrets``, ``moderation``,
``system_prompt_leak``; or one declared under ``custom``: a ``webhook`` or a
plug-in from the ``gatewise.guardrails`` entry point group), where it runs
(``input``, ``output`` or ``both``), what it does with a finding at or over its
``threshold`` (``block``, ``mask``, ``flag``) and, on streams, how output is
held back while it is checked (``window``, ``hold``, ``buffer``).

``assign`` attaches profiles to tenants, teams, apps, keys and models; the most
specific wins (key, app, team, tenant, model, then ``default``). The profiles
``standard`` and ``strict`` exist unless the config defines its own of those
names; ``off`` is the empty profile.
"""

from __future__ import annotations

import re
from typing import Annotated, Literal

from pydantic import AfterValidator, Field, model_validator

from gatewise.config.base import Name, Strict
from gatewise.config.secrets import REFERENCE

BUILT_IN = ("prompt_injection", "pii", "secrets", "moderation", "system_prompt_leak")
#: Guardrails whose findings are pieces of text (they may ``mask``).
MASKABLE = ("pii", "secrets", "moderation")
#: Guardrails that only make sense on one side.
OUTPUT_ONLY = ("system_prompt_leak",)


def _check_regex(value: str) -> str:
    try:
        re.compile(value)
    except re.error as error:
        raise ValueError(f"not a valid regular expression: {error}") from None
    return value


Regex = Annotated[str, AfterValidator(_check_regex)]


def _secret_reference(value: str) -> str:
    if not REFERENCE.fullmatch(value):
        raise ValueError(
            "must be a reference such as ${env:GATEWISE_HASH_KEY}, never a literal key"
        )
    return value


class RuleConfig(Strict):
    """One guardrail applied one way."""

    guardrail: Name = Field(description="A built-in guardrail or a name under `custom`.")
    on: Literal["input", "output", "both"] = Field(
        "input", description="What it reads: the request, the reply, or both."
    )
    action: Literal["block", "mask", "flag"] = Field(
        "block",
        description=(
            "block: refuse (400 guardrail_violation; a stream ends with an error event); "
            "mask: replace the found text (pii, secrets, moderation); flag: record and pass."
        ),
    )
    threshold: float = Field(0.5, ge=0.0, le=1.0, description="Findings scoring less pass.")
    categories: list[str] | None = Field(
        None,
        description=(
            "Only these families or entity types (e.g. [EMAIL, CREDIT_CARD] for pii, "
            "[instruction_override] for prompt_injection); all when left out."
        ),
    )
    mask: Literal["placeholder", "redact", "hash"] = Field(
        "placeholder",
        description=(
            "How `mask` replaces a value: placeholder (<EMAIL_1>; the caller gets the real "
            "value back in the reply, streams and tool calls included), redact ([EMAIL]) "
            "or hash ([EMAIL:3f9a0c…], the same value always gives the same hash)."
        ),
    )
    stream: Literal["window", "hold", "buffer"] = Field(
        "hold",
        description=(
            "On streamed output: window checks text as it passes (lowest latency; text before "
            "a match is already out), hold holds back just enough text for a match or a "
            "placeholder to complete, buffer releases nothing until the whole reply passed."
        ),
    )
    roles: list[Literal["system", "developer", "user", "assistant", "tool"]] | None = Field(
        None,
        description=(
            "On input, the messages it reads by author; all when left out (tool results and "
            "documents included: that is where indirect injection arrives)."
        ),
    )


class ModerationConfig(Strict):
    """What the ``moderation`` guardrail looks for (a rule's ``categories`` pick topics)."""

    topics: dict[Name, list[str]] = Field(
        default_factory=dict,
        description="Banned topics: a name and the words or phrases that mark it.",
    )
    keywords: list[str] = Field(default_factory=list, description="Banned words or phrases.")
    patterns: list[Regex] = Field(default_factory=list, description="Banned regular expressions.")
    classifier: bool = Field(
        False,
        description=(
            "Also judge topics by meaning: a text whose sentence embedding is close to one of a "
            "topic's phrases is that topic, whatever its words (needs the guardrails-model extra "
            "and a trained model folder: `gatewise guardrails train`)."
        ),
    )
    similarity: float = Field(
        0.6, ge=0.0, le=1.0, description="The classifier's cosine similarity that marks a topic."
    )


class CustomGuardrailConfig(Strict):
    """A guardrail of your own: a webhook, or a plug-in installed as a Python package."""

    type: Literal["webhook", "plugin"]
    url: str | None = Field(
        None, description="webhook: where to POST {text, role, direction}; answers findings."
    )
    headers: dict[str, str] = Field(
        default_factory=dict,
        description="webhook: header values; secrets as ${env:...} or ${file:...} references "
        "(also inside a value: 'Bearer ${env:DLP_TOKEN}').",
    )
    timeout_ms: int = Field(1000, ge=10, le=60_000)
    on_error: Literal["open", "closed"] = Field(
        "closed",
        description="When it cannot be reached or answers badly: closed blocks, open passes.",
    )
    plugin: str | None = Field(
        None, description="plugin: the entry point's name in the gatewise.guardrails group."
    )
    options: dict[str, object] = Field(
        default_factory=dict, description="plugin: passed to the plug-in's factory."
    )

    @model_validator(mode="after")
    def _complete(self) -> CustomGuardrailConfig:
        if self.type == "webhook" and not self.url:
            raise ValueError("url: required for a webhook guardrail")
        if self.type == "webhook" and self.url and not self.url.startswith(("http://", "https://")):
            raise ValueError("url: must start with http:// or https://")
        if self.type == "plugin" and not self.plugin:
            raise ValueError("plugin: required for a plugin guardrail")
        return self


class ProfileConfig(Strict):
    rules: list[RuleConfig] = Field(default_factory=list)
    canary: bool = Field(
        False,
        description=(
            "Add a random canary token to the system prompt; a system_prompt_leak rule stops "
            "any reply that reveals it."
        ),
    )


#: The profiles every config has unless it defines its own of the same name.
DEFAULT_PROFILES: dict[str, ProfileConfig] = {
    # What reaches the model is checked; replies are read only to give masked values back
    # (a model cannot leak a secret it never saw: strict reads every reply as well).
    "standard": ProfileConfig(
        rules=[
            RuleConfig(guardrail="prompt_injection", on="input", action="block"),
            RuleConfig(guardrail="secrets", on="input", action="mask", mask="redact"),
            RuleConfig(guardrail="pii", on="input", action="mask", mask="placeholder"),
        ]
    ),
    "strict": ProfileConfig(
        canary=True,
        rules=[
            RuleConfig(guardrail="prompt_injection", on="input", action="block", threshold=0.35),
            RuleConfig(guardrail="secrets", on="both", action="block"),
            RuleConfig(guardrail="pii", on="input", action="mask", mask="placeholder"),
            RuleConfig(guardrail="pii", on="output", action="mask", mask="redact"),
            RuleConfig(guardrail="moderation", on="both", action="block"),
            RuleConfig(guardrail="system_prompt_leak", on="output", action="block"),
        ],
    ),
    "off": ProfileConfig(),
}


class AssignConfig(Strict):
    """Who gets which profile; names of tenants, ``tenant/team``, ``tenant/app``, key ids
    and model names."""

    tenants: dict[Name, Name] = Field(default_factory=dict)
    teams: dict[Name, Name] = Field(default_factory=dict, description="'tenant/team': profile")
    apps: dict[Name, Name] = Field(default_factory=dict, description="'tenant/app': profile")
    keys: dict[Name, Name] = Field(default_factory=dict, description="key id: profile")
    models: dict[Name, Name] = Field(default_factory=dict)


class GuardrailAlertsConfig(Strict):
    """A security alert: blocked requests reaching ``threshold`` within a window."""

    webhook: Name = Field(
        description="The `webhooks` entry told (a signed webhook, or a `gitlab_issue` target)."
    )
    threshold: int = Field(10, ge=1, description="Blocked requests per window that alert.")
    window_seconds: int = Field(3600, ge=60, le=86_400, description="The counting window.")


class GuardrailsConfig(Strict):
    default: Name | None = Field(
        None, description="The profile of calls no assignment names (none: no guardrails)."
    )
    check_profile: Name = Field(
        "standard", description="The profile POST /v1/guardrails/check uses when none is named."
    )
    profiles: dict[Name, ProfileConfig] = Field(default_factory=dict)
    assign: AssignConfig = AssignConfig()
    alerts: GuardrailAlertsConfig | None = Field(
        None,
        description="Alert a webhook when guardrails block this many requests in a window "
        "(each worker counts its own blocks; one alert per window).",
    )
    moderation: ModerationConfig = ModerationConfig()
    custom: dict[Name, CustomGuardrailConfig] = Field(default_factory=dict)
    hash_key: Annotated[str, AfterValidator(_secret_reference)] | None = Field(
        None,
        description=(
            "The key of `mask: hash` tags, a ${env:...} or ${file:...} reference: the same value "
            "hashes the same on every replica and after restarts (default: a random key per "
            "process). Without a key a tag cannot be checked against guessed values."
        ),
    )
    memory: int = Field(
        4096,
        ge=0,
        le=1_000_000,
        description=(
            "Findings each built-in guardrail remembers for texts it read recently (system "
            "prompts and conversation histories come back on every call); 0: none."
        ),
    )
    model_tier: bool = Field(
        False,
        description=(
            "Add the embedding classifier to prompt_injection (needs the guardrails-model "
            "extra and a trained model: `gatewise guardrails train`)."
        ),
    )
    model_threshold: float | None = Field(
        None,
        ge=0.0,
        le=1.0,
        description=(
            "The model tier's findings below this probability are dropped. Unset: the "
            "threshold the classifier was trained with (classifier.json), chosen on its "
            "validation split and on the sample's dev templates read behind the fast "
            "tier: the lowest with at most 1.5 % false positives on the one and 3 % on "
            "the other."
        ),
    )

    @model_validator(mode="after")
    def _consistent(self) -> GuardrailsConfig:
        if "off" in self.profiles:
            raise ValueError("profiles.off: the name 'off' is reserved for no guardrails")
        known = {*self.profiles, *DEFAULT_PROFILES}
        for name, profile in self.profiles.items():
            for index, rule in enumerate(profile.rules):
                where = f"profiles.{name}.rules[{index}]"
                if rule.guardrail not in BUILT_IN and rule.guardrail not in self.custom:
                    raise ValueError(
                        f"{where}.guardrail: unknown guardrail {rule.guardrail!r} (built in: "
                        f"{', '.join(BUILT_IN)}; or declare it under guardrails.custom)"
                    )
                if rule.action == "mask" and rule.guardrail not in MASKABLE:
                    raise ValueError(
                        f"{where}.action: {rule.guardrail} finds no piece of text to mask; "
                        "use block or flag"
                    )
                if rule.guardrail in OUTPUT_ONLY and rule.on != "output":
                    raise ValueError(f"{where}.on: {rule.guardrail} reads output only")
        if self.default is not None and self.default not in known:
            raise ValueError(f"default: unknown profile {self.default!r}")
        if self.check_profile not in known:
            raise ValueError(f"check_profile: unknown profile {self.check_profile!r}")
        for scope, table in self.assign:
            for who, profile in table.items():
                if profile not in known:
                    raise ValueError(f"assign.{scope}.{who}: unknown profile {profile!r}")
        return self

    def all_profiles(self) -> dict[str, ProfileConfig]:
        """Every profile by name: the built-in ones, overridden by the config's own."""
        return {**DEFAULT_PROFILES, **self.profiles}
