"""Request records: one per request, handed to the background writer when the request ends.

Two halves. On the hot path, ``RequestRecords.finished`` builds a raw record: a
tuple of references to what the context already holds (its attempts, verdicts
and decisions lists, its usage, the user-agent header's bytes), no copy, no
encoding: ~1 µs. Off it, in the writer's thread, ``prepare`` turns raw records
into rows: token counts out of the usage, deployment and provider from the
last attempt, time to first byte and the gateway's overhead from the attempts'
timings, JSON for the lists, strings cut to their columns, and bodies redacted
(personal data and secrets replaced by ``[TYPE]``) for tenants whose privacy
mode is ``redacted``.

Guardrail verdicts carry no text (``GuardrailVerdict``: rule, category, score,
action, offsets), so records never hold the values a guardrail found; keys
appear by id only.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

import orjson

from gatewise.core.context import Attempt, GuardrailVerdict, RequestContext
from gatewise.core.types import Usage
from gatewise.corridor.observer import Observer
from gatewise.store.records import COLUMNS
from gatewise.store.records_writer import RecordsWriter

#: The longest body a record keeps, in characters (the rest is cut, and says so).
MAX_BODY = 100_000
_TRUNCATED = "…[truncated]"
_SIZES = {
    column: size
    for column, size in (
        ("id", 64),
        ("trace_id", 32),
        ("front_door", 16),
        ("operation", 32),
        ("method", 8),
        ("path", 256),
        ("model", 256),
        ("deployment", 128),
        ("provider", 64),
        ("error_type", 64),
        ("cache", 16),
        ("client_ip", 64),
        ("user_agent", 512),
    )
}
_CUTS = tuple((COLUMNS.index(name), size) for name, size in _SIZES.items())
# ``_row`` reads raw records by position: the table's columns must be where it expects.
assert COLUMNS[13:15] == ("deployment", "provider") and COLUMNS[18:24] == (
    "duration_ms",
    "first_byte_ms",
    "overhead_ms",
    "prompt_tokens",
    "completion_tokens",
    "cached_tokens",
), COLUMNS
assert COLUMNS[27:35] == (
    "attempts",
    "guardrails",
    "decisions",
    "client_ip",
    "user_agent",
    "privacy",
    "request_body",
    "response_body",
), COLUMNS


class RequestRecords(Observer):
    """Submits one raw record per finished request (not health probes nor scrapes:
    requests of no operation that succeeded)."""

    def __init__(self, writer: RecordsWriter) -> None:
        self.writer = writer

    def finished(self, ctx: RequestContext) -> None:
        if not ctx.operation and ctx.status < 400:
            return
        principal = ctx.principal
        duration = ctx.elapsed_ms()
        front_door = "responses" if ctx.operation == "responses" else ctx.wire
        self.writer.submit(
            (  # positional, in ``COLUMNS`` order (see ``prepare``)
                ctx.request_id,
                time.time() - duration / 1000.0,
                ctx,  # trace_id: read off the hot path, once the other observers ran
                None if principal is None else principal.tenant_id,
                None if principal is None else principal.team_id,
                None if principal is None else principal.app_id,
                None if principal is None else principal.user_id,
                None if principal is None else principal.key_id,
                front_door,
                ctx.operation,
                ctx.method,
                ctx.path,
                ctx.model or None,
                ctx.deployment,
                None,  # provider: from the attempts
                ctx.stream,
                ctx.status,
                ctx.error_type,
                duration,
                None,  # first_byte_ms, overhead_ms: from the attempts
                None,
                ctx.usage,  # prompt, completion and cached tokens: from the usage
                0,
                0,
                ctx.usage_estimated,
                ctx.cost_micros,
                ctx.cache,
                ctx.attempts,
                ctx.guardrails,
                ctx.decisions,
                ctx.client_ip,
                ctx.headers.get(b"user-agent"),
                ctx.privacy or "off",
                ctx.request_text,
                ctx.reply_text,
            )
        )


# --- off the hot path: raw records into rows --------------------------------------------------


def prepare(records: Sequence[Any]) -> list[tuple[Any, ...]]:
    """Rows for the repository (``COLUMNS`` order) from raw records (see the module doc)."""
    return [_row(record) for record in records]


def _row(raw: tuple[Any, ...]) -> tuple[Any, ...]:
    row = list(raw)
    ctx: RequestContext = raw[2]
    # Read here, after every observer ran: the caller's, the spans' or the log line's id,
    # else one made now (off the event loop: making it there cost ~1.5 µs a request).
    row[2] = ctx.trace_id
    attempts: list[Attempt] = raw[27]
    duration: float = raw[18]
    if attempts:
        last = attempts[-1]
        row[13] = raw[13] or last.deployment or None
        row[14] = last.provider
        # Until the last attempt began, plus its wait for the first byte.
        row[19] = max(0.0, duration - last.duration_ms) + last.first_byte_ms
        row[20] = max(0.0, duration - sum(a.duration_ms for a in attempts))
        row[27] = orjson.dumps([_attempt(a) for a in attempts]).decode()
    else:
        row[27] = None
    usage: Usage | None = raw[21]
    if usage is None:
        row[21] = row[22] = row[23] = 0
    else:
        row[21], row[22] = usage.prompt_tokens, usage.completion_tokens
        details = usage.prompt_tokens_details
        cached = details.get("cached_tokens") if details else None
        row[23] = cached if isinstance(cached, int) else 0
    verdicts: list[GuardrailVerdict] = raw[28]
    row[28] = orjson.dumps([_verdict(v) for v in verdicts]).decode() if verdicts else None
    decisions: list[str] = raw[29]
    row[29] = orjson.dumps(decisions).decode() if decisions else None
    agent = raw[31]
    row[31] = agent.decode("latin-1") if agent is not None else None
    for index, size in _CUTS:
        value = row[index]
        if isinstance(value, str) and (len(value) > size or "\x00" in value):
            row[index] = value.replace("\x00", "")[:size]
    privacy = raw[32]
    for index in (33, 34):
        text = raw[index]
        if text is None or privacy == "off":
            row[index] = None
            continue
        if len(text) > MAX_BODY:
            text = text[:MAX_BODY] + _TRUNCATED
        if privacy == "redacted":
            text = redact(text)
        row[index] = text.replace("\x00", "")
    return tuple(row)


def _attempt(attempt: Attempt) -> dict[str, Any]:
    return {
        "provider": attempt.provider,
        "model": attempt.model,
        "deployment": attempt.deployment or None,
        "status": attempt.status,
        "error": attempt.error,
        "first_byte_ms": round(attempt.first_byte_ms, 3),
        "duration_ms": round(attempt.duration_ms, 3),
    }


def _verdict(verdict: GuardrailVerdict) -> dict[str, Any]:
    return {
        "guardrail": verdict.guardrail,
        "category": verdict.category,
        "score": verdict.score,
        "action": verdict.action,
        "direction": verdict.direction,
        "index": verdict.index,
        "spans": [[start, end, kind] for start, end, kind in verdict.spans],
    }


# --- redaction ----------------------------------------------------------------------------------

_detectors: tuple[Any, Any] | None = None


def redact(text: str) -> str:
    """``text`` with personal data and secrets replaced by ``[TYPE]`` (the guardrails'
    detectors; secrets win where both claim a span)."""
    global _detectors
    if _detectors is None:
        from gatewise.guardrails.pii.detector import PiiDetector
        from gatewise.guardrails.secrets.detector import SecretsDetector

        _detectors = (SecretsDetector(), PiiDetector())
    taken: list[tuple[int, int, str]] = []
    for detector in _detectors:
        for match in detector.matches(text):
            if all(match.end <= start or match.start >= end for start, end, _ in taken):
                taken.append((match.start, match.end, match.type))
    if not taken:
        return text
    taken.sort()
    parts: list[str] = []
    position = 0
    for start, end, kind in taken:
        parts.append(text[position:start])
        parts.append(f"[{kind}]")
        position = end
    parts.append(text[position:])
    return "".join(parts)
