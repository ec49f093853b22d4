"""A config's providers and model catalog, secrets resolved: the first, light step at start.

Secrets are resolved here, when the gateway starts, not when the config is
validated: CI can validate a config without production secrets. A provider
marked ``optional`` whose secret is missing is left out (with the models only
it serves) instead of stopping the gateway.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from gatewise.config.models import Config
from gatewise.config.secrets import SecretResolutionError, interpolate, resolve_reference
from gatewise.core.types import ModelCard
from gatewise.guardrails.setup import Guardrails, UnknownGuardrailPlugin, build_guardrails
from gatewise.providers.base import Provider
from gatewise.providers.registry import UnknownProviderType, provider_type
from gatewise.routing.catalog import ModelCatalog, Route, Target
from gatewise.routing.setup import deployment_infos, route_policy
from gatewise.store.urls import resolve_store_url

# `created` of every model card: the gateway's models have no real creation date.
MODEL_CREATED = 1_700_000_000


class StartupError(Exception):
    """The configuration is valid but cannot be brought to life (e.g. a secret is missing)."""


@dataclass
class Prepared:
    """What a config turns into before anything heavy is imported: providers with their
    secrets resolved, the catalog, the store URL. ``gatewise serve`` prepares once in the
    supervising process to fail early on a missing secret; each worker builds its own."""

    providers: dict[str, Provider]
    catalog: ModelCatalog
    store_url: str
    skipped: list[str]
    guardrails: Guardrails


def prepare(config: Config, config_dir: Path | None = None) -> Prepared:
    providers: dict[str, Provider] = {}
    skipped: list[str] = []
    for name, section in config.providers.items():
        try:
            providers[name] = provider_type(section.type).create(name, section, config_dir)
        except SecretResolutionError as exc:
            if section.optional:
                skipped.append(f"provider {name!r} left out: {exc}")
                continue
            raise StartupError(f"providers.{name}: {exc}") from None
        except UnknownProviderType:
            raise StartupError(
                f"providers.{name}.type: unknown provider type {section.type!r}"
            ) from None

    routes: list[Route] = []
    infos = deployment_infos(config)
    for m_index, model in enumerate(config.models):
        targets = tuple(
            Target(providers[d.provider], d.model, infos[m_index][d_index])
            for d_index, d in enumerate(model.deployments)
            if d.provider in providers
        )
        if not targets:
            skipped.append(f"model {model.name!r} left out: none of its providers is available")
            continue
        card = ModelCard(id=model.name, created=MODEL_CREATED, owned_by=model.owned_by)
        routes.append(Route(model.name, targets, card, route_policy(model.routing)))
    try:
        store_url = resolve_store_url(config.store.url, config_dir)
    except SecretResolutionError as exc:
        raise StartupError(f"store.url: {exc}") from None
    for where, reference in observability_references(config):
        try:  # fail early, in the master, not in each worker
            resolve_reference(reference, config_dir)
        except SecretResolutionError as exc:
            raise StartupError(f"{where}: {exc}") from None
    return Prepared(
        providers, ModelCatalog(routes), store_url, skipped, prepare_guardrails(config, config_dir)
    )


def prepare_guardrails(config: Config, config_dir: Path | None) -> Guardrails:
    """The guardrails, their secrets resolved and plug-ins and models loaded; what cannot
    be is a one-line error naming the setting."""
    section = config.guardrails
    try:
        return build_guardrails(section, lambda text: interpolate(text, config_dir))
    except SecretResolutionError as exc:
        raise StartupError(f"guardrails.{exc}") from None
    except UnknownGuardrailPlugin as exc:
        raise StartupError(str(exc)) from None
    except (ImportError, FileNotFoundError) as exc:  # the model tier's extra or model
        setting = "moderation.classifier" if section.moderation.classifier else "model_tier"
        raise StartupError(f"guardrails.{setting}: {exc}") from None


def observability_references(config: Config) -> list[tuple[str, str]]:
    """The secret references observability reads at start-up, each with where it sits:
    the scrape token, the OTLP exporter's headers and the audit sinks' headers."""
    section = config.observability
    found: list[tuple[str, str]] = []
    if section.metrics.enabled and section.metrics.token is not None:
        found.append(("observability.metrics.token", section.metrics.token))
    if section.tracing.enabled:
        for name, reference in section.tracing.headers.items():
            found.append((f"observability.tracing.headers.{name}", reference))
    for index, sink in enumerate(section.audit.sinks):
        for name, reference in getattr(sink, "headers", {}).items():
            found.append((f"observability.audit.sinks[{index}].headers.{name}", reference))
    return found
