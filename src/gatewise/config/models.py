"""The configuration schema: one YAML file, validated by these pydantic models.

Top-level sections are independent so that later features (tenants, limits,
guardrails, prompts, routing) each add one section without touching the others.
Every model forbids unknown keys, so a typo is an error rather than a silently
ignored setting. Models are frozen: a loaded ``Config`` never changes; a reload
builds a new one.
"""

from __future__ import annotations

from collections.abc import Sequence
from fnmatch import fnmatchcase
from typing import Annotated, Literal

from pydantic import (
    AfterValidator,
    Field,
    model_validator,
)

from gatewise.config.admin import AdminConfig
from gatewise.config.alerts import WebhookList
from gatewise.config.auth import AuthConfig
from gatewise.config.base import Name, Strict
from gatewise.config.cache import CacheConfig, check_cache
from gatewise.config.guardrails import GuardrailsConfig
from gatewise.config.limits import BudgetConfig, LimitConfig, StateConfig
from gatewise.config.observability import ObservabilityConfig
from gatewise.config.pricing import PriceConfig
from gatewise.config.prompts import PromptsConfig
from gatewise.config.providers import ProviderConfig
from gatewise.config.reload import ReloadConfig
from gatewise.config.routing import ModelRoutingConfig, Region, RoutingConfig
from gatewise.config.semantic_cache import SemanticCacheConfig
from gatewise.config.store_url import DEFAULT_URL, check_store_url


class ServerConfig(Strict):
    host: str = "127.0.0.1"
    port: int = Field(8080, ge=0, le=65535)
    workers: int = Field(1, ge=1, le=64, description="Worker processes sharing the port.")
    max_request_body_bytes: int = Field(
        16 * 1024 * 1024, ge=1024, description="Larger request bodies are refused with 413."
    )
    max_header_bytes: int = Field(
        65536,
        ge=1024,
        description=(
            "The request line and headers together; a larger head is refused with 431 "
            "(before the rest of it is read) and the connection closed."
        ),
    )
    max_headers: int = Field(
        100, ge=8, description="More request headers than this are refused with 431."
    )
    log_level: Literal["debug", "info", "warning", "error"] = "info"
    access_log: bool = Field(
        False, description="Log one line per request, admin API included (costs CPU)."
    )
    reload: ReloadConfig = ReloadConfig()
    drain_timeout_s: float = Field(
        30, gt=0, le=3600, description="SIGTERM: how long requests in flight may still finish."
    )


class DeploymentConfig(Strict):
    """Where a public model is actually served."""

    provider: Name
    model: str = Field(
        min_length=1,
        description="The upstream model name (for Azure: the deployment name).",
    )
    price: PriceConfig | None = Field(
        None,
        description="What this deployment costs; default: the built-in catalog's price for model.",
    )
    name: Name | None = Field(
        None,
        description=(
            "How headers, logs and the admin API name it; default provider/model (#2, #3 ... "
            "for repeats)."
        ),
    )
    weight: int = Field(1, ge=0, le=1_000_000, description="Share of calls under `weighted`.")
    tags: list[Name] = Field(default_factory=list, description="For the `tags` strategy.")
    region: Region | None = Field(None, description="Where it serves (data residency).")
    timeout: float | None = Field(
        None, gt=0, description="Seconds an attempt may take up to the reply or stream opening."
    )


class ModelConfig(Strict):
    """A public model name clients use, served by one or more deployments."""

    name: Name
    deployments: list[DeploymentConfig] = Field(min_length=1)
    routing: ModelRoutingConfig = ModelRoutingConfig()
    owned_by: str = "gatewise"
    description: str | None = None
    approval: Literal["none", "required"] = Field(
        "none",
        description=(
            "required: an app may call this model only once an admin of its tenant approved "
            "its subscription request (POST /admin/v1/subscriptions)."
        ),
    )


class StoreConfig(Strict):
    """The records database: identities, the audit trail, usage, stored responses."""

    url: Annotated[str, AfterValidator(check_store_url)] = Field(
        DEFAULT_URL,
        description=(
            "sqlite+aiosqlite:///path.db (a relative path starts at this file's folder) or "
            "postgresql+asyncpg://user:${env:DB_PASSWORD}@host:5432/db. A password must be a "
            "${env:X} / ${file:Y} reference (or the whole URL one)."
        ),
    )
    usage_records: bool = Field(
        True,
        description=(
            "Write one usage row per model call (tokens, cost, caller), in batches in the "
            "background; the admin API and `gatewise usage` report from them."
        ),
    )
    usage_spool: str | None = Field(
        None,
        min_length=1,
        description=(
            "Folder of the usage records' local write-ahead spool: records reach it within "
            "50 ms, so a killed worker loses at most that much; the next start replays the "
            "rest. A relative path starts at this file's folder. Default: a folder in the "
            "system's temporary directory named after the store URL; `off`: no spool (a "
            "killed worker loses up to a second of records)."
        ),
    )


class Config(Strict):
    """The whole gateway configuration."""

    version: Literal[1] = 1
    server: ServerConfig = ServerConfig()
    providers: dict[Name, ProviderConfig] = Field(default_factory=dict)
    models: list[ModelConfig] = Field(default_factory=list)
    store: StoreConfig = StoreConfig()
    auth: AuthConfig = AuthConfig()
    admin: AdminConfig = AdminConfig()
    state: StateConfig = StateConfig()
    limits: list[LimitConfig] = Field(default_factory=list)
    budgets: list[BudgetConfig] = Field(default_factory=list)
    webhooks: WebhookList = Field(default_factory=list)
    guardrails: GuardrailsConfig = GuardrailsConfig()
    routing: RoutingConfig = RoutingConfig()
    observability: ObservabilityConfig = ObservabilityConfig()
    cache: CacheConfig = CacheConfig()
    semantic_cache: SemanticCacheConfig = SemanticCacheConfig()
    prompts: PromptsConfig = PromptsConfig()

    @model_validator(mode="after")
    def _cross_references(self) -> Config:
        hooks = {hook.name for hook in self.webhooks}
        alerts = self.guardrails.alerts
        if alerts is not None and alerts.webhook not in hooks:
            known = ", ".join(sorted(hooks)) or "none"
            raise ValueError(
                f"guardrails.alerts.webhook: unknown webhook {alerts.webhook!r} "
                f"(configured: {known})"
            )
        budget_names: set[str] = set()
        for index, budget in enumerate(self.budgets):
            if budget.name in budget_names:
                raise ValueError(f"budgets[{index}].name: duplicate budget name {budget.name!r}")
            budget_names.add(budget.name)
            if budget.webhook is not None and budget.webhook not in hooks:
                known = ", ".join(sorted(hooks)) or "none"
                raise ValueError(
                    f"budgets[{index}].webhook: unknown webhook {budget.webhook!r} "
                    f"(configured: {known})"
                )
        limit_names: set[str] = set()
        for index, limit in enumerate(self.limits):
            name = limit.name or f"{limit.per}-{index}"  # the default, as the planner names it
            if name in limit_names:
                # Two limits of one name would share their counters (one model's calls
                # spending another's limit).
                raise ValueError(f"limits[{index}].name: duplicate limit name {name!r}")
            limit_names.add(name)
        names = [model.name for model in self.models]
        sections: tuple[tuple[str, Sequence[LimitConfig | BudgetConfig]], ...] = (
            ("limits", self.limits),
            ("budgets", self.budgets),
        )
        for section, rules in sections:
            for index, rule in enumerate(rules):
                for m_index, pattern in enumerate(rule.models or ()):
                    if not any(name == pattern or fnmatchcase(name, pattern) for name in names):
                        known = ", ".join(names) or "none"
                        raise ValueError(
                            f"{section}[{index}].models[{m_index}]: {pattern!r} matches no "
                            f"configured model (configured: {known})"
                        )
        seen: set[str] = set()
        for index, model in enumerate(self.models):
            if model.name in seen:
                raise ValueError(f"models[{index}].name: duplicate model name {model.name!r}")
            seen.add(model.name)
            for d_index, deployment in enumerate(model.deployments):
                if deployment.provider not in self.providers:
                    known = ", ".join(sorted(self.providers)) or "none"
                    raise ValueError(
                        f"models[{index}].deployments[{d_index}].provider: unknown provider "
                        f"{deployment.provider!r} (configured: {known})"
                    )
        _check_routing(self.models)
        check_cache(self.cache, self.state.redis_url, names)
        for c_index, checked in enumerate(self.routing.health_checks.models):
            if checked not in seen:
                raise ValueError(
                    f"routing.health_checks.models[{c_index}]: unknown model {checked!r}"
                )
        return self


def _check_routing(models: Sequence[ModelConfig]) -> None:
    """Fallbacks name configured models, deployment names are unique, and a model held
    to regions has a deployment in one of them."""
    names = {model.name for model in models}
    deployment_names: set[str] = set()
    for index, model in enumerate(models):
        routing = model.routing
        lists = (
            ("fallbacks", routing.fallbacks),
            ("context_window_fallbacks", routing.context_window_fallbacks),
            ("content_policy_fallbacks", routing.content_policy_fallbacks),
        )
        for field_name, fallbacks in lists:
            for f_index, fallback in enumerate(fallbacks):
                where = f"models[{index}].routing.{field_name}[{f_index}]"
                if fallback == model.name:
                    raise ValueError(f"{where}: a model cannot fall back to itself")
                if fallback not in names:
                    known = ", ".join(sorted(names))
                    raise ValueError(f"{where}: unknown model {fallback!r} (configured: {known})")
        for d_index, deployment in enumerate(model.deployments):
            if deployment.name is None:
                continue
            if deployment.name in deployment_names:
                raise ValueError(
                    f"models[{index}].deployments[{d_index}].name: duplicate deployment name "
                    f"{deployment.name!r}"
                )
            deployment_names.add(deployment.name)
        if routing.strategy == "weighted" and not any(d.weight for d in model.deployments):
            raise ValueError(f"models[{index}].deployments: weighted routing needs a weight > 0")
        if routing.regions is not None:
            allowed = set(routing.regions)
            if not any(d.region in allowed for d in model.deployments):
                raise ValueError(
                    f"models[{index}].routing.regions: no deployment of {model.name!r} is in "
                    f"{', '.join(sorted(allowed))}"
                )
