"""Reversible PII masking through the real SDKs: the upstream sees placeholders only,
the client gets its own values back (replies, streams cut anywhere, tool-call
arguments, and a Responses conversation continued by ``previous_response_id``).

The ``masked`` model masks ``pii`` on input with placeholders; the fake upstream
either echoes the (masked) prompt or answers a scripted text holding placeholders.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import anthropic
import pytest

from gatewise.testing import FakeOpenAIUpstream, Scenario
from gatewise.testing.gateway import RunningGateway
from tests.e2e.guardrail_support import (
    EMAIL,
    chat_requests,
    claude,
    guarded_config,
    module_gateway,
    oai,
    rule,
)

PHONE = "+1 415 555 0134"
OTHER_EMAIL = "bob.smith@example.org"
PLACEHOLDER = "<EMAIL_1>"
EMBEDDINGS = "text-embedding-3-small"
SEND_TOOL: Any = {
    "type": "function",
    "function": {
        "name": "send_mail",
        "parameters": {"type": "object", "properties": {"to": {"type": "string"}}},
    },
}


@pytest.fixture(scope="module")
def gw(fake_openai: FakeOpenAIUpstream) -> Iterator[RunningGateway]:
    masked = {"rules": [rule("pii", on="input", action="mask", mask="placeholder")]}
    moderated = {"rules": [rule("moderation", action="mask", mask="placeholder")]}
    config = guarded_config(
        fake_openai.url,
        {"masked": masked, "moderated": moderated},
        moderation={"keywords": ["project falcon"], "topics": {"code-names": ["bluebird"]}},
    )
    config["models"].append(
        {"name": EMBEDDINGS, "deployments": [{"provider": "up", "model": EMBEDDINGS}]}
    )
    config["guardrails"]["assign"]["models"][EMBEDDINGS] = "masked"
    with module_gateway(config) as gateway:
        yield gateway


def upstream_text(upstream: FakeOpenAIUpstream) -> str:
    """Everything the upstream received, as one text."""
    return " ".join(r.body.decode() for r in upstream.requests)


def assert_never_saw_a_real_value(upstream: FakeOpenAIUpstream, *values: str) -> None:
    seen = upstream_text(upstream)
    assert upstream.requests, "nothing reached the upstream"
    for value in values:
        assert value not in seen


def test_plain_round_trip_masks_upstream_and_restores_for_the_client(
    gw: RunningGateway, upstream: FakeOpenAIUpstream
) -> None:
    prompt = f"Write to {EMAIL} or call {PHONE}."
    reply = oai(gw).chat.completions.create(
        model="masked", messages=[{"role": "user", "content": prompt}]
    )
    sent = chat_requests(upstream)[-1]["messages"][-1]["content"]
    assert sent == "Write to <EMAIL_1> or call <PHONE_1>."
    assert_never_saw_a_real_value(upstream, EMAIL, PHONE)
    assert reply.choices[0].message.content == f"Echo: {prompt}"  # the echo, unmasked


def test_a_scripted_reply_gets_real_values_and_unknown_placeholders_stay(
    gw: RunningGateway, upstream: FakeOpenAIUpstream
) -> None:
    upstream.script(Scenario(content="Sent to <EMAIL_1>; <EMAIL_7> and <PHONE_1> are unknown."))
    reply = oai(gw).chat.completions.create(
        model="masked", messages=[{"role": "user", "content": f"Mail {EMAIL} please"}]
    )
    assert reply.choices[0].message.content == (
        f"Sent to {EMAIL}; <EMAIL_7> and <PHONE_1> are unknown."
    )
    assert_never_saw_a_real_value(upstream, EMAIL)


def _stream_content(gw: RunningGateway, prompt: str) -> list[str]:
    stream = oai(gw).chat.completions.create(
        model="masked", messages=[{"role": "user", "content": prompt}], stream=True
    )
    return [c.choices[0].delta.content for c in stream if c.choices and c.choices[0].delta.content]


@pytest.mark.parametrize("cut", range(1, len(PLACEHOLDER)))
def test_a_streamed_placeholder_split_at_any_offset_comes_back_whole(
    gw: RunningGateway, upstream: FakeOpenAIUpstream, cut: int
) -> None:
    pieces = ("Sure, ", "I mail " + PLACEHOLDER[:cut], PLACEHOLDER[cut:] + " now", ", bye.")
    upstream.script(Scenario(pieces=pieces))
    deltas = _stream_content(gw, f"Mail {EMAIL}")
    assert "".join(deltas) == f"Sure, I mail {EMAIL} now, bye."
    assert len(deltas) > 1, deltas  # still a stream, not one collapsed chunk
    assert deltas[0] == "Sure, "  # text before the placeholder is not held back
    assert all("<" not in d for d in deltas), deltas
    assert_never_saw_a_real_value(upstream, EMAIL)


def test_a_placeholder_cut_into_single_characters(
    gw: RunningGateway, upstream: FakeOpenAIUpstream
) -> None:
    upstream.script(Scenario(pieces=("To: ", *PLACEHOLDER, ".")))
    deltas = _stream_content(gw, f"Mail {EMAIL}")
    assert "".join(deltas) == f"To: {EMAIL}."
    assert len(deltas) >= 2


def test_tool_call_arguments_get_real_values(
    gw: RunningGateway, upstream: FakeOpenAIUpstream
) -> None:
    upstream.script(Scenario(pieces=('{"to": "<EMAIL_1>"}',)))
    reply = oai(gw).chat.completions.create(
        model="masked",
        messages=[{"role": "user", "content": f"Send the report to {EMAIL}"}],
        tools=[SEND_TOOL],
    )
    call: Any = reply.choices[0].message.tool_calls[0]  # type: ignore[index]
    assert json.loads(call.function.arguments) == {"to": EMAIL}
    assert_never_saw_a_real_value(upstream, EMAIL)


@pytest.mark.parametrize("cut", [1, 4, 8])
def test_streamed_tool_call_arguments_split_inside_the_placeholder(
    gw: RunningGateway, upstream: FakeOpenAIUpstream, cut: int
) -> None:
    arguments = '{"to": "<EMAIL_1>", "cc": "<PHONE_1>"}'
    at = arguments.index(PLACEHOLDER) + cut
    upstream.script(Scenario(pieces=(arguments[:at], arguments[at:])))
    stream = oai(gw).chat.completions.create(
        model="masked",
        messages=[{"role": "user", "content": f"Send it to {EMAIL}"}],
        tools=[SEND_TOOL],
        stream=True,
    )
    fragments = [
        c.choices[0].delta.tool_calls[0].function.arguments or ""
        for c in stream
        if c.choices and c.choices[0].delta.tool_calls and c.choices[0].delta.tool_calls[0].function
    ]
    assert json.loads("".join(fragments)) == {"to": EMAIL, "cc": "<PHONE_1>"}
    assert_never_saw_a_real_value(upstream, EMAIL)


def test_anthropic_messages_round_trip(gw: RunningGateway, upstream: FakeOpenAIUpstream) -> None:
    client: anthropic.Anthropic = claude(gw)
    upstream.script(Scenario(pieces=("Noted: <EMA", "IL_1>.")))
    with client.messages.stream(
        model="masked", max_tokens=50, messages=[{"role": "user", "content": f"I am {EMAIL}"}]
    ) as stream:
        text = "".join(stream.text_stream)
    assert text == f"Noted: {EMAIL}."
    reply = client.messages.create(
        model="masked", max_tokens=50, messages=[{"role": "user", "content": f"I am {EMAIL}"}]
    )
    assert reply.content[0].type == "text" and reply.content[0].text == f"Echo: I am {EMAIL}"
    assert_never_saw_a_real_value(upstream, EMAIL)


def test_responses_conversation_keeps_placeholders_across_turns(
    gw: RunningGateway, upstream: FakeOpenAIUpstream
) -> None:
    client = oai(gw)
    first = client.responses.create(model="masked", input=f"My address is {EMAIL}.")
    assert first.output_text == f"Echo: My address is {EMAIL}."
    turn1 = chat_requests(upstream)[-1]["messages"]
    assert turn1[-1]["content"] == "My address is <EMAIL_1>."
    second = client.responses.create(
        model="masked",
        previous_response_id=first.id,
        input=f"Copy {OTHER_EMAIL} and {EMAIL} too.",
    )
    turn2 = chat_requests(upstream)[-1]["messages"]
    texts = [m["content"] for m in turn2 if isinstance(m.get("content"), str)]
    assert texts[0] == "My address is <EMAIL_1>."  # history: the same value, the same number
    assert "Echo: My address is <EMAIL_1>." in texts  # the stored reply, masked again
    assert texts[-1] == "Copy <EMAIL_2> and <EMAIL_1> too."
    assert second.output_text == f"Echo: Copy {OTHER_EMAIL} and {EMAIL} too."
    assert_never_saw_a_real_value(upstream, EMAIL, OTHER_EMAIL)


def test_responses_stream_round_trip(gw: RunningGateway, upstream: FakeOpenAIUpstream) -> None:
    upstream.script(Scenario(pieces=("Booked for <EMAI", "L_1>", " and <PHONE_1>.")))
    stream = oai(gw).responses.create(
        model="masked", input=f"Book for {EMAIL}, phone {PHONE}", stream=True
    )
    deltas = [e.delta for e in stream if e.type == "response.output_text.delta"]
    assert "".join(deltas) == f"Booked for {EMAIL} and {PHONE}."
    assert len(deltas) > 1
    assert_never_saw_a_real_value(upstream, EMAIL, PHONE)


def test_anthropic_streamed_tool_use_gets_real_values(
    gw: RunningGateway, upstream: FakeOpenAIUpstream
) -> None:
    upstream.script(Scenario(pieces=('{"to": "<EM', 'AIL_1>"}')))
    tool: Any = {"name": "send_mail", "input_schema": SEND_TOOL["function"]["parameters"]}
    with claude(gw).messages.stream(
        model="masked",
        max_tokens=50,
        messages=[{"role": "user", "content": f"mail {EMAIL}"}],
        tools=[tool],
    ) as stream:
        message = stream.get_final_message()
    (block,) = message.content
    assert block.type == "tool_use" and block.input == {"to": EMAIL}
    assert_never_saw_a_real_value(upstream, EMAIL)


def test_responses_streamed_function_call_gets_real_values(
    gw: RunningGateway, upstream: FakeOpenAIUpstream
) -> None:
    upstream.script(Scenario(pieces=('{"to": "<EM', 'AIL_1>"}')))
    tool: Any = {"type": "function", "name": "send_mail", **SEND_TOOL["function"]}
    events = list(
        oai(gw).responses.create(model="masked", input=f"mail {EMAIL}", tools=[tool], stream=True)
    )
    deltas = [e.delta for e in events if e.type == "response.function_call_arguments.delta"]
    assert json.loads("".join(deltas)) == {"to": EMAIL}
    (done,) = [e for e in events if e.type == "response.completed"]
    call: Any = done.response.output[0]
    assert json.loads(call.arguments) == {"to": EMAIL}


def test_every_choice_of_a_stream_gets_real_values(
    gw: RunningGateway, upstream: FakeOpenAIUpstream
) -> None:
    upstream.script(Scenario(pieces=("to <EMA", "IL_1> ok")))
    stream = oai(gw).chat.completions.create(
        model="masked", n=2, messages=[{"role": "user", "content": f"mail {EMAIL}"}], stream=True
    )
    texts: dict[int, str] = {}
    for chunk in stream:
        for choice in chunk.choices:
            texts[choice.index] = texts.get(choice.index, "") + (choice.delta.content or "")
    assert texts == {0: f"to {EMAIL} ok", 1: f"to {EMAIL} ok"}


def test_embeddings_inputs_are_masked(gw: RunningGateway, upstream: FakeOpenAIUpstream) -> None:
    result = oai(gw).embeddings.create(model=EMBEDDINGS, input=[f"write {EMAIL}", "plain"])
    assert len(result.data) == 2
    assert upstream.requests[-1].json["input"] == ["write <EMAIL_1>", "plain"]


def test_moderation_placeholders_come_back_too(
    gw: RunningGateway, upstream: FakeOpenAIUpstream
) -> None:
    prompt = "Tell me about Project Falcon and bluebird."
    reply = oai(gw).chat.completions.create(
        model="moderated", messages=[{"role": "user", "content": prompt}]
    )
    sent = chat_requests(upstream)[-1]["messages"][-1]["content"]
    assert "Falcon" not in sent and "bluebird" not in sent, sent
    assert reply.choices[0].message.content == f"Echo: {prompt}"
