"""The ``observability.tracing`` and ``observability.logs`` sections: exact refusals, and the
older ``server.access_log`` / ``server.log_level`` switches kept working."""

from __future__ import annotations

import io
import logging
import sys
from typing import Any

import orjson
import pytest
from pydantic import ValidationError

from gatewise.config.models import Config
from gatewise.config.tracing import OTEL_EXTRA_MISSING, TracingConfig
from gatewise.core.context import RequestContext
from gatewise.observe.access_log import AccessLog
from gatewise.telemetry.logging import JSONFormatter, TextFormatter


def tracing(**fields: Any) -> TracingConfig:
    return Config.model_validate({"observability": {"tracing": fields}}).observability.tracing


def refusal(**fields: Any) -> str:
    with pytest.raises(ValidationError) as caught:
        tracing(**fields)
    return str(caught.value)


def test_tracing_is_off_by_default_and_its_defaults_are_safe() -> None:
    config = tracing()
    assert not config.enabled and config.exporter == "otlp" and config.sample_ratio == 1.0
    assert config.capture_content is False and config.traces_url() is None


def test_the_endpoint_gets_the_traces_path_once() -> None:
    assert tracing(endpoint="http://c:4318").traces_url() == "http://c:4318/v1/traces"
    assert tracing(endpoint="http://c:4318/").traces_url() == "http://c:4318/v1/traces"
    assert tracing(endpoint="https://c/v1/traces").traces_url() == "https://c/v1/traces"


def test_bad_tracing_settings_are_refused_precisely() -> None:
    assert "must be a secret reference" in refusal(headers={"authorization": "Bearer abc"})
    assert "not a valid HTTP header name" in refusal(headers={"bad name": "${env:X}"})
    assert "must not embed credentials" in refusal(endpoint="http://u:p@collector:4318")
    assert "http:// or https://" in refusal(endpoint="grpc://collector:4317")
    assert "capture_content" in refusal(capture_content=True)
    assert "sample_ratio" in refusal(sample_ratio=1.5)
    assert "exporter" in refusal(exporter="jaeger")
    assert tracing(headers={"authorization": "${env:OTLP_AUTH}"}).headers  # a reference is fine


def test_tracing_without_the_otel_extra_is_refused_naming_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # As if the extra were not installed: importing the SDK fails.
    monkeypatch.setitem(sys.modules, "opentelemetry.sdk.trace", None)
    message = refusal(enabled=True)
    assert OTEL_EXTRA_MISSING in message and "gatewise[otel]" in message
    assert not tracing(enabled=False).enabled  # off: nothing needed
    assert tracing(enabled=True, exporter="none").enabled  # ids and propagation only


def test_logs_follow_the_older_server_switches_unless_set() -> None:
    old = Config.model_validate({"server": {"access_log": True, "log_level": "warning"}})
    logs = old.observability.logs
    assert logs.request_lines(old.server.access_log) is True
    assert logs.level_or(old.server.log_level) == "warning" and logs.format == "json"
    new = Config.model_validate(
        {
            "server": {"access_log": True},
            "observability": {"logs": {"requests": False, "level": "debug", "format": "text"}},
        }
    )
    assert new.observability.logs.request_lines(True) is False
    assert new.observability.logs.level_or("info") == "debug"
    with pytest.raises(ValidationError, match="format"):
        Config.model_validate({"observability": {"logs": {"format": "xml"}}})


def access_line(formatter: logging.Formatter) -> str:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(formatter)
    logger = logging.getLogger("gatewise")
    logger.addHandler(handler)
    old_level = logger.level
    logger.setLevel(logging.INFO)  # (not ``.level =``: setLevel clears the enabled-for cache)
    try:
        ctx = RequestContext("req_log1", "POST", "/v1/chat/completions", status=200)
        ctx.trace_id = "4bf92f3577b34da6a3ce929d0e0e4736"
        AccessLog().finished(ctx)
    finally:
        logger.removeHandler(handler)
        logger.setLevel(old_level)
    return stream.getvalue().strip()


def test_the_request_line_carries_the_request_and_trace_ids() -> None:
    entry = orjson.loads(access_line(JSONFormatter()))
    assert entry["level"] == "info" and entry["request_id"] == "req_log1"
    assert entry["trace_id"] == "4bf92f3577b34da6a3ce929d0e0e4736"
    assert entry["status"] == 200 and entry["msg"].startswith("POST /v1/chat/completions 200")
    text = access_line(TextFormatter())
    assert " INFO gatewise POST /v1/chat/completions 200 " in text
    assert "request_id=req_log1" in text and "trace_id=4bf92f3577b34da6a3ce929d0e0e4736" in text
