"""Building a config's guardrails: the guardrail objects, the profiles, who gets which.

Built-in guardrails are made once per generation and shared by every profile
that uses them; a ``custom`` guardrail is a webhook or a plug-in from the
``gatewise.guardrails`` entry point group (a factory called with the name and
the ``options`` mapping, returning a ``Guardrail``).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from importlib.metadata import entry_points
from typing import TYPE_CHECKING, Any

from gatewise.config.guardrails import CustomGuardrailConfig, GuardrailsConfig, RuleConfig
from gatewise.config.secrets import SecretResolutionError
from gatewise.guardrails.base import (
    Finding,
    Guardrail,
    RememberingGuardrail,
    SyncGuardrail,
    TextRole,
    read,
)
from gatewise.guardrails.masking import label_of
from gatewise.guardrails.moderation import ModerationDetector
from gatewise.guardrails.rules import Profile, Rule
from gatewise.guardrails.screen import SCREENED, Screening, shared_screen
from gatewise.guardrails.webhook import WebhookGuardrail

if TYPE_CHECKING:
    from gatewise.identity.directory import Directory
    from gatewise.identity.principal import Principal

ENTRY_POINT_GROUP = "gatewise.guardrails"


class UnknownGuardrailPlugin(LookupError):
    pass


class _Labelled:
    """A detector whose entity types are given the gateway's short labels (EMAIL, ...)."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.name = inner.name

    def detect(self, text: str, role: TextRole = "user") -> list[Finding]:
        out: list[Finding] = []
        found: list[Finding] = self.inner.detect(text, role)
        for finding in found:
            category = label_of(finding.category)
            spans = tuple(
                type(span)(span.start, span.end, label_of(span.type)) for span in finding.spans
            )
            out.append(Finding(finding.guardrail, category, finding.score, spans))
        return out


class _Layered(RememberingGuardrail):
    """The fast tier, then the model tier for what the fast tier did not settle.

    The model runs in a worker thread (ONNX Runtime releases the GIL): its ~15 ms per
    2 KB prompt must not stall the event loop's other requests. Its findings under
    ``floor`` are dropped: its probabilities are less sharp than the patterns' scores.
    """

    name = "prompt_injection"

    def __init__(self, fast: Any, model: Any, floor: float, memory: int) -> None:
        super().__init__(memory)
        self.fast = fast
        self.model = model
        self.floor = floor

    async def judge(self, text: str, role: TextRole) -> list[Finding]:
        found = await read(self.fast.detect, text, role)
        if any(finding.score >= 0.9 for finding in found):
            return found  # certain already: the model would add only latency
        judged: list[Finding] = await asyncio.to_thread(self.model.detect, text, role)
        return [*found, *(f for f in judged if f.score >= self.floor)]


def built_in(name: str, config: GuardrailsConfig) -> Guardrail:
    if name == "prompt_injection":
        from gatewise.guardrails.injection.detector import InjectionDetector

        fast = InjectionDetector()
        if not config.model_tier:
            return SyncGuardrail(fast, config.memory)
        from gatewise.guardrails.injection.model import InjectionModel

        model = InjectionModel.load_default()
        floor = config.model_threshold
        threshold = model.threshold if floor is None else floor
        return _Layered(fast, model, threshold, config.memory)
    if name == "pii":
        from gatewise.guardrails.pii import PiiDetector

        return SyncGuardrail(_Labelled(PiiDetector()), config.memory)
    if name == "secrets":
        from gatewise.guardrails.secrets import SecretsDetector

        return SyncGuardrail(SecretsDetector(), config.memory)
    if name == "moderation":
        words = SyncGuardrail(ModerationDetector(config.moderation), config.memory)
        if not config.moderation.classifier:
            return words
        from gatewise.guardrails.injection.model import Encoder, default_dir
        from gatewise.guardrails.topics import ModerationWithClassifier, TopicClassifier

        topics = TopicClassifier(
            Encoder(default_dir()), config.moderation.topics, config.moderation.similarity
        )
        return ModerationWithClassifier(words, topics, config.memory)
    raise KeyError(name)


def _resolved(resolve: Callable[[str], str], value: str, where: str) -> str:
    """``value`` with its secret reference resolved; a failure names the setting."""
    try:
        return resolve(value)
    except SecretResolutionError as exc:
        raise SecretResolutionError(f"{where}: {exc}") from None


def custom(name: str, config: CustomGuardrailConfig, resolve: Callable[[str], str]) -> Guardrail:
    if config.type == "webhook":
        assert config.url is not None
        return WebhookGuardrail(
            name,
            config.url,
            headers={
                k: _resolved(resolve, v, f"custom.{name}.headers.{k}")
                for k, v in config.headers.items()
            },
            timeout_ms=config.timeout_ms,
            fail_open=config.on_error == "open",
        )
    found = [ep for ep in entry_points(group=ENTRY_POINT_GROUP) if ep.name == config.plugin]
    if not found:
        raise UnknownGuardrailPlugin(
            f"guardrails.custom.{name}.plugin: no installed package provides the "
            f"{config.plugin!r} entry point in the {ENTRY_POINT_GROUP} group"
        )
    guardrail = found[0].load()(name, dict(config.options))
    if not isinstance(guardrail, Guardrail):
        raise UnknownGuardrailPlugin(
            f"guardrails.custom.{name}: the {config.plugin!r} plug-in made no Guardrail"
        )
    return guardrail


@dataclass
class Guardrails:
    """A generation's guardrails: the profiles by name and who gets which."""

    config: GuardrailsConfig
    profiles: dict[str, Profile]
    guardrails: dict[str, Guardrail] = field(default_factory=dict)
    directory: Callable[[], Directory] | None = None

    def profile(self, name: str) -> Profile:
        return self.profiles[name]

    def choose(self, principal: Principal | None, model: str) -> str | None:
        """The profile of calls of ``principal`` to ``model``: the most specific
        assignment wins (key, app, team, tenant, model), then the default."""
        assign = self.config.assign
        if principal is not None:
            if assign.keys and principal.key_id in assign.keys:
                return assign.keys[principal.key_id]
            directory = self.directory() if self.directory is not None else None
            if directory is not None and principal.tenant_id is not None:
                tenant, team, app = directory.config_names(
                    principal.tenant_id, principal.team_id, principal.app_id
                )
                if app is not None and app in assign.apps:
                    return assign.apps[app]
                if team is not None and team in assign.teams:
                    return assign.teams[team]
                if tenant in assign.tenants:
                    return assign.tenants[tenant]
        if model in assign.models:
            return assign.models[model]
        return self.config.default

    async def close(self) -> None:
        for guardrail in self.guardrails.values():
            close = getattr(guardrail, "close", None)
            if close is not None:
                await close()


def build_guardrails(
    config: GuardrailsConfig,
    resolve: Callable[[str], str],
    directory: Callable[[], Directory] | None = None,
) -> Guardrails:
    made: dict[str, Guardrail] = {}

    def guardrail(name: str) -> Guardrail:
        if name not in made:
            spec = config.custom.get(name)
            made[name] = custom(name, spec, resolve) if spec else built_in(name, config)
        return made[name]

    def rule(spec: RuleConfig) -> Rule:
        return Rule(
            guardrail(spec.guardrail),
            spec.action,
            spec.threshold,
            frozenset(label_of(c) for c in spec.categories) if spec.categories else None,
            spec.mask,
            spec.stream,
            frozenset(spec.roles) if spec.roles else None,
        )

    def screening(rules: tuple[Rule, ...]) -> Screening | None:
        """The screen for rules of built-in guardrails it speaks for, if any and if
        Hyperscan is installed (the model tier reads every text: not screened)."""
        screened = frozenset(
            r.name
            for r in rules
            if r.name in SCREENED
            and r.name not in config.custom
            and isinstance(r.guardrail, SyncGuardrail)
        )
        screen = shared_screen() if screened else None
        return Screening(screen, screened) if screen is not None else None

    hash_key = _resolved(resolve, config.hash_key, "hash_key").encode() if config.hash_key else None
    profiles: dict[str, Profile] = {}
    for name, spec in config.all_profiles().items():
        scanning = [r for r in spec.rules if r.guardrail != "system_prompt_leak"]
        leaks = [r for r in spec.rules if r.guardrail == "system_prompt_leak"]
        input_rules = tuple(rule(r) for r in scanning if r.on in ("input", "both"))
        output_rules = tuple(rule(r) for r in scanning if r.on in ("output", "both"))
        profiles[name] = Profile(
            name,
            input_rules=input_rules,
            output_rules=output_rules,
            canary=spec.canary,
            leak_action=leaks[0].action if leaks else "block",
            leak_stream=leaks[0].stream if leaks else "hold",
            hash_key=hash_key,
            input_screening=screening(input_rules),
            output_screening=screening(output_rules),
        )
    for name in config.custom:
        guardrail(name)  # unused ones too: a mistake in one shows when the gateway starts
    return Guardrails(config, profiles, made, directory)


def used_profiles(guardrails: Guardrails) -> Sequence[str]:
    """The profiles some call may run with (each gets a lane of the corridor)."""
    config = guardrails.config
    names = {config.default} if config.default else set()
    for table in (config.assign.tenants, config.assign.teams, config.assign.apps):
        names.update(table.values())
    names.update(config.assign.keys.values())
    names.update(config.assign.models.values())
    return sorted(name for name in names if name and name != "off")
