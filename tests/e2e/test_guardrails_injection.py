"""Prompt injection through the real SDKs: refused before anything goes upstream.

The ``guarded`` model runs under a profile that blocks ``prompt_injection`` on input
(every author's text, tool results included); ``plain`` has no guardrails.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import anthropic
import openai
import pytest

from gatewise.testing import FakeOpenAIUpstream
from gatewise.testing.gateway import RunningGateway
from tests.e2e.guardrail_support import (
    INJECTION,
    chat_requests,
    claude,
    guarded_config,
    module_gateway,
    oai,
    rule,
)


@pytest.fixture(scope="module")
def gw(fake_openai: FakeOpenAIUpstream) -> Iterator[RunningGateway]:
    config = guarded_config(
        fake_openai.url, {"guarded": {"rules": [rule("prompt_injection", action="block")]}}
    )
    with module_gateway(config) as gateway:
        yield gateway


def assert_injection_refused(error: openai.BadRequestError) -> None:
    assert error.status_code == 400
    body: Any = error.body
    assert body["type"] == "guardrail_violation", body
    assert body["code"] == "prompt_injection", body
    assert error.type == "guardrail_violation" and error.code == "prompt_injection"


def test_an_injection_in_a_user_message_is_refused_and_nothing_goes_upstream(
    gw: RunningGateway, upstream: FakeOpenAIUpstream
) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        oai(gw).chat.completions.create(
            model="guarded", messages=[{"role": "user", "content": INJECTION}]
        )
    assert_injection_refused(caught.value)
    assert upstream.request_count == 0 and chat_requests(upstream) == []


def test_an_injection_in_a_tool_result_is_refused(
    gw: RunningGateway, upstream: FakeOpenAIUpstream
) -> None:
    messages: list[Any] = [
        {"role": "user", "content": "What does the page say?"},
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {
                    "id": "call_1",
                    "type": "function",
                    "function": {"name": "fetch_page", "arguments": '{"url": "https://x.test"}'},
                }
            ],
        },
        {"role": "tool", "tool_call_id": "call_1", "content": f"<p>{INJECTION}</p>"},
    ]
    with pytest.raises(openai.BadRequestError) as caught:
        oai(gw).chat.completions.create(model="guarded", messages=messages)
    assert_injection_refused(caught.value)
    assert "message 2" in caught.value.message  # the tool result, by its position
    assert upstream.request_count == 0


def test_a_streamed_request_with_an_injection_is_refused_before_the_stream(
    gw: RunningGateway, upstream: FakeOpenAIUpstream
) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        oai(gw).chat.completions.create(
            model="guarded", messages=[{"role": "user", "content": INJECTION}], stream=True
        )
    assert_injection_refused(caught.value)
    assert upstream.request_count == 0


def test_a_benign_prompt_passes(gw: RunningGateway, upstream: FakeOpenAIUpstream) -> None:
    reply = oai(gw).chat.completions.create(
        model="guarded", messages=[{"role": "user", "content": "Summarise the previous chapter."}]
    )
    assert reply.choices[0].message.content == "Echo: Summarise the previous chapter."
    assert upstream.request_count == 1


def test_a_model_without_a_profile_lets_the_same_text_through(
    gw: RunningGateway, upstream: FakeOpenAIUpstream
) -> None:
    reply = oai(gw).chat.completions.create(
        model="plain", messages=[{"role": "user", "content": INJECTION}]
    )
    assert INJECTION in (reply.choices[0].message.content or "")
    assert upstream.request_count == 1


def test_responses_api_refuses_an_injection(
    gw: RunningGateway, upstream: FakeOpenAIUpstream
) -> None:
    client = oai(gw)
    with pytest.raises(openai.BadRequestError) as caught:
        client.responses.create(model="guarded", input=INJECTION)
    assert_injection_refused(caught.value)
    with pytest.raises(openai.BadRequestError) as streamed:
        client.responses.create(model="guarded", input=INJECTION, stream=True)
    assert_injection_refused(streamed.value)
    assert upstream.request_count == 0
    ok = client.responses.create(model="guarded", input="What is the capital of France?")
    assert ok.status == "completed" and "capital of France" in ok.output_text
    assert upstream.request_count == 1


def test_responses_api_refuses_an_injection_in_a_function_call_output(
    gw: RunningGateway, upstream: FakeOpenAIUpstream
) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        oai(gw).responses.create(
            model="guarded",
            input=[
                {"role": "user", "content": "Read the page."},
                {
                    "type": "function_call",
                    "call_id": "call_9",
                    "name": "fetch_page",
                    "arguments": "{}",
                },
                {"type": "function_call_output", "call_id": "call_9", "output": INJECTION},
            ],
        )
    assert_injection_refused(caught.value)
    assert upstream.request_count == 0


def test_anthropic_messages_refuses_an_injection(
    gw: RunningGateway, upstream: FakeOpenAIUpstream
) -> None:
    client = claude(gw)
    with pytest.raises(anthropic.BadRequestError) as caught:
        client.messages.create(
            model="guarded", max_tokens=50, messages=[{"role": "user", "content": INJECTION}]
        )
    assert caught.value.status_code == 400
    body: Any = caught.value.body
    assert body["type"] == "error"
    assert body["error"]["type"] == "guardrail_violation", body
    with (
        pytest.raises(anthropic.BadRequestError),
        client.messages.stream(
            model="guarded", max_tokens=50, messages=[{"role": "user", "content": INJECTION}]
        ) as stream,
    ):
        stream.get_final_message()
    assert upstream.request_count == 0
    ok = client.messages.create(
        model="guarded", max_tokens=50, messages=[{"role": "user", "content": "Hi there"}]
    )
    assert ok.content[0].type == "text" and ok.content[0].text == "Echo: Hi there"
    assert upstream.request_count == 1


def test_anthropic_tool_result_with_an_injection_is_refused(
    gw: RunningGateway, upstream: FakeOpenAIUpstream
) -> None:
    with pytest.raises(anthropic.BadRequestError) as caught:
        claude(gw).messages.create(
            model="guarded",
            max_tokens=50,
            messages=[
                {"role": "user", "content": "Read the page."},
                {
                    "role": "assistant",
                    "content": [
                        {"type": "tool_use", "id": "toolu_1", "name": "fetch", "input": {}}
                    ],
                },
                {
                    "role": "user",
                    "content": [
                        {"type": "tool_result", "tool_use_id": "toolu_1", "content": INJECTION}
                    ],
                },
            ],
        )
    body: Any = caught.value.body
    assert body["error"]["type"] == "guardrail_violation"
    assert upstream.request_count == 0
