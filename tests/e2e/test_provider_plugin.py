"""A plug-in provider type, installed as an entry point, configured in YAML, served to the openai SDK."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import openai

from gatewise.config.loader import load
from gatewise.testing.gateway import run_gateway_in_thread
from tests.echo_plugin import EchoConfig

CONFIG = """\
auth: {mode: open}
providers:
  canned:
    type: echo           # the plug-in's type, from its entry point
    reply: hello from a plug-in
    repeat: 2
models:
  - name: canned-model
    deployments: [{provider: canned, model: canned-upstream}]
"""


def test_a_plugin_provider_serves_chat_completions(
    install_plugins: Callable[[dict[str, str]], None], tmp_path: Path
) -> None:
    install_plugins({"echo": "tests.echo_plugin:PROVIDER_TYPE"})
    file = tmp_path / "gatewise.yaml"
    file.write_text(CONFIG, encoding="utf-8")
    loaded = load(file)
    assert isinstance(loaded.config.providers["canned"], EchoConfig)
    expected = "hello from a plug-in hello from a plug-in"

    with run_gateway_in_thread(loaded.config, loaded.base_dir) as gateway:
        client = openai.OpenAI(base_url=gateway.openai_base_url, api_key="k", max_retries=0)
        assert [m.id for m in client.models.list()] == ["canned-model"]
        hello = [{"role": "user", "content": "hi"}]
        completion = client.chat.completions.create(model="canned-model", messages=hello)  # type: ignore[arg-type]
        assert completion.choices[0].message.content == expected
        assert completion.choices[0].finish_reason == "stop"
        assert completion.model == "canned-upstream"  # the deployment's model reached the plug-in
        stream = client.chat.completions.create(model="canned-model", messages=hello, stream=True)  # type: ignore[arg-type]
        chunks = list(stream)
        assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == expected
        assert chunks[-1].choices[0].finish_reason == "stop"
        try:
            client.embeddings.create(model="canned-model", input="x")
        except openai.BadRequestError as exc:
            assert "the echo provider has no embeddings" in str(exc)
        else:
            raise AssertionError("the echo provider should refuse embeddings")
