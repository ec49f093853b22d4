"""The corridor: steps in order around dispatch, answers, finish once, raw relay by type."""

from __future__ import annotations

import asyncio

import pytest

from gatewise.core.errors import PermissionDeniedError, UpstreamError
from gatewise.core.types import ChatResponse, NativeBody
from gatewise.corridor.chain import Corridor
from gatewise.corridor.observer import Observers
from gatewise.corridor.step import Step
from tests.corridor_doubles import (
    After,
    AttemptWatcher,
    Before,
    Clock,
    Finishing,
    Journal,
    Recorder,
    Rewriting,
    ScriptedProvider,
    catalog,
    chat_request,
    context,
    reply,
)


async def test_steps_run_in_order_and_back_in_reverse() -> None:
    journal = Journal()
    steps = [Finishing("a", journal), After("b", journal), Finishing("c", journal)]
    corridor = Corridor(catalog(ScriptedProvider("p")), steps)
    response = await corridor.chat(corridor.open(context(), None, chat_request()))
    assert journal.entries == ["before:a", "before:c", "after:b", "finish:c", "finish:a"]
    assert response.choices[0].message.content == "FOUR WORDS OF REPLY"


async def test_a_step_that_answers_skips_dispatch_and_the_steps_after_it() -> None:
    journal = Journal()
    provider = ScriptedProvider("p")
    cached = reply("from the cache")
    steps = [After("outer", journal), Before("cache", journal, cached), After("inner", journal)]
    corridor = Corridor(catalog(provider), steps)
    ctx = context()
    response = await corridor.chat(corridor.open(ctx, None, chat_request()))
    assert provider.calls == [] and ctx.attempts == []
    # Only the step before the answering one sees the answer on its way back.
    assert journal.entries == ["before:cache", "after:outer"]
    assert response.choices[0].message.content == "FROM THE CACHE"
    assert "answered:cache" in ctx.decisions
    assert ctx.usage == cached.usage  # as a streamed answer records it from its chunks


async def test_finish_runs_once_when_a_step_refuses_or_the_upstream_fails() -> None:
    journal = Journal()

    class Refusing(Step):
        async def before(self, call: object) -> None:
            raise PermissionDeniedError("no")

    corridor = Corridor(catalog(ScriptedProvider("p")), [Finishing("a", journal), Refusing()])
    with pytest.raises(PermissionDeniedError):
        await corridor.chat(corridor.open(context(), None, chat_request()))
    assert journal.entries == ["before:a", "finish:a"]

    journal.entries.clear()
    failing = ScriptedProvider("p", [UpstreamError("bad", status=400)])
    corridor = Corridor(catalog(failing), [Finishing("a", journal)])
    with pytest.raises(UpstreamError):
        await corridor.chat(corridor.open(context(), None, chat_request()))
    assert journal.entries == ["before:a", "finish:a"]


async def test_a_failing_finish_does_not_stop_the_others_or_the_reply() -> None:
    journal = Journal()

    class Broken(Step):
        def finish(self, call: object) -> None:
            raise RuntimeError("settlement failed")

    corridor = Corridor(catalog(ScriptedProvider("p")), [Finishing("a", journal), Broken()])
    response = await corridor.chat(corridor.open(context(), None, chat_request()))
    assert response.choices[0].message.content == "four words of reply"
    assert journal.entries == ["before:a", "finish:a"]


def test_raw_relay_and_native_bodies_follow_from_what_the_steps_are() -> None:
    journal = Journal()
    plain = Corridor(catalog(ScriptedProvider("p")), [Finishing("a", journal)])
    assert plain.relay_raw and plain.native_requests
    watching = Corridor(catalog(ScriptedProvider("p")), [After("b", journal)])
    assert not watching.relay_raw and watching.native_requests
    rewriting = Corridor(catalog(ScriptedProvider("p")), [Rewriting()])
    assert rewriting.relay_raw and not rewriting.native_requests
    call = rewriting.open(context(), None, chat_request(), native=NativeBody("openai", {}))
    assert call.native is None  # the client's body can never bypass the rewrite
    assert plain.open(context(), None, chat_request(), native=NativeBody("openai", {})).native


async def test_a_rewriting_step_changes_what_the_upstream_gets() -> None:
    provider = ScriptedProvider("p", wire="openai")
    corridor = Corridor(catalog(provider), [Rewriting()])
    call = corridor.open(context(), None, chat_request(), native=NativeBody("openai", {"x": 1}))
    await corridor.chat(call)
    assert provider.calls == [("p-model", None)]
    assert call.request.messages[-1].content == "added"  # type: ignore[union-attr]


async def test_the_native_body_goes_only_to_a_provider_of_its_wire_format() -> None:
    other = ScriptedProvider("a", [UpstreamError("busy", status=503)], wire="anthropic")
    same = ScriptedProvider("b", wire="openai")
    corridor = Corridor(catalog(other, same))
    native = NativeBody("openai", {"model": "m"})
    await corridor.chat(corridor.open(context(), None, chat_request(), native=native))
    assert other.calls == [("a-model", None)] and same.calls == [("b-model", native)]


async def test_every_attempt_is_timed_recorded_and_observed() -> None:
    clock = Clock(tick=0.25)  # every reading is 250 ms later
    recorder = Recorder()
    journal = Journal()
    first = ScriptedProvider("first", [UpstreamError("busy", status=503)])
    second = ScriptedProvider("second")
    corridor = Corridor(
        catalog(first, second),
        [AttemptWatcher(journal)],
        observers=Observers([recorder]),
        clock=clock,
    )
    ctx = context()
    await corridor.chat(corridor.open(ctx, None, chat_request()))
    assert journal.entries == ["attempt:first-model", "attempt:second-model"]
    assert [(a.provider, a.model, a.status) for a in ctx.attempts] == [
        ("first", "first-model", 503),
        ("second", "second-model", 200),
    ]
    assert ctx.attempts[0].error == "upstream_error" and ctx.attempts[1].error is None
    assert [a.duration_ms for a in ctx.attempts] == [250.0, 250.0]
    assert ctx.attempts[1].first_byte_ms == 250.0
    assert recorder.attempts == ctx.attempts  # told once each, as they ended
    assert ctx.decisions == ["failover:first/first-model:503"]


async def test_a_non_retryable_failure_does_not_fail_over() -> None:
    first = ScriptedProvider("first", [UpstreamError("bad request", status=400)])
    second = ScriptedProvider("second")
    corridor = Corridor(catalog(first, second))
    ctx = context()
    with pytest.raises(UpstreamError):
        await corridor.chat(corridor.open(ctx, None, chat_request()))
    assert second.calls == [] and [a.status for a in ctx.attempts] == [400]


async def test_usage_is_the_upstreams_or_an_estimate_marked_as_such() -> None:
    corridor = Corridor(catalog(ScriptedProvider("p")))
    ctx = context()
    await corridor.chat(corridor.open(ctx, None, chat_request()))
    assert ctx.usage is not None and ctx.usage.total_tokens == 15 and not ctx.usage_estimated
    silent = Corridor(catalog(ScriptedProvider("p", usage=None)))
    ctx = context()
    response: ChatResponse = await silent.chat(silent.open(ctx, None, chat_request()))
    assert response.usage is None  # the reply is the upstream's; the estimate is the record's
    assert ctx.usage_estimated and ctx.usage is not None
    assert ctx.usage.prompt_tokens > 3 and ctx.usage.completion_tokens >= 3


class Releasing(Step):
    """A finish that starts a release which takes a while (a round trip to a shared store)."""

    name = "releasing"

    def __init__(self, journal: Journal) -> None:
        self.journal = journal

    def finish(self, call: object) -> asyncio.Task[None]:
        async def release() -> None:
            await asyncio.sleep(0.01)
            self.journal.entries.append("released")

        return asyncio.get_running_loop().create_task(release())


async def test_the_reply_waits_for_what_finish_started() -> None:
    """A freed slot must reach the shared store before the reply's last bytes go out: the
    caller may call again at once, through another replica."""
    journal = Journal()
    corridor = Corridor(catalog(ScriptedProvider("p")), [Releasing(journal)])
    await corridor.chat(corridor.open(context(), None, chat_request()))
    assert journal.entries == ["released"]
    stream = await corridor.chat_stream(corridor.open(context(), None, chat_request(stream=True)))
    async for _batch in stream:
        pass
    assert journal.entries == ["released", "released"]  # before the front door's last bytes
    cut = await corridor.chat_stream(corridor.open(context(), None, chat_request(stream=True)))
    await cut.aclose()  # the client left
    assert journal.entries == ["released"] * 3
