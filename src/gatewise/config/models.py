"""The configuration schema: one YAML file, validated by these pydantic models.

Top-level sections are independent so that later features (tenants, limits,
guardrails, prompts, routing) each add one section without touching the others.
Every model forbids unknown keys, so a typo is an error rather than a silently
ignored setting. Models are frozen: a loaded ``Config`` never changes; a reload
builds a new one.
"""

from __future__ import annotations

from typing import Annotated, Literal
from urllib.parse import urlsplit

from pydantic import AfterValidator, Field, model_validator

from gatewise.config.alerts import WebhookList
from gatewise.config.auth import AuthConfig
from gatewise.config.base import Name, Strict
from gatewise.config.limits import BudgetConfig, LimitConfig, StateConfig
from gatewise.config.pricing import PriceConfig
from gatewise.config.secrets import REFERENCE, WHOLE_REFERENCE, looks_like_literal_secret
from gatewise.config.store_url import DEFAULT_URL, check_store_url


def _check_secret_reference(value: str) -> str:
    if WHOLE_REFERENCE.match(value):
        return value
    kind = looks_like_literal_secret(value)
    what = f"looks like {kind}" if kind else "is a literal value"
    raise ValueError(
        f"this secret {what}; secrets must be references such as "
        "${env:OPENAI_API_KEY} or ${file:/run/secrets/openai}, never literal values"
    )


SecretRef = Annotated[
    str,
    AfterValidator(_check_secret_reference),
    Field(
        description=(
            "A reference to a secret: ${env:NAME} or ${file:PATH}. Literal values are rejected."
        ),
        json_schema_extra={"pattern": r"^\$\{(env|file):[^}]+\}$"},
    ),
]


def _check_proxy_url(value: str) -> str:
    parts = urlsplit(value if "://" in value else f"http://{value}")
    if parts.scheme != "http":
        raise ValueError("the proxy must be an http:// URL (TLS to the upstream runs inside it)")
    if not parts.hostname and "${" not in value:
        raise ValueError("the proxy URL has no host")
    password = parts.password
    if password and not REFERENCE.fullmatch(password):
        raise ValueError(
            "the proxy password must be a reference such as ${env:PROXY_PASSWORD}, "
            "never a literal value"
        )
    return value


class Timeouts(Strict):
    """Upstream timeouts in seconds."""

    connect: float = Field(5.0, gt=0, description="TCP (and TLS) connection set-up.")
    first_byte: float = Field(
        120.0, gt=0, description="From sending the request to the upstream's response headers."
    )
    idle: float = Field(
        60.0, gt=0, description="Longest silence between two reads of a response body or stream."
    )
    total: float = Field(600.0, gt=0, description="Whole upstream call, streams included.")


class ServerConfig(Strict):
    host: str = "127.0.0.1"
    port: int = Field(8080, ge=0, le=65535)
    workers: int = Field(1, ge=1, le=64, description="Worker processes sharing the port.")
    max_request_body_bytes: int = Field(
        16 * 1024 * 1024, ge=1024, description="Larger request bodies are refused with 413."
    )
    log_level: Literal["debug", "info", "warning", "error"] = "info"
    access_log: bool = Field(False, description="Log one line per request (costs CPU).")


class ProviderBase(Strict):
    optional: bool = Field(
        False,
        description=(
            "Leave this provider (and the deployments on it) out instead of failing "
            "when one of its secrets cannot be resolved, e.g. an unset API key variable."
        ),
    )
    timeouts: Timeouts = Timeouts()
    max_connections: int = Field(256, ge=1, description="Pooled keep-alive connections.")
    headers: dict[str, str] = Field(
        default_factory=dict,
        description="Extra headers sent upstream; values may contain ${env:X} references.",
    )
    proxy: Annotated[str, AfterValidator(_check_proxy_url)] | None = Field(
        None,
        description=(
            "An http:// proxy for this provider's connections (CONNECT tunnels), e.g. "
            "http://proxy:3128 or http://user:${env:PROXY_PASSWORD}@proxy:3128."
        ),
    )
    trust_env: bool = Field(
        False,
        description="Without `proxy`: take HTTPS_PROXY, HTTP_PROXY, NO_PROXY from the environment.",
    )


class OpenAIProviderConfig(ProviderBase):
    """api.openai.com (or anything speaking its API with Bearer auth)."""

    type: Literal["openai"]
    api_key: SecretRef
    base_url: str = "https://api.openai.com/v1"
    organization: str | None = None
    project: str | None = None


class OpenAICompatibleProviderConfig(ProviderBase):
    """Any OpenAI-compatible server: vLLM, Ollama, Mistral, Groq, LM Studio ..."""

    type: Literal["openai-compatible"]
    base_url: str = Field(description="The API root including /v1, e.g. http://localhost:8000/v1")
    api_key: SecretRef | None = None
    embeddings_base64: bool = Field(
        False,
        description=(
            "The server can answer embeddings as base64. When false the gateway asks for "
            "floats and encodes them itself when the client wants base64."
        ),
    )


class AzureProviderConfig(ProviderBase):
    """Azure OpenAI: classic deployment URLs with api-version, or the newer /openai/v1 API."""

    type: Literal["azure"]
    endpoint: str = Field(description="e.g. https://my-resource.openai.azure.com")
    api_key: SecretRef
    api_style: Literal["deployments", "v1"] = Field(
        "deployments",
        description=(
            "deployments: /openai/deployments/{deployment}/...?api-version=...; "
            "v1: /openai/v1/... with the deployment name as the model."
        ),
    )
    api_version: str | None = Field(
        None, description="Required for api_style deployments, e.g. 2024-10-21."
    )

    @model_validator(mode="after")
    def _api_version_for_deployments(self) -> AzureProviderConfig:
        if self.api_style == "deployments" and not self.api_version:
            raise ValueError("api_version is required when api_style is 'deployments'")
        return self


class AnthropicProviderConfig(ProviderBase):
    """api.anthropic.com: the Messages API with ``x-api-key`` auth."""

    type: Literal["anthropic"]
    api_key: SecretRef
    base_url: str = Field("https://api.anthropic.com", description="The API root, without /v1.")
    anthropic_version: str = Field("2023-06-01", description="The anthropic-version header.")
    default_max_tokens: int = Field(
        4096,
        ge=1,
        description=(
            "max_tokens sent upstream when a request sets neither max_tokens nor "
            "max_completion_tokens (Anthropic requires one)."
        ),
    )


class GeminiProviderConfig(ProviderBase):
    """Google's Gemini Developer API (generativelanguage.googleapis.com) with ``x-goog-api-key``."""

    type: Literal["gemini"]
    api_key: SecretRef
    base_url: str = Field(
        "https://generativelanguage.googleapis.com/v1beta",
        description="The API root including the version, e.g. .../v1beta.",
    )


class MockFailure(Strict):
    status: int = Field(503, ge=400, le=599)
    message: str = "Mock provider failure"
    every: int = Field(1, ge=1, description="Fail every N-th request (1: always).")


class MockProviderConfig(ProviderBase):
    """A built-in provider that answers without any network: demos and offline CI."""

    type: Literal["mock"]
    reply: str | None = Field(
        None, description="Fixed reply text; by default the mock echoes the last user message."
    )
    latency_ms: float = Field(0.0, ge=0, description="Delay before the reply (or first chunk).")
    stream_chunks: int = Field(8, ge=1, le=10_000, description="Content chunks per streamed reply.")
    chunk_delay_ms: float = Field(0.0, ge=0)
    embedding_dimensions: int = Field(16, ge=1, le=8192)
    fail: MockFailure | None = None


ProviderConfig = Annotated[
    OpenAIProviderConfig
    | OpenAICompatibleProviderConfig
    | AzureProviderConfig
    | AnthropicProviderConfig
    | GeminiProviderConfig
    | MockProviderConfig,
    Field(discriminator="type"),
]


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


class ModelConfig(Strict):
    """A public model name clients use, served by one or more deployments (tried in order)."""

    name: Name
    deployments: list[DeploymentConfig] = Field(min_length=1)
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


class Config(Strict):
    """The whole gateway configuration."""

    version: Literal[1] = 1
    server: ServerConfig = ServerConfig()
    providers: dict[Name, ProviderConfig] = Field(default_factory=dict)
    models: list[ModelConfig] = Field(default_factory=list)
    store: StoreConfig = StoreConfig()
    auth: AuthConfig = AuthConfig()
    state: StateConfig = StateConfig()
    limits: list[LimitConfig] = Field(default_factory=list)
    budgets: list[BudgetConfig] = Field(default_factory=list)
    webhooks: WebhookList = Field(default_factory=list)

    @model_validator(mode="after")
    def _cross_references(self) -> Config:
        hooks = {hook.name for hook in self.webhooks}
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
        return self
