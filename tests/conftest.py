"""Shared fixtures: fake upstreams and gateways on loopback, over real sockets."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import pytest

from gatewise.config import plugins
from gatewise.testing import FakeOpenAIUpstream, run_in_thread
from gatewise.testing.gateway import RunningGateway, run_gateway_in_thread

UPSTREAM_KEY = "sk-upstream-secret-0123456789abcdef"


@pytest.fixture(scope="session")
def fake_openai() -> Iterator[FakeOpenAIUpstream]:
    """One OpenAI-format fake for the session; tests reset its script and records."""
    with run_in_thread(FakeOpenAIUpstream(api_key=UPSTREAM_KEY)) as fake:
        yield fake


@pytest.fixture
def upstream(fake_openai: FakeOpenAIUpstream) -> FakeOpenAIUpstream:
    fake_openai.reset()
    return fake_openai


@pytest.fixture
def upstream_key_env(monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("GW_TEST_UPSTREAM_KEY", UPSTREAM_KEY)
    return "${env:GW_TEST_UPSTREAM_KEY}"


def openai_provider(url: str, **extra: Any) -> dict[str, Any]:
    return {
        "type": "openai",
        "base_url": url + "/v1",
        "api_key": "${env:GW_TEST_UPSTREAM_KEY}",
        **extra,
    }


def one_model_config(
    provider: dict[str, Any], model: str = "gpt-4o-mini", **server: Any
) -> dict[str, Any]:
    return {
        "server": server,
        "auth": {"mode": "open"},
        "providers": {"up": provider},
        "models": [
            {"name": model, "deployments": [{"provider": "up", "model": model}]},
            {
                "name": "text-embedding-3-small",
                "deployments": [{"provider": "up", "model": "text-embedding-3-small"}],
            },
        ],
    }


@pytest.fixture(scope="session")
def _session_gateway(fake_openai: FakeOpenAIUpstream) -> Iterator[RunningGateway]:
    mp = pytest.MonkeyPatch()
    mp.setenv("GW_TEST_UPSTREAM_KEY", UPSTREAM_KEY)
    config = one_model_config(
        openai_provider(fake_openai.url, timeouts={"first_byte": 1.0, "idle": 1.0, "total": 5}),
        max_request_body_bytes=64 * 1024,
    )
    config["providers"]["mock"] = {"type": "mock"}
    config["models"].append(
        {"name": "mock-gpt", "deployments": [{"provider": "mock", "model": "mock-gpt"}]}
    )
    with run_gateway_in_thread(config) as gateway:
        yield gateway
    mp.undo()


@pytest.fixture
def gateway(_session_gateway: RunningGateway, upstream: FakeOpenAIUpstream) -> RunningGateway:
    """A gateway in front of the session's OpenAI fake (1 s first-byte/idle timeouts, 64 KiB body limit)."""
    return _session_gateway


@pytest.fixture
def start_gateway(upstream_key_env: str) -> Iterator[Callable[[dict[str, Any]], RunningGateway]]:
    """Start extra gateways with their own config (stopped after the test)."""
    with ExitStack() as stack:
        yield lambda config: stack.enter_context(run_gateway_in_thread(config))


@pytest.fixture
def install_plugins(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Callable[[dict[str, str]], None]]:
    """Install ``gatewise.providers`` entry points ({name: "module:attribute"}) for one test.

    Writes a ``*.dist-info`` folder (METADATA, entry_points.txt) into a tmp folder put on
    ``sys.path``, which is all ``importlib.metadata`` looks at; no package is installed.
    """
    site = tmp_path / "site-packages"

    def install(entries: dict[str, str]) -> None:
        dist_info = site / "gatewise_test_plugin-1.0.dist-info"
        dist_info.mkdir(parents=True)
        metadata = "Metadata-Version: 2.1\nName: gatewise-test-plugin\nVersion: 1.0\n"
        (dist_info / "METADATA").write_text(metadata, encoding="utf-8")
        lines = ["[gatewise.providers]", *(f"{name} = {ref}" for name, ref in entries.items())]
        (dist_info / "entry_points.txt").write_text("\n".join(lines) + "\n", encoding="utf-8")
        monkeypatch.syspath_prepend(str(site))
        plugins.clear_cache()

    plugins.clear_cache()
    yield install
    plugins.clear_cache()
