"""Provider ``azure``: Azure OpenAI.

Two URL styles: the classic ``/openai/deployments/{deployment}/...?api-version=``
(the model is chosen by the deployment in the path) and the newer ``/openai/v1/...``
(plain OpenAI paths, the deployment name goes in ``model``). Both use the
``api-key`` header.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import quote

from gatewise.config.providers import AzureProviderConfig
from gatewise.config.secrets import resolve
from gatewise.providers.openai import OpenAIProvider, build_transport


class AzureProvider(OpenAIProvider):
    kind = "azure"
    modern_max_tokens = False
    skip_empty_chunks = True

    def __init__(self, *args: Any, api_style: str, api_version: str | None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.api_style = api_style
        self.api_version = api_version

    @classmethod
    def from_config(cls, name: str, config: Any, base_dir: Path | None) -> AzureProvider:
        assert isinstance(config, AzureProviderConfig)
        key = resolve(config.api_key, base_dir).reveal()
        endpoint = config.endpoint.rstrip("/")
        base = f"{endpoint}/openai/v1" if config.api_style == "v1" else f"{endpoint}/openai"
        return cls(
            name,
            base,
            build_transport(name, config, base_dir, {"api-key": key}),
            api_style=config.api_style,
            api_version=config.api_version,
        )

    def url(self, operation: str, model: str) -> str:
        if self.api_style == "v1":
            return f"{self.base_url}/{operation}"
        deployment = quote(model, safe="")
        return (
            f"{self.base_url}/deployments/{deployment}/{operation}?api-version={self.api_version}"
        )
