"""Label values for metrics, each from a bounded set: no caller can grow the series count.

Models and providers come from the config (a name the config does not know is
``other``), status codes from ``metrics.labels.status_codes`` (any other code is
its class, ``4xx``), front doors and operations from fixed sets, tenants only when
``metrics.labels.tenants`` lists them. Labels the config cannot list (guardrail
categories, upstream error codes, limit names) keep the first ``max_values`` values a
worker sees; later ones are ``other``.
"""

from __future__ import annotations

from collections.abc import Iterable

from gatewise.config.metrics import MetricsLabels

OTHER = "other"
#: The label value where there is nothing to name (no model asked, no upstream called).
NONE = "none"

#: Exact paths of the front doors (the rest are told by their prefix in ``front_door``).
DOORS = {
    "/v1/chat/completions": "openai",
    "/v1/embeddings": "openai",
    "/v1/models": "openai",
    "/v1/responses": "responses",
    "/v1/messages": "anthropic",
    "/messages": "anthropic",
    "/v1/v1/messages": "anthropic",
    "/v1/guardrails/check": "guardrails",
}

#: ``RequestContext.operation`` values (set by the front doors; "" before one ran).
OPERATIONS = (
    "chat",
    "embeddings",
    "responses",
    "models",
    "count_tokens",
    "guardrails.check",
    "prompt",  # a prompt endpoint's call (http/prompts.py)
    "prompts",  # its listings and OpenAPI document
)
#: The OpenTelemetry GenAI ``gen_ai.operation.name`` of each model call.
GENAI_OPERATIONS = {
    "chat": "chat",
    "responses": "chat",
    "embeddings": "embeddings",
    "prompt": "chat",
}


def front_door(path: str) -> str:
    """The front door of a path no exact entry of ``DOORS`` names."""
    if path.startswith("/v1/responses/"):
        return "responses"
    if path.startswith("/v1/models/"):
        return "openai"
    if path.endswith("/messages/count_tokens"):
        return "anthropic"
    if path.startswith(("/api/", "/v1/prompts")):
        return "prompts"
    return OTHER


class Bounded:
    """The first ``limit`` distinct values keep their name; later ones are ``other``."""

    __slots__ = ("_limit", "_seen")

    def __init__(self, limit: int) -> None:
        self._limit = limit
        self._seen: dict[str, str] = {}

    def __call__(self, value: str) -> str:
        found = self._seen.get(value)
        if found is not None:
            return found
        if len(self._seen) >= self._limit:
            return OTHER
        self._seen[value] = value
        return value


class LabelSets:
    """The bounded label values of one config generation (see the module doc)."""

    __slots__ = (
        "categories",
        "errors",
        "guardrails",
        "limits",
        "models",
        "operations",
        "provider_types",
        "providers",
        "statuses",
        "tenants",
    )

    def __init__(
        self,
        settings: MetricsLabels,
        models: Iterable[str],
        providers: dict[str, str],
    ) -> None:
        #: Requested model -> label (a dict lookup per request; "" is no model).
        self.models = {name: name for name in models}
        self.models[""] = NONE
        #: Provider name -> label, and provider name -> its type (gen_ai.provider.name).
        self.providers = {name: name for name in providers}
        self.provider_types = dict(providers)
        codes = set(settings.status_codes)
        #: Status code -> label, for every code a response can carry (index by code).
        self.statuses = [str(c) if c in codes else f"{c // 100}xx" for c in range(600)]
        self.operations = {name: name for name in OPERATIONS}
        self.operations[""] = NONE
        #: Tenant id -> label; None: no tenant label.
        self.tenants = {t: t for t in settings.tenants} if settings.tenants else None
        limit = settings.max_values
        self.guardrails = Bounded(limit)
        self.categories = Bounded(limit)
        self.errors = Bounded(limit)
        self.limits = Bounded(limit)

    def status(self, code: int) -> str:
        return self.statuses[code] if 0 <= code < 600 else OTHER
