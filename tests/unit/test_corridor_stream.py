"""Streams through the corridor: the tap records usage, runs the watching steps and ends the
call exactly once, however the stream ends."""

from __future__ import annotations

import pytest

from gatewise.core.errors import UpstreamProtocolError
from gatewise.core.types import ChunkBatch
from gatewise.corridor.chain import Corridor
from gatewise.corridor.observer import Observers
from tests.corridor_doubles import (
    USAGE,
    After,
    Before,
    Clock,
    Finishing,
    Journal,
    Recorder,
    ScriptedProvider,
    catalog,
    chat_request,
    context,
    reply,
)


def text_of(batches: list[ChunkBatch]) -> str:
    return "".join(
        choice.delta.content or ""
        for batch in batches
        for chunk in batch.chunks
        for choice in chunk.choices
    )


async def test_a_stream_read_to_its_end_records_usage_and_ends_its_attempt_at_the_end() -> None:
    journal = Journal()
    recorder = Recorder()
    clock = Clock()
    corridor = Corridor(
        catalog(ScriptedProvider("p")),
        [Finishing("a", journal)],
        observers=Observers([recorder]),
        clock=clock,
    )
    ctx = context()
    stream = await corridor.chat_stream(corridor.open(ctx, None, chat_request(stream=True)))
    clock.now += 0.010  # 10 ms pass before the client starts reading
    assert recorder.attempts == [] and journal.entries == ["before:a"]  # still open
    batches = []
    async for batch in stream:
        clock.now += 0.005
        batches.append(batch)
    await stream.aclose()  # the front door always closes; nothing happens twice
    assert text_of(batches) == "four words of reply"
    assert ctx.usage == USAGE and not ctx.usage_estimated
    assert journal.entries == ["before:a", "finish:a"]
    [attempt] = recorder.attempts
    assert attempt.status == 200 and attempt.error is None
    assert attempt.first_byte_ms == 0.0 and attempt.duration_ms == pytest.approx(30.0)


async def test_a_stream_the_client_cut_ends_its_call_once_and_closes_the_upstream() -> None:
    journal = Journal()
    recorder = Recorder()
    corridor = Corridor(
        catalog(ScriptedProvider("p")), [Finishing("a", journal)], observers=Observers([recorder])
    )
    ctx = context()
    stream = await corridor.chat_stream(corridor.open(ctx, None, chat_request(stream=True)))
    async for _batch in stream:
        break  # the client went away after the first batch
    await stream.aclose()
    assert journal.entries == ["before:a", "finish:a"]
    assert [a.error for a in recorder.attempts] == ["cancelled"]
    assert ctx.usage_estimated  # no usage chunk came: the text so far is counted


async def test_a_stream_never_read_still_ends_its_call() -> None:
    journal = Journal()
    corridor = Corridor(catalog(ScriptedProvider("p")), [Finishing("a", journal)])
    stream = await corridor.chat_stream(corridor.open(context(), None, chat_request(stream=True)))
    await stream.aclose()
    assert journal.entries == ["before:a", "finish:a"]


async def test_a_stream_that_fails_midway_raises_records_the_error_and_ends_once() -> None:
    journal = Journal()
    recorder = Recorder()
    provider = ScriptedProvider("p", stream_error=UpstreamProtocolError("cut"))
    corridor = Corridor(
        catalog(provider), [Finishing("a", journal)], observers=Observers([recorder])
    )
    ctx = context()
    stream = await corridor.chat_stream(corridor.open(ctx, None, chat_request(stream=True)))
    seen = []
    with pytest.raises(UpstreamProtocolError):
        async for batch in stream:
            seen.append(batch)
    await stream.aclose()
    assert text_of(seen) == "four "
    assert [a.error for a in recorder.attempts] == ["bad_upstream_response"]
    assert journal.entries == ["before:a", "finish:a"]
    assert ctx.usage_estimated and ctx.usage is not None and ctx.usage.completion_tokens >= 1


async def test_watching_steps_see_every_chunk_and_may_add_some_at_the_end() -> None:
    journal = Journal()
    provider = ScriptedProvider("p", ping=True)  # a batch with nothing canonical is not watched
    corridor = Corridor(catalog(provider), [After("upper", journal)])
    assert not corridor.relay_raw
    stream = await corridor.chat_stream(corridor.open(context(), None, chat_request(stream=True)))
    batches = [batch async for batch in stream]
    assert text_of(batches) == "FOUR WORDS OF REPLY!"
    assert all(batch.raw is None for batch in batches)
    assert journal.entries == [
        "chunks:upper:1",
        "chunks:upper:1",
        "chunks:upper:1",
        "chunks:upper:1",
        "end:upper",
    ]


async def test_a_streamed_call_a_step_answers_is_played_back_as_a_stream() -> None:
    journal = Journal()
    provider = ScriptedProvider("p")
    corridor = Corridor(catalog(provider), [Before("cache", journal, reply("cached answer"))])
    ctx = context()
    stream = await corridor.chat_stream(corridor.open(ctx, None, chat_request(stream=True)))
    batches = [batch async for batch in stream]
    assert provider.calls == [] and text_of(batches) == "cached answer"
    chunks = [chunk for batch in batches for chunk in batch.chunks]
    assert [c.choices[0].finish_reason for c in chunks if c.choices] == [None, "stop"]
    assert chunks[-1].usage == USAGE and ctx.usage == USAGE


async def test_a_replayed_answer_keeps_reasoning_and_the_stop_string() -> None:
    answer = reply("done")
    answer.choices[0].message.reasoning_content = "thought"
    answer.choices[0].message.thinking_blocks = [
        {"type": "thinking", "thinking": "t", "signature": "s"}
    ]
    answer.choices[0].stop_sequence = "END"
    corridor = Corridor(catalog(ScriptedProvider("p")), [Before("cache", Journal(), answer)])
    stream = await corridor.chat_stream(corridor.open(context(), None, chat_request(stream=True)))
    chunks = [chunk for batch in [b async for b in stream] for chunk in batch.chunks]
    first, finish = chunks[0].choices[0], chunks[1].choices[0]
    assert first.delta.reasoning_content == "thought"
    assert first.delta.thinking_blocks == [{"type": "thinking", "thinking": "t", "signature": "s"}]
    assert finish.finish_reason == "stop" and finish.stop_sequence == "END"
