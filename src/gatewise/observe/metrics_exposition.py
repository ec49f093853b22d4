"""Prometheus text exposition (format 0.0.4) of merged worker snapshots.

Written here rather than with prometheus-client: the counts are ours (``metrics_store``),
and the format is a few lines per family. Histograms are stored per request label set
and summed here over the labels they do not carry (status, tenant ...), so their series
count stays small. Empty label values are left out, as Prometheus treats them.
OpenTelemetry GenAI metrics use the names the OTLP-to-Prometheus translation gives
them: ``gen_ai.client.token.usage`` is ``gen_ai_client_token_usage`` and so on.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

from gatewise.observe.metrics_labels import GENAI_OPERATIONS, OTHER
from gatewise.observe.metrics_store import (
    LATENCY_BUCKETS,
    OPERATION_BUCKETS,
    OVERHEAD_BUCKETS,
    TOKEN_BUCKETS,
    TTFT_BUCKETS,
    Snapshot,
)

CONTENT_TYPE = b"text/plain; version=0.0.4; charset=utf-8"

#: Sampled gauges: name -> help.
GAUGES = {
    "gatewise_workers": "Worker processes reporting metrics.",
    "gatewise_requests_in_flight": "Requests being served.",
    "gatewise_usage_writer_queue_depth": "Usage records waiting to be written.",
    "gatewise_records_writer_queue_depth": "Request records waiting to be written.",
}
#: Counters their owners keep (sampled like gauges, summed like counters): name -> help.
SAMPLED = {
    "gatewise_usage_writer_dropped_total": "Usage records dropped (queue full or closed).",
    "gatewise_records_writer_dropped_total": "Request records dropped (queue full or closed).",
}

Labels = tuple[tuple[str, str], ...]

#: Per-worker numbers kept under ``name:label-value`` keys: workers serving a config (by
#: its hash) and config reload attempts (by result).
CONFIG_INFO = "gatewise_config_info"
CONFIG_RELOADS = "gatewise_config_reloads_total"


def render(merged: Snapshot, provider_types: Mapping[str, str]) -> bytes:
    """The whole scrape answer."""
    out: list[str] = []
    _requests(out, merged, provider_types)
    _attempts(out, merged)
    _counter(
        out,
        "gatewise_guardrail_verdicts_total",
        "Guardrail verdicts by guardrail, category, action and direction.",
        (
            ((("guardrail", g), ("category", c), ("action", a), ("direction", d)), n)
            for (g, c, a, d), n in merged.verdicts.items()
        ),
    )
    _counter(
        out,
        "gatewise_limit_rejections_total",
        "Requests refused by a limit or budget (429).",
        (
            ((("front_door", door), ("kind", kind), ("limit", name)), n)
            for (door, kind, name), n in merged.limits.items()
        ),
    )
    for name, text in GAUGES.items():
        if name in merged.gauges:
            _family(out, name, "gauge", text, [((), merged.gauges[name])])
    for name, text in SAMPLED.items():
        if name in merged.sampled:
            _family(out, name, "counter", text, [((), merged.sampled[name])])
    _suffixed(out, merged.gauges, CONFIG_INFO, "gauge", "Workers serving a config.", "hash")
    _suffixed(out, merged.sampled, CONFIG_RELOADS, "counter", "Config reload attempts.", "result")
    _family(
        out,
        "gatewise_breaker_state",
        "gauge",
        "Workers whose circuit breaker of a deployment is in this state.",
        [((("deployment", d), ("state", s)), n) for (d, s), n in merged.breakers.items()],
    )
    return "".join(out).encode()


def _requests(out: list[str], merged: Snapshot, provider_types: Mapping[str, str]) -> None:
    requests: list[tuple[Labels, float]] = []
    latency: dict[Labels, list[float]] = {}
    ttfb: dict[Labels, list[float]] = {}
    overhead: dict[Labels, list[float]] = {}
    tokens: dict[Labels, float] = {}
    cost: dict[Labels, float] = {}
    usage: dict[Labels, list[float]] = {}
    ttft: dict[Labels, list[float]] = {}
    for key, values in merged.requests.items():
        door, operation, model, provider, status, tenant = key
        count, lat, first, over, t_in, t_out, micros, u_in, u_out, t_ft = values
        assert isinstance(count, int)
        requests.append(
            (
                (
                    ("front_door", door),
                    ("operation", operation),
                    ("model", model),
                    ("provider", provider),
                    ("status", status),
                    ("tenant", tenant),
                ),
                count,
            )
        )
        where = (("front_door", door), ("model", model), ("provider", provider))
        _add(latency, where, lat)
        _add(ttfb, where, first)
        _add(overhead, (("front_door", door),), over)
        owner = (("model", model), ("provider", provider), ("tenant", tenant))
        for direction, number in (("input", t_in), ("output", t_out)):
            key_t = (*owner, ("direction", direction))
            tokens[key_t] = tokens.get(key_t, 0) + number  # type: ignore[operator]
        cost[owner] = cost.get(owner, 0) + micros / 1_000_000  # type: ignore[operator]
        genai = GENAI_OPERATIONS.get(operation)
        if genai is not None:
            semantic = (
                ("gen_ai_operation_name", genai),
                ("gen_ai_provider_name", provider_types.get(provider, OTHER)),
                ("gen_ai_request_model", model),
            )
            _add(usage, (*semantic, ("gen_ai_token_type", "input")), u_in)
            _add(usage, (*semantic, ("gen_ai_token_type", "output")), u_out)
            _add(ttft, semantic, t_ft)
    _family(
        out,
        "gatewise_requests_total",
        "counter",
        "Requests by front door, operation, model, provider and status.",
        requests,
    )
    _histogram(
        out,
        "gatewise_request_duration_seconds",
        "Request time, from its arrival to the last byte of the answer.",
        LATENCY_BUCKETS,
        latency,
    )
    _histogram(
        out,
        "gatewise_time_to_first_byte_seconds",
        "Time until the upstream's answer (a stream: its opening) reached the gateway.",
        LATENCY_BUCKETS,
        ttfb,
    )
    _histogram(
        out,
        "gatewise_gateway_overhead_seconds",
        "Request time spent in the gateway itself (not waiting for upstreams).",
        OVERHEAD_BUCKETS,
        overhead,
    )
    _counter(out, "gatewise_tokens_total", "Tokens by direction.", tokens.items())
    _counter(out, "gatewise_cost_usd_total", "What calls cost, in US dollars.", cost.items())
    _histogram(
        out,
        "gen_ai_client_token_usage",
        "Tokens per call (OpenTelemetry gen_ai.client.token.usage).",
        TOKEN_BUCKETS,
        usage,
    )
    _histogram(
        out,
        "gen_ai_server_time_to_first_token_seconds",
        "Time to the first token of successful streams (gen_ai.server.time_to_first_token).",
        TTFT_BUCKETS,
        ttft,
    )


def _attempts(out: list[str], merged: Snapshot) -> None:
    attempts: dict[Labels, float] = {}
    errors: dict[Labels, float] = {}
    duration: dict[Labels, list[float]] = {}
    for (provider, kind, model, operation, error), values in merged.attempts.items():
        count, hist = values
        assert isinstance(count, int) and isinstance(hist, list)
        where = (("provider", provider), ("model", model))
        attempts[where] = attempts.get(where, 0) + count
        if error:
            key = (*where, ("error", error))
            errors[key] = errors.get(key, 0) + count
        genai = GENAI_OPERATIONS.get(operation)
        if genai is not None:
            semantic = (
                ("gen_ai_operation_name", genai),
                ("gen_ai_provider_name", kind),
                ("gen_ai_request_model", model),
                ("error_type", error),
            )
            _add(duration, semantic, hist)
    _counter(out, "gatewise_upstream_attempts_total", "Calls to upstreams.", attempts.items())
    _counter(out, "gatewise_upstream_errors_total", "Failed calls to upstreams.", errors.items())
    _histogram(
        out,
        "gen_ai_client_operation_duration_seconds",
        "Upstream call time (OpenTelemetry gen_ai.client.operation.duration).",
        OPERATION_BUCKETS,
        duration,
    )


def _add(target: dict[Labels, list[float]], labels: Labels, counts: object) -> None:
    assert isinstance(counts, list)
    mine = target.get(labels)
    if mine is None:
        target[labels] = list(counts)
    else:
        for index, number in enumerate(counts):
            mine[index] += number


def _counter(out: list[str], name: str, text: str, samples: Iterable[tuple[Labels, float]]) -> None:
    _family(out, name, "counter", text, list(samples))


def _suffixed(
    out: list[str], numbers: Mapping[str, float], name: str, kind: str, text: str, label: str
) -> None:
    prefix = name + ":"
    samples = [
        (((label, key.removeprefix(prefix)),), value)
        for key, value in numbers.items()
        if key.startswith(prefix)
    ]
    _family(out, name, kind, text, samples)


def _family(
    out: list[str], name: str, kind: str, text: str, samples: Sequence[tuple[Labels, float]]
) -> None:
    if not samples:
        return
    out.append(f"# HELP {name} {text}\n# TYPE {name} {kind}\n")
    for labels, value in sorted(samples):
        out.append(f"{name}{_labels(labels)} {_number(value)}\n")


def _histogram(
    out: list[str],
    name: str,
    text: str,
    buckets: Sequence[float],
    series: Mapping[Labels, list[float]],
) -> None:
    present = [(labels, counts) for labels, counts in sorted(series.items()) if any(counts[:-1])]
    if not present:
        return
    out.append(f"# HELP {name} {text}\n# TYPE {name} histogram\n")
    bounds = [_number(float(b)) for b in buckets] + ["+Inf"]
    for labels, counts in present:
        running = 0.0
        for bound, count in zip(bounds, counts, strict=False):
            running += count
            out.append(f"{name}_bucket{_labels((*labels, ('le', bound)))} {_number(running)}\n")
        out.append(f"{name}_sum{_labels(labels)} {_number(counts[-1])}\n")
        out.append(f"{name}_count{_labels(labels)} {_number(running)}\n")


def _labels(labels: Labels) -> str:
    shown = [f'{k}="{_escape(v)}"' for k, v in labels if v]
    return "{" + ",".join(shown) + "}" if shown else ""


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _number(value: float) -> str:
    if isinstance(value, int) or (isinstance(value, float) and value.is_integer()):
        return str(int(value))
    return repr(value)
