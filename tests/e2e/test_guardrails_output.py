"""Output guardrails on replies and streams, and the canary, through the real SDKs.

- ``blocked``: ``secrets`` on output blocks: a plain reply is a 400, a stream ends with
  the front door's error event and the key never reaches the client.
- ``redacted``: ``secrets`` on output masks with ``redact``: the client gets a label.
- ``canary``: a canary token in the system prompt and ``system_prompt_leak``: a reply
  that repeats it is stopped.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import anthropic
import openai
import pytest

from gatewise.testing import FakeOpenAIUpstream, Scenario
from gatewise.testing.gateway import RunningGateway
from tests.e2e.guardrail_support import (
    chat_requests,
    claude,
    guarded_config,
    module_gateway,
    oai,
    rule,
)

API_KEY = "sk-" + "Ab3dE6gH9jK2mN5pQ8sT1vW4yZ7bC0eF"
PIECES = ("Your key is ", API_KEY[:10], API_KEY[10:], " keep it safe.")
HELLO: Any = [{"role": "user", "content": "What is my key?"}]
CANARY = re.compile(r"gw-canary-[0-9a-f]{16}")


@pytest.fixture(scope="module")
def gw(fake_openai: FakeOpenAIUpstream) -> Iterator[RunningGateway]:
    config = guarded_config(
        fake_openai.url,
        {
            "blocked": {"rules": [rule("secrets", on="output", action="block")]},
            "redacted": {"rules": [rule("secrets", on="output", action="mask", mask="redact")]},
            "canary": {
                "canary": True,
                "rules": [rule("system_prompt_leak", on="output", action="block")],
            },
            "strict": {"builtin": "strict"},
        },
    )
    with module_gateway(config) as gateway:
        yield gateway


# --- secrets: block -----------------------------------------------------------------


def test_a_plain_reply_with_a_key_is_refused(
    gw: RunningGateway, upstream: FakeOpenAIUpstream
) -> None:
    upstream.script(Scenario(content="".join(PIECES)))
    with pytest.raises(openai.BadRequestError) as caught:
        oai(gw).chat.completions.create(model="blocked", messages=HELLO)
    body: Any = caught.value.body
    assert body["type"] == "guardrail_violation" and body["code"] == "secrets", body
    assert API_KEY not in str(body)
    assert upstream.request_count == 1  # output rules run on the reply: the call was made


def test_an_openai_stream_with_a_key_raises_mid_stream(
    gw: RunningGateway, upstream: FakeOpenAIUpstream
) -> None:
    upstream.script(Scenario(pieces=PIECES))
    received: list[str] = []
    stream = oai(gw).chat.completions.create(model="blocked", messages=HELLO, stream=True)
    with pytest.raises(openai.APIError) as caught:
        for chunk in stream:
            if chunk.choices and chunk.choices[0].delta.content:
                received.append(chunk.choices[0].delta.content)
    body: Any = caught.value.body  # the stream's error event, in OpenAI's envelope
    assert body["type"] == "guardrail_violation" and body["code"] == "secrets", body
    assert set(body) == {"message", "type", "param", "code"}
    assert API_KEY[:10] not in "".join(received)


def test_an_anthropic_stream_with_a_key_raises_on_the_error_event(
    gw: RunningGateway, upstream: FakeOpenAIUpstream
) -> None:
    upstream.script(Scenario(pieces=PIECES))
    received: list[str] = []
    with (
        pytest.raises(anthropic.APIStatusError) as caught,
        claude(gw).messages.stream(model="blocked", max_tokens=50, messages=HELLO) as stream,
    ):
        for text in stream.text_stream:
            received.append(text)
    body: Any = caught.value.body
    assert body["error"]["type"] == "guardrail_violation", body
    assert API_KEY[:10] not in "".join(received)


def test_a_responses_stream_with_a_key_fails(
    gw: RunningGateway, upstream: FakeOpenAIUpstream
) -> None:
    upstream.script(Scenario(pieces=PIECES))
    events = list(oai(gw).responses.create(model="blocked", input="my key?", stream=True))
    last: Any = events[-1]
    assert last.type == "response.failed", last
    assert last.response.status == "failed"
    assert "secrets guardrail" in last.response.error.message
    text = "".join(
        e.delta for e in events if getattr(e, "type", "") == "response.output_text.delta"
    )
    assert API_KEY[:10] not in text
    assert not any(getattr(e, "type", "") == "response.completed" for e in events)


def test_a_plain_responses_reply_with_a_key_is_refused(
    gw: RunningGateway, upstream: FakeOpenAIUpstream
) -> None:
    upstream.script(Scenario(content="".join(PIECES)))
    with pytest.raises(openai.BadRequestError) as caught:
        oai(gw).responses.create(model="blocked", input="my key?")
    assert caught.value.code == "secrets" and caught.value.type == "guardrail_violation"
    assert API_KEY not in str(caught.value.body)


# --- secrets: redact ----------------------------------------------------------------


def test_a_key_is_redacted_in_a_plain_reply(
    gw: RunningGateway, upstream: FakeOpenAIUpstream
) -> None:
    upstream.script(Scenario(content="".join(PIECES)))
    reply = oai(gw).chat.completions.create(model="redacted", messages=HELLO)
    assert reply.choices[0].message.content == "Your key is [OPENAI_API_KEY] keep it safe."


@pytest.mark.parametrize("cut", range(1, len(API_KEY)))
def test_a_key_is_redacted_in_a_stream_wherever_it_is_cut(
    gw: RunningGateway, upstream: FakeOpenAIUpstream, cut: int
) -> None:
    upstream.script(
        Scenario(pieces=("Your key is ", API_KEY[:cut], API_KEY[cut:], " keep it safe."))
    )
    stream = oai(gw).chat.completions.create(model="redacted", messages=HELLO, stream=True)
    deltas = [
        c.choices[0].delta.content for c in stream if c.choices and c.choices[0].delta.content
    ]
    assert "".join(deltas) == "Your key is [OPENAI_API_KEY] keep it safe."
    assert len(deltas) > 1


def test_a_key_is_redacted_in_anthropic_and_responses_streams(
    gw: RunningGateway, upstream: FakeOpenAIUpstream
) -> None:
    upstream.script(Scenario(pieces=PIECES), Scenario(pieces=PIECES))
    with claude(gw).messages.stream(model="redacted", max_tokens=50, messages=HELLO) as stream:
        assert "".join(stream.text_stream) == "Your key is [OPENAI_API_KEY] keep it safe."
    events = oai(gw).responses.create(model="redacted", input="my key?", stream=True)
    deltas = [e.delta for e in events if e.type == "response.output_text.delta"]
    assert "".join(deltas) == "Your key is [OPENAI_API_KEY] keep it safe."


# --- canary -------------------------------------------------------------------------


def test_the_upstream_gets_a_canary_in_the_system_prompt(
    gw: RunningGateway, upstream: FakeOpenAIUpstream
) -> None:
    reply = oai(gw).chat.completions.create(
        model="canary",
        messages=[{"role": "system", "content": "You are terse."}, *HELLO],
    )
    assert reply.choices[0].message.content == "Echo: What is my key?"
    system = chat_requests(upstream)[-1]["messages"][0]
    assert system["role"] == "system" and system["content"].startswith("You are terse.")
    assert CANARY.search(system["content"]), system
    again = oai(gw).chat.completions.create(model="canary", messages=HELLO)  # no system prompt
    assert again.choices[0].message.content == "Echo: What is my key?"
    added = chat_requests(upstream)[-1]["messages"][0]
    assert added["role"] == "system" and CANARY.search(added["content"])
    assert CANARY.search(added["content"]).group(0) != CANARY.search(system["content"]).group(0)  # type: ignore[union-attr]


@pytest.mark.parametrize("model", ["canary", "strict"])
def test_a_reply_repeating_the_system_prompt_is_refused(
    gw: RunningGateway, upstream: FakeOpenAIUpstream, model: str
) -> None:
    upstream.script(Scenario(repeat_system_prompt=True))
    with pytest.raises(openai.BadRequestError) as caught:
        oai(gw).chat.completions.create(model=model, messages=HELLO)
    body: Any = caught.value.body
    assert body["type"] == "guardrail_violation" and body["code"] == "system_prompt_leak", body
    assert "gw-canary-" not in str(body)
    assert CANARY.search(chat_requests(upstream)[-1]["messages"][0]["content"])


@pytest.mark.parametrize(
    ("model", "chunks"), [("strict", 40), *(("canary", n) for n in (3, 7, 29, 200))]
)
def test_a_streamed_reply_repeating_the_canary_ends_with_an_error_event(
    gw: RunningGateway, upstream: FakeOpenAIUpstream, model: str, chunks: int
) -> None:
    """The canary is cut at different places by streams of more or fewer chunks."""
    upstream.script(Scenario(repeat_system_prompt=True, chunks=chunks))
    received: list[str] = []
    stream = oai(gw).chat.completions.create(model=model, messages=HELLO, stream=True)
    with pytest.raises(openai.APIError) as caught:
        for chunk in stream:
            if chunk.choices and chunk.choices[0].delta.content:
                received.append(chunk.choices[0].delta.content)
    body: Any = caught.value.body
    assert body["type"] == "guardrail_violation", body
    assert body["code"] == "system_prompt_leak", body
    assert "gw-canary-" not in "".join(received)


def test_an_anthropic_stream_repeating_the_canary_ends_with_an_error_event(
    gw: RunningGateway, upstream: FakeOpenAIUpstream
) -> None:
    upstream.script(Scenario(repeat_system_prompt=True, chunks=40))
    received: list[str] = []
    with (
        pytest.raises(anthropic.APIStatusError) as caught,
        claude(gw).messages.stream(
            model="canary", max_tokens=500, system="Be kind.", messages=HELLO
        ) as stream,
    ):
        received.extend(stream.text_stream)
    body: Any = caught.value.body
    assert body["error"]["type"] == "guardrail_violation", body
    assert "gw-canary-" not in "".join(received)


def test_anthropic_system_blocks_and_responses_instructions_get_the_canary_too(
    gw: RunningGateway, upstream: FakeOpenAIUpstream
) -> None:
    upstream.script(Scenario(repeat_system_prompt=True), Scenario(repeat_system_prompt=True))
    with pytest.raises(anthropic.BadRequestError) as caught:
        claude(gw).messages.create(
            model="canary",
            max_tokens=50,
            system=[{"type": "text", "text": "Be kind."}],
            messages=HELLO,
        )
    body: Any = caught.value.body
    assert body["error"]["type"] == "guardrail_violation"
    system = chat_requests(upstream)[-1]["messages"][0]
    assert system["content"][0] == {"type": "text", "text": "Be kind."}
    assert CANARY.search(system["content"][-1]["text"])
    events = list(
        oai(gw).responses.create(model="canary", input="hi", instructions="Be brief.", stream=True)
    )
    last: Any = events[-1]
    assert last.type == "response.failed" and "system prompt" in last.response.error.message
    deltas = "".join(e.delta for e in events if e.type == "response.output_text.delta")
    assert "gw-canary-" not in deltas


def test_a_reply_without_the_canary_passes(
    gw: RunningGateway, upstream: FakeOpenAIUpstream
) -> None:
    upstream.script(Scenario(content="The canary is a bird; gw-canary- is not a marker."))
    reply = oai(gw).chat.completions.create(model="canary", messages=HELLO)
    assert reply.choices[0].message.content == "The canary is a bird; gw-canary- is not a marker."
