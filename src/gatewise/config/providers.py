"""The ``providers`` section: one config model per provider type, built in or a plug-in's.

Each provider section is validated by the model its ``type`` names: a built-in
type's (OpenAI, OpenAI-compatible, Azure, Anthropic, Gemini, mock) or, for any other
type, the model of an installed plug-in (entry-point group ``gatewise.providers``;
the contract is in ``providers/registry.py``). Secrets are references only; a
proxy password too.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable
from typing import Annotated, Any, Literal, get_args, get_origin
from urllib.parse import urlsplit

from pydantic import (
    AfterValidator,
    Field,
    GetCoreSchemaHandler,
    TypeAdapter,
    ValidatorFunctionWrapHandler,
    model_validator,
)
from pydantic_core import PydanticKnownError, core_schema

from gatewise.config.base import Strict
from gatewise.config.plugins import PluginError, entry_point_names, load_entry_point
from gatewise.config.secrets import REFERENCE, WHOLE_REFERENCE, looks_like_literal_secret

_TYPE = "type"  # the field that names a provider section's type


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


class ProviderBase(Strict):
    """What every provider section has. A provider type's config model subclasses this
    with ``type: Literal["<type>"]`` and its own fields (plug-ins too)."""

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
    type: str = Field(
        description="The provider type, built in or a plug-in's; each type's model narrows "
        "this to Literal['<type>']."
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


BUILTIN_PROVIDER_CONFIGS: tuple[type[ProviderBase], ...] = (
    OpenAIProviderConfig,
    OpenAICompatibleProviderConfig,
    AzureProviderConfig,
    AnthropicProviderConfig,
    GeminiProviderConfig,
    MockProviderConfig,
)
"""The config models of the built-in provider types (``providers/registry.py`` builds them)."""

PROVIDER_PLUGINS = "gatewise.providers"
"""The entry-point group of plug-in provider types (the contract: ``providers/registry.py``)."""


def provider_type_name(model: type[ProviderBase]) -> str | None:
    """The provider type a config model is for: the one value of its ``type: Literal[...]``."""
    field = model.model_fields.get(_TYPE)
    if field is None or get_origin(field.annotation) is not Literal:
        return None
    values = get_args(field.annotation)
    return values[0] if len(values) == 1 and isinstance(values[0], str) else None


def check_provider_config_model(name: str, model: object) -> type[ProviderBase]:
    """``model`` if it can validate sections of provider type ``name``; else a ``TypeError``."""
    if not (isinstance(model, type) and issubclass(model, ProviderBase)):
        raise TypeError(
            f"the config model of provider type {name!r} must subclass "
            f"gatewise.config.providers.ProviderBase, not {model!r}"
        )
    if provider_type_name(model) != name:
        raise TypeError(f"{model.__qualname__}.type must be annotated Literal[{name!r}]")
    if model.model_config.get("extra") != "forbid" or not model.model_config.get("frozen"):
        raise TypeError(
            f"{model.__qualname__} must keep ProviderBase's model_config "
            "(unknown keys forbidden, frozen)"
        )
    return model


def plugin_provider_config(name: str) -> type[ProviderBase] | None:
    """The config model of the installed plug-in provider type ``name``; None if none is installed.

    The entry point's object is a ``gatewise.providers.registry.ProviderType``; only its
    ``config_model`` is read here, so validating a config never imports provider code
    beyond the plug-in's own module. Raises ``PluginError`` when the plug-in cannot be
    loaded or is not a provider type.
    """
    try:
        loaded = load_entry_point(PROVIDER_PLUGINS, name)
    except LookupError:
        return None
    model = getattr(loaded, "config_model", None)
    if model is None:
        raise PluginError(
            f"the plug-in {name!r} must be a gatewise.providers.registry.ProviderType, "
            f"not {type(loaded).__name__}"
        )
    try:
        return check_provider_config_model(name, model)
    except TypeError as exc:
        raise PluginError(f"the plug-in {name!r} is not a valid provider type: {exc}") from None


class ProviderSection:
    """Pydantic metadata for a provider section: validated by the config model its ``type`` names.

    A discriminated union is closed, and plug-in types are only known once installed, so
    provider sections are validated through this instead. Sections whose ``type`` is one
    of ``models`` (the built-in types) are validated as a tagged union on ``type``, exactly
    as ``Field(discriminator="type")`` would: errors are pydantic's own and their
    locations carry the type (``providers.p.openai.api_key``; the loader skips it).
    Any other type is looked up among installed plug-ins (only then are entry points
    read) and the plug-in's model validates the section the same way. An unknown type is
    pydantic's ``union_tag_invalid`` error, listing built-in and installed types.

    The JSON Schema describes ``models``; ``gatewise config schema`` adds installed plug-ins.
    """

    def __init__(self, models: Iterable[type[ProviderBase]]) -> None:
        self.models: dict[str, type[ProviderBase]] = {}
        for model in models:
            name = provider_type_name(model)
            if name is None:
                raise TypeError(f"{model.__qualname__}.type must be a single Literal value")
            self.models[name] = model

    def __get_pydantic_core_schema__(
        self, source: Any, handler: GetCoreSchemaHandler
    ) -> core_schema.CoreSchema:
        choices = {name: handler.generate_schema(model) for name, model in self.models.items()}
        union = core_schema.tagged_union_schema(choices, discriminator=_TYPE)
        return core_schema.no_info_wrap_validator_function(self._validate, union)

    def _validate(self, value: Any, handler: ValidatorFunctionWrapHandler) -> ProviderBase:
        if isinstance(value, dict):
            name = value.get(_TYPE)
        else:
            name = value.type if isinstance(value, ProviderBase) else None
        if not isinstance(name, str) or name in self.models:
            section: ProviderBase = handler(value)  # includes pydantic's errors for a bad type
            return section
        try:
            model = plugin_provider_config(name)
        except PluginError as exc:
            raise ValueError(f"{_TYPE}: {exc}") from None  # "type: " puts it on the field
        if model is None:
            raise PydanticKnownError(
                "union_tag_invalid",
                {
                    "discriminator": repr(_TYPE),
                    "tag": name,
                    "expected_tags": ", ".join(repr(known) for known in self.known_types()),
                },
            )
        # pydantic-core re-raises a ValidationError raised here as the same errors,
        # located below this section: providers.<name>.<type>.<field> as for built-ins.
        return _plugin_section(model).validate_python(value)

    def known_types(self) -> list[str]:
        """Built-in types first, then installed plug-ins (their names only; nothing is imported)."""
        plugins = entry_point_names(PROVIDER_PLUGINS)
        return [*self.models, *(name for name in plugins if name not in self.models)]

    def model_for(self, name: str) -> type[ProviderBase] | None:
        """The config model of a type, built in or installed; None if unknown or broken."""
        if name in self.models:
            return self.models[name]
        try:
            return plugin_provider_config(name)
        except PluginError:
            return None


@functools.cache
def _plugin_section(model: type[ProviderBase]) -> TypeAdapter[ProviderBase]:
    return TypeAdapter(Annotated[ProviderBase, ProviderSection([model])])


ProviderConfig = Annotated[ProviderBase, ProviderSection(BUILTIN_PROVIDER_CONFIGS)]
"""A provider section: a built-in type's config, or an installed plug-in's."""
