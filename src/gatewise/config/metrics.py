"""Prometheus metrics (`/metrics`): the ``observability.metrics`` config section.

Every label value comes from a bounded set, so no caller can grow the number of
series: models and providers from this config (anything else is ``other``),
status codes from ``status_codes`` (any other code becomes its class, ``4xx``),
tenants only when listed here (no tenant label at all by default).
"""

from __future__ import annotations

from pydantic import Field, field_validator

from gatewise.config.base import Name, Strict
from gatewise.config.providers import SecretRef

#: Codes that keep their own ``status`` label value; every other code becomes its class.
DEFAULT_STATUS_CODES = (200, 400, 401, 403, 404, 408, 413, 422, 429, 499, 500, 502, 503, 504)


class MetricsLabels(Strict):
    """Which label values the metrics may take (everything else is ``other``)."""

    status_codes: list[int] = Field(
        default_factory=lambda: list(DEFAULT_STATUS_CODES),
        max_length=64,
        description="HTTP codes shown as themselves; any other code is shown as its class (4xx).",
    )
    tenants: list[Name] = Field(
        default_factory=list,
        max_length=100,
        description=(
            "Tenant ids given a `tenant` label on request metrics (others: `other`). "
            "Empty (the default): request metrics have no tenant label."
        ),
    )
    max_values: int = Field(
        50,
        ge=1,
        le=1000,
        description=(
            "For labels the config cannot list (guardrail categories, upstream error codes): "
            "the first this many values seen by a worker keep their name, later ones are `other`."
        ),
    )

    @field_validator("status_codes")
    @classmethod
    def _codes(cls, codes: list[int]) -> list[int]:
        for code in codes:
            if not 100 <= code <= 599:
                raise ValueError(f"status code {code} is not an HTTP status (100-599)")
        return codes


class MetricsConfig(Strict):
    """The Prometheus endpoint, counted across every worker of the server."""

    enabled: bool = Field(True, description="Serve Prometheus metrics.")
    path: str = Field(
        "/metrics",
        pattern=r"^/[A-Za-z0-9._~/\-]*$",
        max_length=200,
        description="Where Prometheus scrapes (outside /v1/ and /admin/).",
    )
    token: SecretRef | None = Field(
        None,
        description=(
            "A bearer token scrapers must send, e.g. ${env:GATEWISE_METRICS_TOKEN}; "
            "default: anyone who can reach the port may scrape."
        ),
    )
    share_interval_s: float = Field(
        1.0,
        gt=0,
        le=60,
        description=(
            "How often each worker shares its counts with the others (a scrape answered by "
            "any worker sees every worker's counts as of at most this long ago)."
        ),
    )
    labels: MetricsLabels = MetricsLabels()

    @field_validator("path")
    @classmethod
    def _path(cls, path: str) -> str:
        reserved = ("/v1/", "/v2/", "/admin/")
        taken = ("/", "/healthz", "/readyz", "/messages", "/messages/count_tokens")
        if path in taken or path.startswith(reserved):
            raise ValueError(f"path {path!r} is taken by the gateway; use e.g. /metrics")
        return path
