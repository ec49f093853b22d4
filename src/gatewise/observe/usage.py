"""Usage records: one per model call, handed to the background writer when the request ends.

Built from the request's context once its status is final (streams included)
and submitted without waiting: the writer batches records into the records
store. Calls refused before authentication have no caller and are not
recorded here (the access log has them).
"""

from __future__ import annotations

import time

from gatewise.core.context import RequestContext
from gatewise.corridor.observer import Observer
from gatewise.store.usage import UsageRecord
from gatewise.store.usage_writer import UsageWriter

#: Operations that are model calls (count_tokens, listing models ... are not).
MODEL_CALLS = frozenset({"chat", "embeddings", "responses"})


class UsageRecords(Observer):
    def __init__(self, writer: UsageWriter) -> None:
        self.writer = writer

    def finished(self, ctx: RequestContext) -> None:
        principal = ctx.principal
        if principal is None or ctx.operation not in MODEL_CALLS or not ctx.model:
            return
        usage = ctx.usage
        prompt = completion = cached = 0
        if usage is not None:
            prompt, completion = usage.prompt_tokens, usage.completion_tokens
            details = usage.prompt_tokens_details
            if details:
                found = details.get("cached_tokens")
                cached = found if isinstance(found, int) else 0
        # No upstream was called (refused, invalid): it cost nothing.
        cost = ctx.cost_micros if ctx.attempts else (ctx.cost_micros or 0)
        self.writer.submit(
            UsageRecord(  # positional: this runs for every call (field order in UsageRecord)
                ctx.request_id,
                time.time(),
                ctx.model,
                ctx.operation,
                ctx.status,
                principal.tenant_id,
                principal.team_id,
                principal.app_id,
                principal.user_id,
                principal.key_id,
                ctx.provider,
                ctx.stream,
                prompt,
                completion,
                cached,
                cost,
                ctx.usage_estimated,
                ctx.elapsed_ms(),
            )
        )
