"""The access log: one JSON line per request (``server.access_log: true``).

Written when the request is over, with what the corridor recorded: status,
model, provider, tokens, cost, decisions, guardrail verdicts (types and offsets,
never the values found) and the caller (never a credential).
"""

from __future__ import annotations

import logging

from gatewise.core.context import Attempt, GuardrailVerdict, RequestContext
from gatewise.corridor.observer import Observer

log = logging.getLogger("gatewise")


class AccessLog(Observer):
    def finished(self, ctx: RequestContext) -> None:
        usage = ctx.usage
        principal = ctx.principal
        log.info(
            "%s %s %s %.1fms",
            ctx.method,
            ctx.path,
            ctx.status,
            ctx.elapsed_ms(),
            extra={
                "request_id": ctx.request_id,
                "trace_id": ctx.trace_id,
                "model": ctx.model or None,
                "provider": ctx.provider,
                "status": ctx.status,
                "stream": ctx.stream,
                "prompt_tokens": usage.prompt_tokens if usage else None,
                "completion_tokens": usage.completion_tokens if usage else None,
                "usage_estimated": ctx.usage_estimated or None,
                "cost_micros": ctx.cost_micros,
                "decisions": ctx.decisions or None,
                "attempts": [_attempt(a) for a in ctx.attempts] or None,
                "guardrail_profile": ctx.guardrail_profile,
                "guardrails": [_verdict(v) for v in ctx.guardrails] or None,
                "caller": principal.name if principal else None,
                "tenant_id": principal.tenant_id if principal else None,
            },
        )


def _attempt(attempt: Attempt) -> dict[str, object]:
    return {
        "deployment": attempt.deployment or None,
        "provider": attempt.provider,
        "model": attempt.model,
        "status": attempt.status,
        "error": attempt.error,
        "first_byte_ms": round(attempt.first_byte_ms, 1),
        "duration_ms": round(attempt.duration_ms, 1),
    }


def _verdict(verdict: GuardrailVerdict) -> dict[str, object]:
    return {
        "guardrail": verdict.guardrail,
        "category": verdict.category,
        "score": verdict.score,
        "action": verdict.action,
        "direction": verdict.direction,
        "index": verdict.index,
        "spans": [list(span) for span in verdict.spans],
    }
