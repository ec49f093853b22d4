"""Rate limits and budgets through the real front doors and SDKs (embedded, memory counters).

Checks the 429s clients see (OpenAI's and Anthropic's envelopes and headers),
the rate-limit headers on successful responses, and that the official SDKs'
retry logic does the right thing: wait and retry a throttled call, never
retry an exhausted quota.
"""

from __future__ import annotations

import concurrent.futures
import logging
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import anthropic
import openai
import orjson
import pytest

from gatewise.core.tokens import admission_count_request
from gatewise.core.types import ChatRequest, Message
from gatewise.store.identity import IdentityStore
from gatewise.store.usage import UsageRepository, UsageRow
from gatewise.testing.gateway import RunningGateway, run_gateway_in_thread
from tests.identity_seed import ACTOR, with_store
from tests.rawhttp import Reply, request

HELLO = [{"role": "user", "content": "hello"}]


@dataclass
class Setup:
    gateway: RunningGateway
    keys: dict[str, str]
    ledger_tenant: str  # the tenant of the "ledger" key, used by no other test


async def seed(store: IdentityStore) -> tuple[dict[str, str], str]:
    tenant = await store.create_tenant(ACTOR, name="acme")
    keys = {}
    for name in ("rpm", "rps", "tokens", "budget", "slow", "claude", "usd", "drip", "cut"):
        app = await store.create_app(ACTOR, tenant_id=tenant.id, name=name)
        _, keys[name] = await store.create_key(ACTOR, name=name, app_id=app.id)
    ledger = await store.create_tenant(ACTOR, name="ledger")
    app = await store.create_app(ACTOR, tenant_id=ledger.id, name="ledger")
    _, keys["ledger"] = await store.create_key(ACTOR, name="ledger", app_id=app.id)
    return keys, ledger.id


def model(name: str, **extra: object) -> dict[str, object]:
    return {"name": name, "deployments": [{"provider": "mock", "model": name, **extra}]}


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Setup]:
    store_url = f"sqlite+aiosqlite:///{tmp_path_factory.mktemp('limits')}/gatewise.db"
    keys, ledger_tenant = with_store(store_url, seed)
    config = {
        "server": {"access_log": True},  # counts the calls SDKs make (``logged_statuses``)
        "auth": {"mode": "keys", "refresh_seconds": 0.2},
        "store": {"url": store_url},
        "providers": {
            "mock": {"type": "mock"},
            "slow": {"type": "mock", "latency_ms": 400},
            "drip": {"type": "mock", "stream_chunks": 100, "chunk_delay_ms": 100},
        },
        "models": [
            model("mock-gpt"),
            model("priced-gpt", price={"input_per_million": "1000", "output_per_million": "2000"}),
            {"name": "slow-gpt", "deployments": [{"provider": "slow", "model": "slow-gpt"}]},
            {"name": "drip-gpt", "deployments": [{"provider": "drip", "model": "drip-gpt"}]},
        ],
        "limits": [
            {
                "name": "rpm",
                "per": "key",
                "tenants": ["acme"],
                "requests_per_minute": 3,
                "models": ["mock-gpt"],
            },
            {"name": "tpm", "per": "app", "tokens_per_minute": 2000, "models": ["mock-gpt"]},
            {"name": "one-at-a-time", "per": "key", "concurrent": 1, "models": ["slow-gpt"]},
            {"name": "one-stream", "per": "key", "concurrent": 1, "models": ["drip-gpt"]},
        ],
        "budgets": [
            {
                "name": "tiny",
                "per": "app",
                "tokens": 60,
                "period": "day",
                "models": ["mock-gpt"],
                "tenants": ["acme"],
            },
            {
                "name": "cents",
                "per": "app",
                "usd": "0.10",
                "period": "month",
                "models": ["priced-gpt"],
            },
        ],
    }
    with run_gateway_in_thread(config) as gateway:
        yield Setup(gateway, keys, ledger_tenant)


def post(
    setup: Setup, key: str, body: dict[str, object], path: str = "/v1/chat/completions"
) -> Reply:
    headers = {"authorization": f"Bearer {key}"}
    if path == "/v1/messages":
        headers["anthropic-version"] = "2023-06-01"
    return request("POST", setup.gateway.url + path, body, headers=headers)


def chat_body(model_name: str = "mock-gpt", **extra: object) -> dict[str, object]:
    return {"model": model_name, "messages": HELLO, "max_tokens": 5, **extra}


@pytest.fixture
def access_log(caplog: pytest.LogCaptureFixture) -> pytest.LogCaptureFixture:
    """The gateway's access log (it runs in this process), as caplog records."""
    caplog.set_level(logging.INFO, logger="gatewise")
    return caplog


def logged_statuses(setup: Setup, access_log: pytest.LogCaptureFixture, model: str) -> list[int]:
    """Statuses of the ``model`` calls the gateway logged in this test, in order. A request
    sent now marks the end: once it is logged, so is every call answered before it."""
    marker = f"marker-{uuid.uuid4().hex}"
    request("GET", setup.gateway.url + "/healthz", headers={"x-request-id": marker})
    deadline = time.monotonic() + 5
    while not any(getattr(r, "request_id", None) == marker for r in access_log.records):
        assert time.monotonic() < deadline, "the gateway's access log missed a request"
        time.sleep(0.01)
    logged = [r for r in access_log.records if r.name == "gatewise" and hasattr(r, "status")]
    return [r.status for r in logged if getattr(r, "model", None) == model]  # type: ignore[attr-defined]


def test_requests_per_minute_headers_then_429(setup: Setup) -> None:
    # The tiny token budget would stop this key's app first: use a fresh app without budget?
    # "rpm" is counted per key; its app also falls under the 60-token daily budget, and
    # each call here is estimated at about 15 tokens, so three calls fit.
    replies = [post(setup, setup.keys["rpm"], chat_body()) for _ in range(4)]
    assert [r.status for r in replies] == [200, 200, 200, 429], [r.body for r in replies]
    assert [r.headers["x-ratelimit-remaining-requests"] for r in replies[:3]] == ["2", "1", "0"]
    assert replies[0].headers["x-ratelimit-limit-requests"] == "3"
    assert replies[0].headers["x-ratelimit-reset-requests"].endswith("s")
    assert "x-ratelimit-limit-tokens" in replies[0].headers
    refused = replies[3]
    error = refused.json["error"]
    assert (error["type"], error["code"]) == ("requests", "rate_limit_exceeded")
    assert 1 <= int(refused.headers["retry-after"]) <= 60
    assert 0 < int(refused.headers["retry-after-ms"]) <= 60_000
    assert refused.headers["x-ratelimit-remaining-requests"] == "0"


def both_at_once(ask: Callable[[], object]) -> list[tuple[object, float]]:
    """Two concurrent calls: each one's reply and how long it took."""

    def timed(_: int) -> tuple[object, float]:
        started = time.perf_counter()
        reply = ask()
        return reply, time.perf_counter() - started

    with concurrent.futures.ThreadPoolExecutor(2) as pool:
        return list(pool.map(timed, range(2)))


def assert_one_waited_out_a_throttle(
    setup: Setup, access_log: pytest.LogCaptureFixture, results: list[tuple[object, float]]
) -> None:
    statuses = logged_statuses(setup, access_log, "slow-gpt")
    assert statuses.count(200) == 2 and set(statuses) == {200, 429}, statuses
    # The refused call was retried only after retry-after (1 s), not the SDK's own backoff.
    assert max(took for _, took in results) >= 0.9


def test_the_openai_sdk_waits_out_a_throttle_and_succeeds(
    setup: Setup, access_log: pytest.LogCaptureFixture
) -> None:
    """Concurrency 1 on slow-gpt (400 ms a call), two calls at once: one gets 429 +
    retry-after 1 s, and the SDK, which honours retry-after, retries it after the other."""
    client = openai.OpenAI(
        base_url=setup.gateway.openai_base_url, api_key=setup.keys["slow"], max_retries=3
    )
    results = both_at_once(
        lambda: client.chat.completions.create(model="slow-gpt", messages=HELLO)  # type: ignore[arg-type]
    )
    assert all(reply.choices[0].message.content for reply, _ in results)  # type: ignore[attr-defined]
    assert_one_waited_out_a_throttle(setup, access_log, results)


def test_the_anthropic_sdk_waits_out_a_throttle_too(
    setup: Setup, access_log: pytest.LogCaptureFixture
) -> None:
    client = anthropic.Anthropic(
        base_url=setup.gateway.url, api_key=setup.keys["slow"], max_retries=3
    )
    results = both_at_once(
        lambda: client.messages.create(model="slow-gpt", max_tokens=5, messages=HELLO)  # type: ignore[arg-type]
    )
    assert all(reply.content for reply, _ in results)  # type: ignore[attr-defined]
    assert_one_waited_out_a_throttle(setup, access_log, results)


def test_an_exhausted_quota_is_429_insufficient_quota_and_not_retried(
    setup: Setup, access_log: pytest.LogCaptureFixture
) -> None:
    key = setup.keys["budget"]
    assert post(setup, key, chat_body()).status == 200
    # 60 tokens a day: a call allowing 100 output tokens cannot fit any more.
    client = openai.OpenAI(base_url=setup.gateway.openai_base_url, api_key=key, max_retries=4)
    access_log.clear()
    with pytest.raises(openai.RateLimitError) as caught:
        client.chat.completions.create(model="mock-gpt", messages=HELLO, max_tokens=100)  # type: ignore[arg-type]
    assert logged_statuses(setup, access_log, "mock-gpt") == [429]  # asked once, no retry
    assert caught.value.code == "insufficient_quota"
    assert caught.value.response.headers["x-should-retry"] == "false"
    assert "budget 'tiny'" in caught.value.message
    claude_client = anthropic.Anthropic(base_url=setup.gateway.url, api_key=key, max_retries=4)
    access_log.clear()
    with pytest.raises(anthropic.RateLimitError) as refused:
        claude_client.messages.create(model="mock-gpt", max_tokens=100, messages=HELLO)  # type: ignore[arg-type]
    assert logged_statuses(setup, access_log, "mock-gpt") == [429]  # x-should-retry honoured
    assert refused.value.response.headers["x-should-retry"] == "false"


def test_token_limits_count_the_estimate_and_refuse_oversized_calls(setup: Setup) -> None:
    refused = post(setup, setup.keys["tokens"], chat_body(max_tokens=5000))
    assert refused.status == 429
    error = refused.json["error"]
    # The estimate (the prompt plus 5,000 output tokens) is over 'tpm' (2,000 a minute) alone.
    assert error["type"] == "tokens" and "needs about 50" in error["message"]
    assert refused.headers["x-should-retry"] == "false"


def test_the_anthropic_door_speaks_anthropic_rate_limits(setup: Setup) -> None:
    client = anthropic.Anthropic(
        base_url=setup.gateway.url, api_key=setup.keys["claude"], max_retries=0
    )
    raw = client.messages.with_raw_response.create(model="mock-gpt", max_tokens=5, messages=HELLO)  # type: ignore[arg-type]
    assert raw.headers["anthropic-ratelimit-requests-limit"] == "3"
    assert raw.headers["anthropic-ratelimit-requests-remaining"] == "2"
    assert raw.headers["anthropic-ratelimit-requests-reset"].endswith("Z")
    assert "x-ratelimit-limit-requests" not in raw.headers
    for _ in range(2):
        client.messages.create(model="mock-gpt", max_tokens=5, messages=HELLO)  # type: ignore[arg-type]
    with pytest.raises(anthropic.RateLimitError) as caught:
        client.messages.create(model="mock-gpt", max_tokens=5, messages=HELLO)  # type: ignore[arg-type]
    assert caught.value.body["error"]["type"] == "rate_limit_error"  # type: ignore[index]
    assert int(caught.value.response.headers["retry-after"]) >= 1


def test_a_usd_budget_stops_at_its_price(setup: Setup) -> None:
    """priced-gpt costs 1000 USD per million input tokens and 2000 per million output: the
    estimate of one call (prompt + 5 output tokens) decides how many 0.10 USD allow."""
    body = chat_body("priced-gpt")
    request_model = ChatRequest(
        model="priced-gpt", messages=[Message(role="user", content="hello")]
    )
    prompt = admission_count_request(request_model)
    estimate = prompt * 1000 + 5 * 2000  # micro-USD (1000 USD/M = 1000 micro-USD per token)
    expected = 100_000 // estimate
    statuses = [post(setup, setup.keys["usd"], body).status for _ in range(expected + 2)]
    assert statuses.count(200) >= expected  # settled with the real (smaller) usage
    assert statuses[-1] == 429


def test_every_call_leaves_a_usage_record_with_its_cost(setup: Setup) -> None:
    before = time.time()
    assert post(setup, setup.keys["ledger"], chat_body("priced-gpt")).status == 200
    refused = post(setup, setup.keys["ledger"], chat_body("priced-gpt", max_tokens=10**6))
    assert refused.status == 429  # a call refused by a budget is recorded too
    store_url = str(setup.gateway.app.services.database.url)

    async def by_model(store: IdentityStore) -> dict[str, UsageRow]:
        # Only this test's tenant: the minute it ran in may hold other tests' calls too.
        rows = await UsageRepository(store.database).summary(
            "model", before, time.time() + 60, tenant_id=setup.ledger_tenant
        )
        return {row.group: row for row in rows if row.group is not None}

    deadline = time.monotonic() + 5
    rows: dict[str, UsageRow] = {}
    while time.monotonic() < deadline:
        rows = with_store(store_url, by_model)
        if "priced-gpt" in rows and rows["priced-gpt"].requests + rows["priced-gpt"].refused >= 2:
            break
        time.sleep(0.2)
    priced = rows["priced-gpt"]
    assert (priced.requests, priced.refused) == (1, 1)  # the refused call is no request
    assert priced.prompt_tokens > 0 and priced.completion_tokens > 0
    # 1000 USD/M input and 2000 USD/M output: cost is exact in micro-USD.
    assert priced.cost_micros == priced.prompt_tokens * 1000 + priced.completion_tokens * 2000
    assert priced.cost_unknown_requests == 0


def test_a_stream_cut_by_the_client_frees_its_concurrency_slot(setup: Setup) -> None:
    """A streamed call holds its slot while it runs and gives it back when the client
    leaves (the 10-second stream is abandoned after its first event)."""
    import http.client
    from urllib.parse import urlsplit

    key = setup.keys["drip"]
    parts = urlsplit(setup.gateway.url)
    connection = http.client.HTTPConnection(parts.hostname or "", parts.port, timeout=5)
    body = chat_body("drip-gpt", stream=True)
    headers = {"authorization": f"Bearer {key}", "content-type": "application/json"}
    connection.request("POST", "/v1/chat/completions", orjson.dumps(body), headers)
    response = connection.getresponse()
    assert response.status == 200
    assert response.readline().startswith(b"data: ")
    # While the stream runs, the key's only slot is taken.
    assert post(setup, key, chat_body("drip-gpt")).status == 429
    connection.close()  # the client leaves mid-stream
    deadline = time.monotonic() + 5  # well before the stream would have ended
    while post(setup, key, chat_body("drip-gpt")).status == 429:
        assert time.monotonic() < deadline, "the abandoned stream kept its slot"
        time.sleep(0.05)


def test_a_stream_cut_early_frees_its_slot_at_once(
    setup: Setup, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The client leaves a stream before the disconnect watch's grace (which saves short
    requests a task) is over: the slot must come back as soon as the cut is seen, not
    when the watch starts or the stream ends (it runs 2 s)."""
    import http.client
    from urllib.parse import urlsplit

    from gatewise.http.asgi import DisconnectWatch

    monkeypatch.setattr(DisconnectWatch, "GRACE", 5.0)  # a grace longer than the stream
    key = setup.keys["cut"]
    parts = urlsplit(setup.gateway.url)
    connection = http.client.HTTPConnection(parts.hostname or "", parts.port, timeout=5)
    body = chat_body("drip-gpt", stream=True)
    headers = {"authorization": f"Bearer {key}", "content-type": "application/json"}
    connection.request("POST", "/v1/chat/completions", orjson.dumps(body), headers)
    response = connection.getresponse()
    assert response.status == 200 and response.readline().startswith(b"data: ")
    connection.close()  # the client leaves mid-stream
    cut = time.monotonic()
    while post(setup, key, chat_body("drip-gpt")).status == 429:
        assert time.monotonic() - cut < 1.0, "the cut stream kept its slot"
        time.sleep(0.01)
