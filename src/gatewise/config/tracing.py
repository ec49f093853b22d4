"""OpenTelemetry traces: the ``observability.tracing`` config section.

Off by default. On, every request becomes a SERVER span with a CLIENT span per upstream
attempt and an ``apply_guardrail`` span per guardrail verdict, exported over OTLP/HTTP
(or printed, for a look at them). It needs the ``otel`` extra (``pip install
'gatewise[otel]'``): a config that turns tracing on without it is refused when it is
loaded, naming the extra. Exporter headers (an OTLP vendor's API key) are secret
references, never literal values. Prompts and completions never go into spans.
"""

from __future__ import annotations

import re
from typing import Annotated, Literal
from urllib.parse import urlsplit

from pydantic import AfterValidator, Field, model_validator

from gatewise.config.base import Strict
from gatewise.config.secrets import WHOLE_REFERENCE

__all__ = ["OTEL_EXTRA_MISSING", "TracingConfig", "otel_missing"]

OTEL_EXTRA_MISSING = (
    "observability.tracing.enabled needs the OpenTelemetry SDK and its OTLP exporter, "
    "which come with the 'otel' extra: pip install 'gatewise[otel]'"
)

_HEADER_NAME = re.compile(r"^[A-Za-z0-9!#$%&'*+.^_`|~-]{1,128}$")


def otel_missing(exporter: str) -> bool:
    """Whether the packages ``exporter`` needs (the ``otel`` extra) are not installed."""
    try:
        import opentelemetry.sdk.trace

        if exporter == "otlp":
            import opentelemetry.exporter.otlp.proto.http.trace_exporter  # noqa: F401
    except ImportError:
        return True
    return False


def _check_endpoint(value: str) -> str:
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError("the OTLP endpoint must be an http:// or https:// URL with a host")
    if parts.username is not None or parts.password is not None:
        raise ValueError(
            "the OTLP endpoint must not embed credentials; put them in headers as "
            "${env:NAME} references"
        )
    return value


def _check_headers(value: dict[str, str]) -> dict[str, str]:
    for name, reference in value.items():
        if not _HEADER_NAME.match(name):
            raise ValueError(f"{name!r} is not a valid HTTP header name")
        if WHOLE_REFERENCE.match(reference) is None:
            raise ValueError(
                f"the value of header {name!r} must be a secret reference such as "
                "${env:OTLP_TOKEN} or ${file:/run/secrets/otlp}, never a literal value"
            )
    return value


class TracingConfig(Strict):
    enabled: bool = Field(False, description="Export a trace of every (sampled) request.")
    exporter: Literal["otlp", "console", "none"] = Field(
        "otlp",
        description=(
            "otlp: OTLP/HTTP (protobuf) to endpoint; console: spans printed to stdout as JSON; "
            "none: trace ids and traceparent propagation only, nothing exported."
        ),
    )
    endpoint: Annotated[str, AfterValidator(_check_endpoint)] | None = Field(
        None,
        description=(
            "The OTLP/HTTP collector, e.g. http://127.0.0.1:4318 (/v1/traces is appended "
            "unless the URL already ends with it). Default: OTEL_EXPORTER_OTLP_TRACES_ENDPOINT "
            "or OTEL_EXPORTER_OTLP_ENDPOINT, else http://localhost:4318."
        ),
    )
    headers: Annotated[dict[str, str], AfterValidator(_check_headers)] = Field(
        default_factory=dict,
        description="Headers sent to the collector; each value a ${env:X} / ${file:Y} reference.",
    )
    timeout_s: float = Field(10.0, gt=0, le=120, description="Per export request.")
    service_name: str = Field("gatewise", min_length=1, max_length=256)
    sample_ratio: float = Field(
        1.0,
        ge=0.0,
        le=1.0,
        description=(
            "Share of new traces sampled (by trace id, as OpenTelemetry's TraceIdRatioBased); "
            "a caller's traceparent decides for its own trace."
        ),
    )
    capture_content: Literal[False] = Field(
        False,
        description="Prompts and completions never go into spans (only false is accepted).",
    )

    @model_validator(mode="after")
    def _needs_the_extra(self) -> TracingConfig:
        if self.enabled and self.exporter != "none" and otel_missing(self.exporter):
            raise ValueError(OTEL_EXTRA_MISSING)
        return self

    def traces_url(self) -> str | None:
        """The full OTLP/HTTP traces URL (None: the exporter's environment default)."""
        if self.endpoint is None:
            return None
        url = self.endpoint.rstrip("/")
        return url if url.endswith("/v1/traces") else url + "/v1/traces"
