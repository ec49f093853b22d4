"""Response bodies of /admin/v1/requests (pydantic: the OpenAPI docs and the serialisation).

Money leaves as an exact decimal string of dollars, never a float; times are UTC
epoch seconds, durations milliseconds. Guardrail verdicts say which rule fired on
which span, never the text it found.
"""

from __future__ import annotations

from typing import Any, Self

import orjson
from pydantic import BaseModel, Field

from gatewise.admin.schemas import EPOCH
from gatewise.store.usage import usd


class AttemptOut(BaseModel):
    provider: str
    model: str
    deployment: str | None = None
    status: int | None = Field(None, description="The upstream's HTTP status, when it answered")
    error: str | None = Field(None, description="The gateway's error code, when it failed")
    first_byte_ms: float
    duration_ms: float


class VerdictOut(BaseModel):
    guardrail: str
    category: str
    score: float
    action: str
    direction: str = Field(description="`input` or `output`")
    index: int = Field(description="The input message's index (-1: the whole request)")
    spans: list[tuple[int, int, str]] = Field(
        description="(start, end, type) offsets in code points: where, never what"
    )


class RequestRecordOut(BaseModel):
    id: str = Field(description="The request id (`x-request-id`)")
    at: float = Field(description=EPOCH + "; when the request arrived")
    trace_id: str | None
    tenant_id: str | None
    team_id: str | None
    app_id: str | None
    user_id: str | None
    key_id: str | None
    front_door: str = Field(description="`openai`, `anthropic` or `responses`")
    operation: str
    method: str
    path: str
    model: str | None = Field(description="The model the client asked for")
    deployment: str | None = Field(description="The deployment that answered (last attempt)")
    provider: str | None
    stream: bool
    status: int
    error_type: str | None
    duration_ms: float
    first_byte_ms: float | None = Field(description="Time to the upstream's first byte")
    overhead_ms: float | None = Field(description="Time spent in the gateway, not upstream")
    prompt_tokens: int
    completion_tokens: int
    cached_tokens: int
    usage_estimated: bool = Field(description="Token counts are the gateway's estimate")
    cost_usd: str | None = Field(description="Exact, 6 decimals; null: no price known")
    cache: str | None
    attempts: list[AttemptOut]
    guardrails: list[VerdictOut]
    decisions: list[str] = Field(description="Limits, routing, failover, guardrail blocks")
    client_ip: str | None
    user_agent: str | None
    privacy: str = Field(description="The tenant's privacy mode: `off`, `redacted` or `full`")

    @classmethod
    def of(cls, row: dict[str, Any]) -> Self:
        values = dict(row)
        cost = values.pop("cost_micros", None)
        values["cost_usd"] = None if cost is None else usd(int(cost))
        for name in ("attempts", "guardrails", "decisions"):
            value = values.get(name)
            if isinstance(value, str | bytes):  # SQLite may hand JSON back as text
                value = orjson.loads(value)
            values[name] = value or []
        return cls.model_validate(values)


class RequestRecordDetailOut(RequestRecordOut):
    request_body: str | None = Field(
        description="The request's texts (`role: text` per message): none when privacy is "
        "`off`, personal data and secrets replaced when `redacted`"
    )
    response_body: str | None = Field(description="The reply's text, as `request_body`")
