"""Provider ``openai-compatible``: any OpenAI-shaped server (vLLM, Ollama, Mistral, Groq ...).

The key is optional (local servers often need none), and base64 embeddings are
produced by the gateway unless the server is known to support them.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from gatewise.config.providers import OpenAICompatibleProviderConfig
from gatewise.config.secrets import resolve
from gatewise.providers.openai import OpenAIProvider, build_transport


class OpenAICompatibleProvider(OpenAIProvider):
    kind = "openai-compatible"
    modern_max_tokens = False

    @classmethod
    def from_config(cls, name: str, config: Any, base_dir: Path | None) -> OpenAICompatibleProvider:
        assert isinstance(config, OpenAICompatibleProviderConfig)
        auth: dict[str, str] = {}
        if config.api_key:
            auth["authorization"] = f"Bearer {resolve(config.api_key, base_dir).reveal()}"
        provider = cls(name, config.base_url, build_transport(name, config, base_dir, auth))
        provider.embeddings_base64 = config.embeddings_base64
        return provider
