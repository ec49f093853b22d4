"""The ``Step``: one room of the corridor, with a hook for each phase of a call.

A step overrides the hooks it needs; the chain calls only overridden hooks (a
step costs nothing in a phase it does not act in). In the order the chain lists
the steps:

- ``before``: before any upstream is called. Decide: raise a ``GatewayError`` to
  refuse, or return a complete reply to answer without calling (a cache hit, a
  canned block). Must not change the request.
- ``rewrite_request``: change the request by replacing ``call.request`` (never
  by changing it in place): mask PII, add a system prompt. A call whose request
  a step replaced never sends the client's original body upstream.
- ``before_attempt``: before each upstream attempt, with the deployment about
  to be called (admission re-prices a failover to a dearer deployment).

Then, in reverse order, on the way back:

- ``after``: inspect or replace a complete reply.
- ``on_chunks`` / ``on_stream_end``: see each batch of stream chunks as it
  passes (return what goes on: the same chunks, changed ones, or fewer to hold
  some back) and add held-back chunks at the end; raise to end the stream with
  an error event.
- ``finish``: the call is over (replied, failed, refused or cut), exactly once,
  also for a stream the client abandoned: settle, release, record. It may return
  an awaitable that the reply's last bytes wait for (admission: a freed
  concurrency slot must reach a shared store before the caller can call again);
  it must not fail.

A step that overrides ``after``, ``on_chunks`` or ``on_stream_end`` may change
output, so its chain relays the upstream's raw bytes only for a call it says it
will not watch (``watches``, asked once the request passed every step): that
follows from what the step is, not from a call someone must remember.

State a step keeps about one call goes in ``call.notes[self]``.
"""

from __future__ import annotations

from collections.abc import Awaitable
from typing import TYPE_CHECKING

from gatewise.core.types import ChatChunk, ChatResponse, EmbeddingResponse

if TYPE_CHECKING:
    from gatewise.corridor.call import Call
    from gatewise.routing.catalog import Target

#: A complete answer to a call.
Reply = ChatResponse | EmbeddingResponse

#: Hooks whose presence means a step may change what the client receives.
OUTPUT_HOOKS = ("after", "on_chunks", "on_stream_end")
#: Hooks whose presence means a step may change what the upstream receives.
REQUEST_HOOKS = ("rewrite_request",)


class Step:
    """Base class of the corridor's steps: every hook does nothing until overridden."""

    #: A short name for decisions, logs and errors.
    name: str = "step"

    async def before(self, call: Call) -> Reply | None:
        return None

    async def rewrite_request(self, call: Call) -> None:
        return None

    async def before_attempt(self, call: Call, target: Target) -> None:
        return None

    async def after(self, call: Call, reply: Reply) -> Reply:
        return reply

    async def on_chunks(self, call: Call, chunks: list[ChatChunk]) -> list[ChatChunk]:
        return chunks

    async def on_stream_end(self, call: Call) -> list[ChatChunk]:
        return []

    def finish(self, call: Call) -> Awaitable[None] | None:
        return None

    def watches(self, call: Call) -> bool:
        """Whether this step's output hooks will read this call's reply (asked once the
        request passed every step, only of steps that override an output hook). A step
        that says no for a call lets the upstream's own bytes through for it."""
        return True


def overrides(step: Step, hook: str) -> bool:
    """Whether ``step``'s class defines its own ``hook`` (not the base class's no-op)."""
    return getattr(type(step), hook) is not getattr(Step, hook)


def may_change_output(step: Step) -> bool:
    return any(overrides(step, hook) for hook in OUTPUT_HOOKS)


def may_change_request(step: Step) -> bool:
    return any(overrides(step, hook) for hook in REQUEST_HOOKS)
