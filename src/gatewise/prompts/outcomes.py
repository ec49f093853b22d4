"""Per-version outcome counts of prompt calls: how a canary is doing against its base.

An observer counts every finished prompt call by (prompt, version): successes,
output-schema failures, guardrail blocks, other errors, latency and cost. Counting
is a few list additions on the event loop; requests that are not prompt calls cost
one attribute read. The counts are this worker's since it started (a reload keeps
them: the counter belongs to the worker's services, not to a generation).
"""

from __future__ import annotations

from dataclasses import dataclass

from gatewise.core.context import RequestContext
from gatewise.corridor.observer import Observer
from gatewise.prompts.run import REPAIRED, SCHEMA_FAILED


@dataclass(slots=True)
class Outcome:
    requests: int = 0
    success: int = 0
    schema_failures: int = 0
    repairs: int = 0
    guardrail_blocks: int = 0
    errors: int = 0
    latency_ms_total: float = 0.0
    cost_micros: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0

    def report(self) -> dict[str, float | int]:
        mean = self.latency_ms_total / self.requests if self.requests else 0.0
        return {
            "requests": self.requests,
            "success": self.success,
            "schema_failures": self.schema_failures,
            "repairs": self.repairs,
            "guardrail_blocks": self.guardrail_blocks,
            "errors": self.errors,
            "mean_latency_ms": round(mean, 3),
            "cost_usd": self.cost_micros / 1_000_000,
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": self.completion_tokens,
        }


class PromptOutcomes(Observer):
    """The counts, by prompt name and version."""

    __slots__ = ("counts",)

    def __init__(self) -> None:
        self.counts: dict[tuple[str, int], Outcome] = {}

    def of(self, name: str, version: int) -> Outcome:
        return self.counts.get((name, version)) or Outcome()

    def finished(self, ctx: RequestContext) -> None:
        name = ctx.prompt
        if name is None:
            return
        key = (name, ctx.prompt_version or 0)
        outcome = self.counts.get(key)
        if outcome is None:
            outcome = self.counts[key] = Outcome()
        outcome.requests += 1
        outcome.latency_ms_total += ctx.elapsed_ms()
        if ctx.cost_micros:
            outcome.cost_micros += ctx.cost_micros
        usage = ctx.usage
        if usage is not None:
            outcome.prompt_tokens += usage.prompt_tokens
            outcome.completion_tokens += usage.completion_tokens
        decisions = ctx.decisions
        if REPAIRED in decisions:
            outcome.repairs += 1
        if ctx.status < 400:
            outcome.success += 1
        elif SCHEMA_FAILED in decisions:
            outcome.schema_failures += 1
        elif ctx.error_type == "guardrail_violation":
            outcome.guardrail_blocks += 1
        else:
            outcome.errors += 1
