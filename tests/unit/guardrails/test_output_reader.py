"""The reply reader: placeholders back, masks, blocks, and chunks never split or merged."""

from __future__ import annotations

import pytest

from gatewise.core.context import RequestContext
from gatewise.core.errors import GuardrailViolationError
from gatewise.core.types import (
    ChatChunk,
    ChatResponse,
    Choice,
    ChunkChoice,
    Delta,
    FunctionCall,
    ResponseMessage,
    ToolCall,
    ToolCallDelta,
)
from gatewise.guardrails.masking import Vault
from gatewise.guardrails.output import HOLD, TRIM, OutputReader, held_tail
from gatewise.guardrails.rules import Profile, Rule
from tests.unit.guardrails.fakes import PII, SECRETS, chunk, texts

EMAIL = "ana.lopez@example.org"


def vault_with_email() -> Vault:
    vault = Vault()
    assert vault.placeholder("EMAIL", EMAIL) == "<EMAIL_1>"
    return vault


def reader(profile: Profile, vault: Vault | None = None, canary: str | None = None) -> OutputReader:
    return OutputReader(profile, RequestContext("req_test"), vault, canary)


async def stream(reader: OutputReader, pieces: list[str]) -> list[ChatChunk]:
    out: list[ChatChunk] = []
    for piece in pieces:
        out += await reader.read_chunks([chunk(piece)])
    out += await reader.read_chunks([chunk(None, "stop")])
    out += await reader.read_chunks([], end=True)
    return out


@pytest.mark.parametrize("cut", range(1, len("<EMAIL_1>")))
async def test_a_placeholder_split_anywhere_comes_back_as_the_value(cut: int) -> None:
    text = "Write to <EMAIL_1> today."
    at = text.index("<") + cut
    pieces = [text[:5], text[5:at], text[at:], " Bye."]
    out = await stream(reader(Profile("p"), vault_with_email()), pieces)
    assert "".join(texts(out)) == f"Write to {EMAIL} today. Bye."
    assert len(out) == len(pieces) + 1  # one chunk out for each chunk in, none merged


async def test_window_mode_releases_each_chunk_at_once() -> None:
    r = reader(Profile("p"), vault_with_email())
    first = await r.read_chunks([chunk("Hello there, ")])
    assert texts(first) == ["Hello there, "]
    held = await r.read_chunks([chunk("mail <EMA")])
    assert held == []  # a placeholder may be completing
    rest = await r.read_chunks([chunk("IL_1> now")])
    assert texts(rest) == [f"mail {EMAIL}", " now"]


async def test_hold_mode_keeps_back_just_the_tail() -> None:
    profile = Profile("p", output_rules=(Rule(SECRETS, "mask", mask="redact", stream="hold"),))
    r = reader(profile)
    assert texts(await r.read_chunks([chunk("Here it is: ")])) == ["Here it is: "]
    assert texts(await r.read_chunks([chunk("sk-A1b2")])) == []  # a word in progress
    assert texts(await r.read_chunks([chunk("C3d4")])) == []
    out = await r.read_chunks([chunk("A1b2C3d4E5f6G7h8 and")])
    assert texts(out) == []  # "and" may still grow; the key is settled but its chunks wait
    out = await r.read_chunks([chunk(" more")])
    assert "".join(texts(out)) == "[OPENAI_API_KEY] and"


@pytest.mark.parametrize(
    ("text", "held"),
    [
        ("plain words here", "here"),
        ("card 4111 1111 1111", "4111 1111 1111"),
        ("call +1 (415) 555-01", "+1 (415) 555-01"),
        ("ends with space ", ""),
        ("iban DE89 3704 0044 05", "DE89 3704 0044 05"),
        ("iban GB82 WEST 1234 ", "GB82 WEST 1234 "),
        ("call (415) 555-", "(415) 555-"),
        ("x -----BEGIN K-----\nMIIB\n-----END K", "-----BEGIN K-----\nMIIB\n-----END K"),
        ("x -----BEGIN K-----\nMIIB\n-----END K-----\nok", "ok"),
        ("key: -----BEGIN PRIVATE KEY-----\nMIIB abc", "-----BEGIN PRIVATE KEY-----\nMIIB abc"),
        ("x" * (HOLD + 50), "x" * HOLD),
    ],
)
def test_the_held_tail(text: str, held: str) -> None:
    assert text[held_tail(text, 0) :] == held


async def test_a_secret_split_over_chunks_is_redacted_in_hold_mode() -> None:
    key = "sk-" + "A1b2C3d4" * 4
    profile = Profile("p", output_rules=(Rule(SECRETS, "mask", mask="redact", stream="hold"),))
    out = await stream(reader(profile), ["the key is ", key[:10], key[10:], " ok"])
    joined = "".join(texts(out))
    assert key not in joined and key[10:] not in joined
    assert joined == "the key is [OPENAI_API_KEY] ok"


async def test_buffer_mode_releases_nothing_before_the_end_and_keeps_the_chunks() -> None:
    profile = Profile("p", output_rules=(Rule(PII, "flag", stream="buffer"),))
    r = reader(profile)
    assert await r.read_chunks([chunk("one ")]) == []
    assert await r.read_chunks([chunk("two ")]) == []
    out = await r.read_chunks([chunk(None, "stop")])
    assert texts(out) == ["one ", "two ", ""]


async def test_a_blocked_stream_raises_and_records_the_verdict() -> None:
    profile = Profile("p", output_rules=(Rule(SECRETS, "block", stream="hold"),))
    r = reader(profile)
    with pytest.raises(GuardrailViolationError) as raised:
        await stream(r, ["leaked: sk-", "A1b2C3d4" * 3])
    assert raised.value.code == "secrets" and raised.value.status == 400
    [verdict] = r.ctx.guardrails
    assert (verdict.guardrail, verdict.action, verdict.direction) == ("secrets", "block", "output")
    assert verdict.spans and verdict.spans[0][2] == "OPENAI_API_KEY"


async def test_the_canary_stops_a_reply_that_reveals_it() -> None:
    profile = Profile("p", canary=True)
    with pytest.raises(GuardrailViolationError) as raised:
        await stream(
            reader(profile, canary="gw-canary-0123abcd"), ["My rules: GW-CANARY-", "0123abcd!"]
        )
    assert raised.value.code == "system_prompt_leak"


async def test_a_flagged_canary_passes_and_is_recorded_once() -> None:
    profile = Profile("p", canary=True, leak_action="flag")
    r = reader(profile, canary="gw-canary-0123abcd")
    out = await stream(r, ["gw-canary-0123abcd ", "and more"])
    assert "".join(texts(out)).startswith("gw-canary-0123abcd")
    assert [v.guardrail for v in r.ctx.guardrails] == ["system_prompt_leak"]


async def test_tool_call_arguments_get_values_back_json_escaped() -> None:
    vault = Vault()
    value = 'say "hi"'
    placeholder = vault.placeholder("NOTE", value)
    r = reader(Profile("p"), vault)
    arguments = '{"text": "' + placeholder + '"}'
    out: list[ChatChunk] = []
    for piece in (arguments[:12], arguments[12:16], arguments[16:]):
        delta = Delta(tool_calls=[ToolCallDelta(0, function=FunctionCall(arguments=piece))])
        out += await r.read_chunks([ChatChunk(choices=[ChunkChoice(0, delta)])])
    out += await r.read_chunks([chunk(None, "tool_calls")])
    joined = "".join(
        tool.function.arguments or ""
        for c in out
        for tool in c.choices[0].delta.tool_calls or ()
        if tool.function is not None
    )
    assert joined == '{"text": "say \\"hi\\""}'


async def test_a_whole_reply_is_read_content_and_tool_calls() -> None:
    vault = vault_with_email()
    reply = ChatResponse(
        choices=[
            Choice(
                0,
                ResponseMessage(
                    content="Mail <EMAIL_1> or <EMAIL_9>",
                    tool_calls=[ToolCall("t1", FunctionCall("send", '{"to": "<EMAIL_1>"}'))],
                ),
            )
        ]
    )
    out = await reader(Profile("p"), vault).read_reply(reply)
    message = out.choices[0].message
    assert message.content == f"Mail {EMAIL} or <EMAIL_9>"  # unknown placeholders stay
    assert message.tool_calls is not None
    assert message.tool_calls[0].function.arguments == '{"to": "' + EMAIL + '"}'


async def test_output_masks_in_a_whole_reply() -> None:
    profile = Profile("p", output_rules=(Rule(PII, "mask", mask="redact"),))
    reply = ChatResponse(choices=[Choice(0, ResponseMessage(content=f"It is {EMAIL}."))])
    out = await reader(profile).read_reply(reply)
    assert out.choices[0].message.content == "It is [EMAIL]."


async def test_window_mode_masks_the_rest_of_a_value_whose_start_is_out() -> None:
    key = "sk-" + "A1b2C3d4" * 4
    profile = Profile("p", output_rules=(Rule(SECRETS, "mask", mask="redact", stream="window"),))
    out = await stream(reader(profile), ["the key is ", key[:10], key[10:], " ok"])
    assert texts(out)[:4] == ["the key is ", key[:10], "[OPENAI_API_KEY]", " ok"]


async def long_stream(mode: str) -> tuple[str, int]:
    """A 33 KB stream read 7 characters at a time, with a placeholder and a key in the
    middle: what the client gets, and the most text a channel held at once."""
    key = "sk-" + "A1b2C3d4" * 3
    profile = Profile("p", output_rules=(Rule(SECRETS, "mask", mask="redact", stream=mode),))
    r = reader(profile, vault_with_email())
    line = "Some ordinary words of a long answer, line after line. "
    body = line * 300 + "write to <EMAIL_1> with " + key + " then " + line * 300
    out: list[ChatChunk] = []
    longest = 0
    for i in range(0, len(body), 7):
        out += await r.read_chunks([chunk(body[i : i + 7])])
        longest = max(longest, len(r.channels[(0, -1)].text))
    out += await r.read_chunks([chunk(None, "stop")])
    return "".join(texts(out)), longest


@pytest.mark.parametrize("mode", ["window", "hold"])
async def test_a_long_stream_keeps_only_a_window_and_reads_it_all_the_same(
    mode: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    trimmed, longest = await long_stream(mode)
    assert longest < 3 * TRIM  # released text is dropped
    monkeypatch.setattr("gatewise.guardrails.output.TRIM", 10**9)
    whole, kept = await long_stream(mode)
    assert kept > 30_000 and trimmed == whole
    assert EMAIL in whole and "<EMAIL_1>" not in whole and "[OPENAI_API_KEY]" in whole
