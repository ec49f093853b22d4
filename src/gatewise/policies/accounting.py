"""Accounting: one usage record per model call, handed to the background writer.

Built from the request context when the response is over (streams included)
and submitted without waiting: the writer batches records into the records
store. Calls refused before authentication have no caller and are not
recorded here (the access log has them).
"""

from __future__ import annotations

import time

from gatewise.core.context import RequestContext
from gatewise.store.usage import UsageRecord, UsageWriter

#: Operations that are model calls (count_tokens, listing models ... are not).
MODEL_CALLS = frozenset({"chat", "embeddings", "responses"})


class Accounting:
    def __init__(self, writer: UsageWriter, *, enabled: bool = True) -> None:
        self.writer = writer
        self.enabled = enabled

    def record(self, ctx: RequestContext) -> None:
        principal = ctx.principal
        if (
            not self.enabled
            or principal is None
            or ctx.operation not in MODEL_CALLS
            or not ctx.model
        ):
            return
        usage = ctx.usage
        details = (usage.prompt_tokens_details or {}) if usage is not None else {}
        cached = details.get("cached_tokens")
        self.writer.submit(
            UsageRecord(
                request_id=ctx.request_id,
                at=time.time(),
                model=ctx.model,
                operation=ctx.operation,
                status=ctx.status,
                tenant_id=principal.tenant_id,
                team_id=principal.team_id,
                app_id=principal.app_id,
                user_id=principal.user_id,
                key_id=principal.key_id,
                provider=ctx.provider,
                stream=ctx.stream,
                prompt_tokens=usage.prompt_tokens if usage is not None else 0,
                completion_tokens=usage.completion_tokens if usage is not None else 0,
                cached_tokens=cached if isinstance(cached, int) else 0,
                # No upstream was called (refused, invalid): it cost nothing.
                cost_micros=ctx.cost_micros if ctx.attempts else (ctx.cost_micros or 0),
                usage_estimated=ctx.usage_estimated,
                duration_ms=ctx.elapsed_ms(),
            )
        )
