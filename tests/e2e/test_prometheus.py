"""A real Prometheus scrapes a 2-worker gateway: its queries see every worker's counts.

``gatewise serve`` runs two workers on one port; the openai SDK sends chat calls (some
streamed) on fresh connections, so both workers serve them; Prometheus (Debian's
``prometheus``) scrapes ``/metrics`` with the scrape token every half second, and its
HTTP API's sums must equal what was sent: requests, tokens the SDK was told of, cost.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import json
import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import openai
import pytest

from tests.e2e.gateways import serve_gateways
from tests.e2e.test_cli import free_port, stop
from tests.identity_seed import one_key, with_store
from tests.rawhttp import request

DASHBOARD = Path(__file__).parents[2] / "deploy" / "grafana" / "gatewise-dashboard.json"
TOKEN_ENV = "GATEWISE_TEST_METRICS_TOKEN"
SCRAPE_TOKEN = "scrape-" + os.urandom(8).hex()
CALLS = 24  # chat calls (every third streamed)
MISSES = 6  # calls to a model the gateway does not serve
PRICE = {"input": 100, "output": 200}  # USD per million tokens


def require_prometheus() -> str:
    found = shutil.which("prometheus")
    if found is None:
        if os.environ.get("GATEWISE_REQUIRE_SERVICES"):
            pytest.fail("the prometheus binary is required (apt-get install -y prometheus)")
        pytest.skip("prometheus is not installed (apt-get install -y prometheus)")
    return found


@dataclass
class Stack:
    gateway: str
    prometheus: str
    key: str

    def query(self, promql: str) -> list[dict[str, Any]]:
        reply = request("GET", f"{self.prometheus}/api/v1/query?{urlencode({'query': promql})}")
        assert reply.status == 200, reply.body
        result: list[dict[str, Any]] = reply.json["data"]["result"]
        return result

    def value(self, promql: str) -> float | None:
        result = self.query(promql)
        return float(result[0]["value"][1]) if result else None

    def wait_for(self, promql: str, expected: float, timeout: float = 30) -> float | None:
        """The query's value once it equals ``expected`` (or the last one seen)."""
        deadline = time.monotonic() + timeout
        seen = self.value(promql)
        while seen != expected and time.monotonic() < deadline:
            time.sleep(0.25)
            seen = self.value(promql)
        return seen


def config_text(store_url: str) -> str:
    price = f"{{input_per_million: '{PRICE['input']}', output_per_million: '{PRICE['output']}'}}"
    return (
        "server: {workers: 2}\n"
        "auth: {mode: keys}\n"
        f'store: {{url: "{store_url}"}}\n'
        "providers:\n  mock: {type: mock, stream_chunks: 3}\n"
        "models:\n"
        f"  - {{name: gpt-metrics, deployments: [{{provider: mock, model: m, price: {price}}}]}}\n"
        "  - {name: gpt-scraped, deployments: [{provider: mock, model: s}]}\n"
        "observability:\n"
        "  metrics:\n"
        f"    token: '${{env:{TOKEN_ENV}}}'\n"
        "    share_interval_s: 0.2\n"
    )


@contextlib.contextmanager
def run_prometheus(binary: str, folder: Path, target: str) -> Iterator[str]:
    port = free_port()
    (folder / "token").write_text(SCRAPE_TOKEN)
    (folder / "prometheus.yml").write_text(
        "global: {scrape_interval: 1s, evaluation_interval: 1s}\n"
        "scrape_configs:\n"
        "  - job_name: gatewise\n"
        "    scrape_interval: 500ms\n"
        "    scrape_timeout: 400ms\n"
        f"    authorization: {{credentials_file: {folder / 'token'}}}\n"
        f"    static_configs: [{{targets: ['{target}']}}]\n"
    )
    log = (folder / "prometheus.log").open("wb")
    process = subprocess.Popen(
        [
            binary,
            f"--config.file={folder / 'prometheus.yml'}",
            f"--storage.tsdb.path={folder / 'data'}",
            f"--web.listen-address=127.0.0.1:{port}",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            with contextlib.suppress(OSError):
                if request("GET", url + "/-/ready", timeout=1).status == 200:
                    break
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"prometheus did not start: {(folder / 'prometheus.log')}")
            time.sleep(0.2)
        yield url
    finally:
        stop(process)
        log.close()


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    binary = require_prometheus()
    folder = tmp_path_factory.mktemp("prometheus")
    store_url = f"sqlite+aiosqlite:///{folder}/gatewise.db"
    key = with_store(store_url, one_key)
    config = folder / "gateway.yaml"
    config.write_text(config_text(store_url))
    os.environ[TOKEN_ENV] = SCRAPE_TOKEN
    try:
        with serve_gateways(config, 1) as served:
            target = served.urls[0].removeprefix("http://")
            with run_prometheus(binary, folder, target) as prometheus:
                yield Stack(served.urls[0], prometheus, key)
    finally:
        del os.environ[TOKEN_ENV]


@dataclass
class Sent:
    prompt_tokens: int = 0
    completion_tokens: int = 0


def call(stack: Stack, index: int, model: str = "gpt-metrics") -> tuple[int, int]:
    """One chat call on a fresh connection (so both workers get calls); its usage."""
    with openai.OpenAI(base_url=stack.gateway + "/v1", api_key=stack.key, max_retries=0) as client:
        messages: Any = [{"role": "user", "content": f"call {index}"}]
        if index % 3 == 0:
            stream = client.chat.completions.create(
                model=model,
                messages=messages,
                stream=True,
                stream_options={"include_usage": True},
            )
            usage = [chunk.usage for chunk in stream if chunk.usage is not None][-1]
        else:
            reply = client.chat.completions.create(model=model, messages=messages)
            assert reply.usage is not None
            usage = reply.usage
        return usage.prompt_tokens, usage.completion_tokens


def miss(stack: Stack, index: int) -> int:
    client = openai.OpenAI(base_url=stack.gateway + "/v1", api_key=stack.key, max_retries=0)
    with client, pytest.raises(openai.NotFoundError):
        client.chat.completions.create(
            model=f"no-such-model-{index}", messages=[{"role": "user", "content": "x"}]
        )
    return 404


def test_prometheus_sums_every_workers_counts(stack: Stack) -> None:
    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        usages = list(pool.map(lambda i: call(stack, i), range(CALLS)))
        list(pool.map(lambda i: miss(stack, i), range(MISSES)))
    prompt = sum(p for p, _ in usages)
    completion = sum(c for _, c in usages)
    assert stack.wait_for('sum(gatewise_workers{job="gatewise"})', 2) == 2
    served = 'sum(gatewise_requests_total{front_door="openai",model="gpt-metrics",status="200"})'
    assert stack.wait_for(served, CALLS) == CALLS
    missed = 'sum(gatewise_requests_total{front_door="openai",model="other",status="404"})'
    assert stack.wait_for(missed, MISSES) == MISSES
    tokens = 'sum by (direction) (gatewise_tokens_total{model="gpt-metrics"})'
    by_direction = {r["metric"]["direction"]: float(r["value"][1]) for r in stack.query(tokens)}
    assert by_direction == {"input": prompt, "output": completion}
    cost = stack.value('sum(gatewise_cost_usd_total{model="gpt-metrics"})')
    expected = (prompt * PRICE["input"] + completion * PRICE["output"]) / 1_000_000
    assert cost == pytest.approx(expected, abs=CALLS * 1e-6)  # micro-dollar rounding per call
    durations = 'gatewise_request_duration_seconds_count{front_door="openai",model!="gpt-scraped"}'
    assert stack.value(f"sum({durations})") == CALLS + MISSES
    ttft = 'gen_ai_server_time_to_first_token_seconds_count{gen_ai_request_model="gpt-metrics"}'
    streams = stack.value(f"sum({ttft})")
    assert streams == len(range(0, CALLS, 3))
    attempts = (
        'sum(gen_ai_client_operation_duration_seconds_count{gen_ai_provider_name="mock",'
        'gen_ai_request_model="gpt-metrics"})'
    )
    assert stack.value(attempts) == CALLS
    overhead = stack.value(
        "histogram_quantile(0.5, sum by (le) (gatewise_gateway_overhead_seconds_bucket))"
    )
    assert overhead is not None and 0 < overhead < 0.25
    assert stack.value('sum(gatewise_usage_writer_queue_depth{job="gatewise"})') is not None
    assert stack.value('up{job="gatewise"}') == 1


def test_every_scrape_answer_has_every_workers_counts_and_no_secret(stack: Stack) -> None:
    """Fresh connections reach either worker: each answer holds the same totals."""
    for index in range(4):
        call(stack, index, "gpt-scraped")
    time.sleep(0.5)  # two share intervals: each worker has written its counts
    headers = {"authorization": f"Bearer {SCRAPE_TOKEN}"}
    totals = set()
    for _ in range(12):
        reply = request("GET", stack.gateway + "/metrics", headers=headers)
        assert reply.status == 200
        text = reply.body.decode()
        assert stack.key not in text and SCRAPE_TOKEN not in text
        assert stack.key[:12] not in text  # not even the key's prefix
        lines = [
            line
            for line in text.splitlines()
            if line.startswith("gatewise_requests_total{") and 'status="200"' in line
        ]
        totals.add(sum(float(line.rsplit(" ", 1)[1]) for line in lines))
    assert len(totals) == 1  # whichever worker answered


def test_scrapes_without_the_token_are_refused(stack: Stack) -> None:
    assert request("GET", stack.gateway + "/metrics").status == 401
    wrong = {"authorization": "Bearer not-the-token"}
    assert request("GET", stack.gateway + "/metrics", headers=wrong).status == 401


def test_a_flood_of_made_up_model_names_adds_no_series(stack: Stack) -> None:
    """Anthropic's front door, so the other tests' calls (OpenAI's) do not mix in."""
    count = 'count({__name__=~"gatewise_.*|gen_ai_.*", job="gatewise"})'
    flooded = 'sum(gatewise_requests_total{front_door="anthropic",status="404"})'

    def flood(names: range) -> None:
        for index in names:  # every call a model name and a header name of its own
            body = {
                "model": f"flood-{index}",
                "max_tokens": 5,
                "messages": [{"role": "user", "content": "x"}],
            }
            headers = {"x-api-key": stack.key, f"x-flood-{index}": str(index)}
            reply = request("POST", stack.gateway + "/v1/messages", body, headers=headers)
            assert reply.status == 404, reply.body

    flood(range(200))
    assert stack.wait_for(flooded, 200) == 200
    before = stack.value(count)
    flood(range(200, 400))
    assert stack.wait_for(flooded, 400) == 400
    assert stack.value(count) == before
    names = stack.query('group by (model) ({__name__=~"gatewise_.*", job="gatewise"})')
    expected = {"gpt-metrics", "gpt-scraped", "other", "none", None}
    assert {r["metric"].get("model") for r in names} <= expected


def test_every_dashboard_query_runs_and_the_main_panels_have_data(stack: Stack) -> None:
    call(stack, 1, "gpt-scraped")
    dashboard = json.loads(DASHBOARD.read_text())
    assert dashboard["uid"] == "gatewise-overview"
    queries = {
        target["expr"]: panel["title"]
        for panel in dashboard["panels"]
        for target in panel.get("targets", [])
    }
    assert len(queries) >= 15
    for expr in queries:
        concrete = expr.replace("$__rate_interval", "1m").replace("$model", ".*")
        stack.query(concrete)  # Prometheus refuses a query it cannot parse (400)
    with_data = [
        "Requests per second by front door",
        "Request duration",
        "Gateway overhead (time in the gateway itself)",
        "Tokens per second by direction",
        "In flight",
    ]
    deadline = time.monotonic() + 20
    empty = with_data
    while empty and time.monotonic() < deadline:
        empty = [
            title
            for expr, title in queries.items()
            if title in with_data
            and not stack.query(expr.replace("$__rate_interval", "1m").replace("$model", ".*"))
        ]
        time.sleep(0.5)
    assert empty == []
