"""The metrics observer, its bounded labels, worker snapshots and the text exposition."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families
from pydantic import ValidationError

from gatewise.config.metrics import MetricsConfig
from gatewise.config.models import Config
from gatewise.core.context import Attempt, GuardrailVerdict, RequestContext
from gatewise.core.types import Usage
from gatewise.observe.metrics_exposition import render
from gatewise.observe.metrics_share import Sharing, read_snapshot, write_snapshot
from gatewise.observe.metrics_store import MetricsStore, Snapshot, merge
from gatewise.observe.metrics_worker import WorkerMetrics


def config(**metrics: object) -> Config:
    return Config.model_validate(
        {
            "providers": {"up": {"type": "mock"}, "backup": {"type": "mock"}},
            "models": [
                {"name": "gpt-a", "deployments": [{"provider": "up", "model": "a"}]},
                {"name": "gpt-b", "deployments": [{"provider": "backup", "model": "b"}]},
            ],
            "observability": {"metrics": metrics},
        }
    )


def worker(**metrics: object) -> tuple[WorkerMetrics, Config]:
    cfg = config(**metrics)
    found = WorkerMetrics(cfg.observability.metrics, None)
    found.configure(cfg, None)
    return found, cfg


def chat(
    model: str = "gpt-a", status: int = 200, path: str = "/v1/chat/completions"
) -> RequestContext:
    ctx = RequestContext("req_1", "POST", path, "chat", model)
    ctx.status = status
    return ctx


def families(body: bytes) -> dict[str, dict[tuple[tuple[str, str], ...], float]]:
    """Every sample of the exposition (parsed by prometheus-client), by name and labels."""
    found: dict[str, dict[tuple[tuple[str, str], ...], float]] = {}
    for family in text_string_to_metric_families(body.decode()):
        for sample in family.samples:
            found.setdefault(sample.name, {})[tuple(sorted(sample.labels.items()))] = sample.value
    return found


def scrape(
    metrics: WorkerMetrics, cfg: Config
) -> dict[str, dict[tuple[tuple[str, str], ...], float]]:
    providers = {name: p.type for name, p in cfg.providers.items()}
    return families(render(merge(metrics.sharing.everyone()), providers))


def test_a_call_is_counted_with_its_tokens_cost_overhead_and_attempt() -> None:
    metrics, cfg = worker()
    observer = metrics.observer(cfg)
    ctx = chat()
    ctx.started -= 0.5  # half a second ago
    ctx.attempts.append(Attempt("up", "a", 200, None, first_byte_ms=300.0, duration_ms=400.0))
    ctx.usage = Usage(prompt_tokens=12, completion_tokens=30, total_tokens=42)
    ctx.cost_micros = 2_500
    observer.finished(ctx)
    seen = scrape(metrics, cfg)
    labels = (
        ("front_door", "openai"),
        ("model", "gpt-a"),
        ("operation", "chat"),
        ("provider", "up"),
        ("status", "200"),
    )
    assert seen["gatewise_requests_total"] == {labels: 1}
    tokens = seen["gatewise_tokens_total"]
    assert tokens[(("direction", "input"), ("model", "gpt-a"), ("provider", "up"))] == 12
    assert tokens[(("direction", "output"), ("model", "gpt-a"), ("provider", "up"))] == 30
    assert seen["gatewise_cost_usd_total"] == {(("model", "gpt-a"), ("provider", "up")): 0.0025}
    overhead = seen["gatewise_gateway_overhead_seconds_sum"][(("front_door", "openai"),)]
    assert 0.1 <= overhead < 0.2  # 0.5 s in all, 0.4 s of it upstream
    ttfb = seen["gatewise_time_to_first_byte_seconds_sum"]
    first = ttfb[(("front_door", "openai"), ("model", "gpt-a"), ("provider", "up"))]
    assert 0.4 <= first < 0.5  # all but the 0.1 s the upstream took after its first byte
    duration = seen["gen_ai_client_operation_duration_seconds_sum"]
    semantic = (
        ("gen_ai_operation_name", "chat"),
        ("gen_ai_provider_name", "mock"),
        ("gen_ai_request_model", "gpt-a"),
    )
    assert duration == {semantic: pytest.approx(0.4)}
    usage = seen["gen_ai_client_token_usage_count"]
    assert usage[(*semantic, ("gen_ai_token_type", "input"))] == 1
    # not a stream: no time to first token
    assert "gen_ai_server_time_to_first_token_seconds_count" not in seen


def test_a_successful_stream_has_a_time_to_first_token() -> None:
    metrics, cfg = worker()
    ctx = chat()
    ctx.stream = True
    ctx.attempts.append(Attempt("up", "a", 200, None, first_byte_ms=20.0, duration_ms=900.0))
    metrics.observer(cfg).finished(ctx)
    counts = scrape(metrics, cfg)["gen_ai_server_time_to_first_token_seconds_count"]
    assert list(counts.values()) == [1]


def test_unknown_models_statuses_and_paths_fall_into_bounded_values() -> None:
    metrics, cfg = worker()
    observer = metrics.observer(cfg)
    for index in range(1000):
        ctx = chat(model=f"made-up-{index}", status=400 + index % 100)
        ctx.headers = {f"x-header-{index}".encode(): b"v"}
        observer.finished(ctx)
        observer.finished(chat(path=f"/random/{index}", model=""))
    requests = scrape(metrics, cfg)["gatewise_requests_total"]
    models = {dict(labels)["model"] for labels in requests}
    statuses = {dict(labels)["status"] for labels in requests}
    doors = {dict(labels)["front_door"] for labels in requests}
    assert models == {"other", "none"}
    assert statuses == {"200", "400", "401", "403", "404", "408", "413", "422", "429", "499", "4xx"}
    assert doors == {"openai", "other"}
    assert sum(requests.values()) == 2000
    assert len(metrics.store.requests) <= 20  # not 2,000


def test_health_checks_and_the_scrape_itself_are_not_traffic() -> None:
    metrics, cfg = worker(path="/internal/metrics")
    observer = metrics.observer(cfg)
    for path in ("/healthz", "/readyz", "/internal/metrics"):
        observer.finished(RequestContext("req_1", "GET", path))
    assert metrics.store.requests == {}


def test_tenants_are_labels_only_when_listed() -> None:
    class Caller:
        name = owner = "c"
        team_id = app_id = user_id = key_id = None

        def __init__(self, tenant: str) -> None:
            self.tenant_id = tenant

    metrics, cfg = worker(labels={"tenants": ["ten_acme"]})
    observer = metrics.observer(cfg)
    for tenant in ("ten_acme", "ten_secret_other"):
        ctx = chat()
        ctx.principal = Caller(tenant)
        observer.finished(ctx)
    tenants = {dict(k)["tenant"] for k in scrape(metrics, cfg)["gatewise_requests_total"]}
    assert tenants == {"ten_acme", "other"}
    plain, plain_cfg = worker()
    ctx = chat()
    ctx.principal = Caller("ten_acme")
    plain.observer(plain_cfg).finished(ctx)
    (labels,) = scrape(plain, plain_cfg)["gatewise_requests_total"]
    assert "tenant" not in dict(labels)


def test_verdicts_limit_refusals_and_upstream_errors_are_counted() -> None:
    metrics, cfg = worker(labels={"max_values": 2})
    observer = metrics.observer(cfg)
    ctx = chat(status=429)
    ctx.decisions.append("limited:requests:per-key:minute")
    observer.finished(ctx)
    ctx = chat(status=400)
    for category in ("email", "phone", "iban"):
        ctx.guardrails.append(GuardrailVerdict("pii", category, 1.0, "mask", "input"))
    observer.finished(ctx)
    ctx = chat(status=502)
    ctx.attempts.append(Attempt("up", "a", 500, "upstream_error", 1.0, 2.0))
    ctx.attempts.append(Attempt("backup", "b", None, "upstream_timeout", 0.0, 3.0))
    observer.finished(ctx)
    seen = scrape(metrics, cfg)
    limits = seen["gatewise_limit_rejections_total"]
    assert limits == {(("front_door", "openai"), ("kind", "requests"), ("limit", "per-key")): 1}
    verdicts = {
        dict(k)["category"]: v for k, v in seen["gatewise_guardrail_verdicts_total"].items()
    }
    assert verdicts == {"email": 1, "phone": 1, "other": 1}  # max_values: 2
    errors = {dict(k)["error"]: v for k, v in seen["gatewise_upstream_errors_total"].items()}
    assert errors == {"upstream_error": 1, "upstream_timeout": 1}
    (requests,) = seen["gatewise_requests_total"].items() - {
        k for k in seen["gatewise_requests_total"].items() if dict(k[0])["status"] != "502"
    }
    assert dict(requests[0])["provider"] == "backup"  # the last attempt's


def test_gauges_are_read_from_live_state() -> None:
    from gatewise.routing.health import HealthBoard

    class Writer:
        depth = 7
        dropped = 3

    class Sources:
        usage_writer = Writer()
        records = None
        health = HealthBoard()

    sources = Sources()
    now = time.monotonic()
    for _ in range(5):
        sources.health.get("dep-1").finished("failure", now)
    sources.health.get("dep-2").finished("ok", now)
    metrics, cfg = worker()
    metrics.in_flight = lambda: 4
    metrics._sources = sources  # what start() sets; no sharing task in a unit test
    seen = scrape(metrics, cfg)
    assert seen["gatewise_requests_in_flight"] == {(): 4}
    assert seen["gatewise_usage_writer_queue_depth"] == {(): 7}
    assert seen["gatewise_usage_writer_dropped_total"] == {(): 3}
    state = seen["gatewise_breaker_state"]
    assert state[(("deployment", "dep-1"), ("state", "open"))] == 1
    assert state[(("deployment", "dep-1"), ("state", "closed"))] == 0
    assert state[(("deployment", "dep-2"), ("state", "closed"))] == 1


def test_workers_share_counts_through_files_and_stale_gauges_fade(tmp_path: Path) -> None:
    cfg = config()
    settings = cfg.observability.metrics
    first, second = WorkerMetrics(settings, tmp_path), WorkerMetrics(settings, tmp_path)
    for metrics, calls in ((first, 3), (second, 2)):
        observer = metrics.observer(cfg)
        metrics.in_flight = lambda: 1
        for _ in range(calls):
            observer.finished(chat())
    second.sharing.write()
    seen = scrape(first, cfg)
    assert sum(seen["gatewise_requests_total"].values()) == 5
    assert seen["gatewise_workers"] == {(): 2}
    assert seen["gatewise_requests_in_flight"] == {(): 2}
    assert second.sharing.path is not None
    old = time.time() - 60
    os.utime(second.sharing.path, (old, old))  # its worker stopped writing long ago
    seen = scrape(first, cfg)
    assert sum(seen["gatewise_requests_total"].values()) == 5  # counters stay
    assert seen["gatewise_workers"] == {(): 1}  # gauges do not


def test_a_snapshot_file_round_trips_and_a_foreign_file_is_ignored(tmp_path: Path) -> None:
    store = MetricsStore()
    store.verdicts[("pii", "email", "mask", "input")] = 4
    store.request_series(("openai", "chat", "m", "p", "200", "")).requests = 9
    path = tmp_path / "w.metrics"
    write_snapshot(path, store.snapshot())
    back = read_snapshot(path)
    assert back is not None
    assert back.verdicts == {("pii", "email", "mask", "input"): 4}
    assert back.requests[("openai", "chat", "m", "p", "200", "")][0] == 9
    (tmp_path / "x.metrics").write_bytes(b"not a snapshot")
    assert read_snapshot(tmp_path / "x.metrics") is None
    sharing = Sharing(MetricsStore(), tmp_path, 1.0, lambda snap: None)
    assert len(sharing.everyone()) == 2  # its own and w.metrics


def test_merge_adds_histograms_slot_by_slot() -> None:
    one, two = MetricsStore(), MetricsStore()
    key = ("openai", "chat", "m", "p", "200", "")
    for store, seconds in ((one, 0.004), (two, 3.0)):
        series = store.request_series(key)
        series.requests = 1
        series.latency[0 if seconds < 0.005 else 10] += 1
        series.latency[-1] += seconds
    total = merge([one.snapshot(), two.snapshot(), Snapshot()])
    values = total.requests[key]
    assert values[0] == 2
    latency = values[1]
    assert isinstance(latency, list)
    assert latency[0] == 1 and latency[10] == 1 and latency[-1] == pytest.approx(3.004)
    assert one.requests[key].requests == 1  # the live store is untouched


def test_label_values_are_escaped() -> None:
    store = MetricsStore()
    store.verdicts[('we"ird\\', "new\nline", "block", "input")] = 1
    body = render(merge([store.snapshot()]), {})
    (labels,) = families(body)["gatewise_guardrail_verdicts_total"]
    assert dict(labels)["guardrail"] == 'we"ird\\'
    assert dict(labels)["category"] == "new\nline"


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"path": "/v1/metrics"}, "is taken by the gateway"),
        ({"path": "/healthz"}, "is taken by the gateway"),
        ({"path": "metrics"}, "String should match pattern"),
        ({"labels": {"status_codes": [200, 999]}}, "status code 999 is not an HTTP status"),
        ({"token": "plain-text-token"}, "must be references"),
        ({"share_interval_s": 0}, "greater than 0"),
        ({"scrape": True}, "Extra inputs are not permitted"),
    ],
)
def test_bad_settings_are_refused_precisely(settings: dict[str, object], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        MetricsConfig.model_validate(settings)


def test_a_missing_scrape_token_stops_the_start_with_the_setting_named(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from gatewise.runtime.prepare import StartupError, prepare

    monkeypatch.delenv("GATEWISE_UNSET_METRICS_TOKEN", raising=False)
    cfg = config(token="${env:GATEWISE_UNSET_METRICS_TOKEN}")
    with pytest.raises(StartupError, match=r"observability\.metrics\.token: environment variable"):
        prepare(cfg)
