"""Usage in the corridor: the upstream's figures, or an estimate marked as such."""

from __future__ import annotations

from gatewise.core.context import RequestContext
from gatewise.core.types import ChatRequest, Message, Usage
from gatewise.corridor.chain import Corridor
from tests.corridor_doubles import ScriptedProvider, catalog

REQUEST = ChatRequest(
    model="m", messages=[Message(role="user", content="How many tokens is this?")]
)
REPORTED = Usage(prompt_tokens=11, completion_tokens=4, total_tokens=15)


def corridor(usage: Usage | None) -> Corridor:
    return Corridor(catalog(ScriptedProvider("p", usage=usage)))


async def test_reported_usage_is_kept() -> None:
    ctx = RequestContext(request_id="r")
    chain = corridor(REPORTED)
    await chain.chat(chain.open(ctx, None, REQUEST))
    assert ctx.usage == REPORTED and not ctx.usage_estimated
    ctx = RequestContext(request_id="r")
    stream = await chain.chat_stream(chain.open(ctx, None, REQUEST))
    batches = [batch async for batch in stream]
    assert len(batches) == 4 and ctx.usage == REPORTED and not ctx.usage_estimated


async def test_missing_usage_is_estimated_and_marked() -> None:
    ctx = RequestContext(request_id="r")
    chain = corridor(None)
    await chain.chat(chain.open(ctx, None, REQUEST))
    assert ctx.usage_estimated and ctx.usage is not None
    assert ctx.usage.prompt_tokens > 5 and ctx.usage.completion_tokens >= 3
    streamed = RequestContext(request_id="r")
    stream = await chain.chat_stream(chain.open(streamed, None, REQUEST))
    [batch async for batch in stream]
    assert streamed.usage_estimated and streamed.usage is not None
    assert streamed.usage.completion_tokens == ctx.usage.completion_tokens  # same text
