"""The provider types: each one's name, config model and factory, built in or plug-in.

A ``ProviderType`` says everything the gateway needs to know about a kind of
upstream: the ``type`` name a config's provider section uses, the pydantic model
that validates that section, and ``create(name, config, base_dir)``, which
builds the ``Provider`` (``config`` is the validated section, ``base_dir`` the
config file's folder for relative ``${file:...}`` secrets). The built-in types
are listed in ``BUILTIN_TYPES``; their modules are imported only when a
provider of that type is built.

Plug-ins
--------
Any installed distribution can add a type through the ``gatewise.providers``
entry-point group. The entry point's name is the type's name and it refers to a
``ProviderType``::

    # pyproject.toml of the plug-in
    [project.entry-points."gatewise.providers"]
    echo = "gatewise_echo:PROVIDER_TYPE"

    # gatewise_echo.py
    class EchoConfig(ProviderBase):            # from gatewise.config.models
        type: Literal["echo"]
        reply: str

    class EchoProvider: ...                   # __init__(self, name, config, base_dir)

    PROVIDER_TYPE = ProviderType("echo", EchoConfig, EchoProvider)

The contract:

- ``config_model`` subclasses ``gatewise.config.providers.ProviderBase`` (so a
  plug-in section has ``optional``, ``timeouts``, ``headers`` ... like any other)
  and declares ``type: Literal["<name>"]``; it keeps ``ProviderBase``'s model
  config: unknown keys are errors and the model is frozen. Secrets in it should
  be ``SecretRef`` fields, resolved in ``create`` (a missing secret raises
  ``SecretResolutionError``, which ``optional: true`` turns into a skipped provider).
- ``create`` returns an object implementing ``gatewise.providers.base.Provider``.
  It may run more than once per section (``gatewise serve`` builds providers once
  to check secrets, then again in each worker), so it should only read config and
  secrets; connections belong in the provider's ``start`` and ``close``.
- Built-in names win: an entry point named like a built-in type is ignored.

Entry points are read only when a config names a type that is not built in (the
config validation looks the plug-in up first, see
``gatewise.config.providers.ProviderSection``); lookups are cached for the process
(``gatewise.config.plugins.clear_cache`` forgets them).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Generic, TypeVar

from gatewise.config.plugins import PluginError, entry_point_names, load_entry_point
from gatewise.config.providers import (
    PROVIDER_PLUGINS,
    AnthropicProviderConfig,
    AzureProviderConfig,
    GeminiProviderConfig,
    MockProviderConfig,
    OpenAICompatibleProviderConfig,
    OpenAIProviderConfig,
    ProviderBase,
    check_provider_config_model,
)
from gatewise.providers.base import Provider

__all__ = [
    "BUILTIN_TYPES",
    "ProviderType",
    "UnknownProviderType",
    "known_types",
    "provider_type",
]

C = TypeVar("C", bound=ProviderBase)


@dataclass(frozen=True)
class ProviderType(Generic[C]):
    """One kind of provider: its ``type`` name, its config section's model, its factory."""

    name: str
    config_model: type[C]
    create: Callable[[str, C, Path | None], Provider]
    """Builds a provider from (its name, its validated config section, the config's folder)."""

    def __post_init__(self) -> None:
        try:
            check_provider_config_model(self.name, self.config_model)
        except TypeError as exc:
            raise TypeError(f"ProviderType {self.name!r}: {exc}") from None


class UnknownProviderType(KeyError):
    """No provider type of that name is built in or installed."""


def _openai(name: str, config: OpenAIProviderConfig, base_dir: Path | None) -> Provider:
    from gatewise.providers.openai import OpenAIProvider

    return OpenAIProvider.from_config(name, config, base_dir)


def _openai_compatible(
    name: str, config: OpenAICompatibleProviderConfig, base_dir: Path | None
) -> Provider:
    from gatewise.providers.openai_compatible import OpenAICompatibleProvider

    return OpenAICompatibleProvider.from_config(name, config, base_dir)


def _azure(name: str, config: AzureProviderConfig, base_dir: Path | None) -> Provider:
    from gatewise.providers.azure import AzureProvider

    return AzureProvider.from_config(name, config, base_dir)


def _anthropic(name: str, config: AnthropicProviderConfig, base_dir: Path | None) -> Provider:
    from gatewise.providers.anthropic import AnthropicProvider

    return AnthropicProvider.from_config(name, config, base_dir)


def _gemini(name: str, config: GeminiProviderConfig, base_dir: Path | None) -> Provider:
    from gatewise.providers.gemini import GeminiProvider

    return GeminiProvider.from_config(name, config, base_dir)


def _mock(name: str, config: MockProviderConfig, base_dir: Path | None) -> Provider:
    from gatewise.providers.mock import MockProvider

    return MockProvider(name, config)


BUILTIN_TYPES: Mapping[str, ProviderType[Any]] = {
    provider.name: provider
    for provider in (
        ProviderType("openai", OpenAIProviderConfig, _openai),
        ProviderType("openai-compatible", OpenAICompatibleProviderConfig, _openai_compatible),
        ProviderType("azure", AzureProviderConfig, _azure),
        ProviderType("anthropic", AnthropicProviderConfig, _anthropic),
        ProviderType("gemini", GeminiProviderConfig, _gemini),
        ProviderType("mock", MockProviderConfig, _mock),
    )
}


def provider_type(name: str) -> ProviderType[Any]:
    """The provider type called ``name``: a built-in one, else an installed plug-in.

    Raises ``UnknownProviderType`` (a ``KeyError``) naming the known types, and
    ``PluginError`` when the installed plug-in cannot be loaded or is no ``ProviderType``.
    """
    builtin = BUILTIN_TYPES.get(name)
    if builtin is not None:
        return builtin
    try:
        loaded = load_entry_point(PROVIDER_PLUGINS, name)
    except LookupError:
        known = ", ".join(repr(known) for known in known_types())
        raise UnknownProviderType(f"unknown provider type {name!r}; known: {known}") from None
    if not isinstance(loaded, ProviderType) or loaded.name != name:
        raise PluginError(
            f"the plug-in {name!r} must be a ProviderType named {name!r}, not {loaded!r}"
        )
    return loaded


def known_types() -> list[str]:
    """The built-in types, then the installed plug-ins' (names only; nothing is imported)."""
    plugins = entry_point_names(PROVIDER_PLUGINS)
    return [*BUILTIN_TYPES, *(name for name in plugins if name not in BUILTIN_TYPES)]
