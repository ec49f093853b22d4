"""Offline token counting: exact BPE counts, OpenAI's chat framing, the heuristic fallback."""

from __future__ import annotations

import subprocess
import sys

import pytest

from gatewise.core import tokens
from gatewise.core.types import ChatRequest, FunctionCall, Message, ToolCall

needs_tokenizer = pytest.mark.skipif(not tokens.exact(), reason="bpe-openai is not installed")


@pytest.mark.parametrize(
    ("model", "encoding"),
    [
        ("gpt-4o-mini", "o200k_base"),
        ("gpt-4.1", "o200k_base"),
        ("gpt-5-nano", "o200k_base"),
        ("o3-mini", "o200k_base"),
        ("openai/gpt-4o", "o200k_base"),
        ("GPT-4O", "o200k_base"),
        ("gpt-4", "cl100k_base"),
        ("gpt-3.5-turbo", "cl100k_base"),
        ("claude-sonnet-4-6", "cl100k_base"),
        ("omni-moderation", "cl100k_base"),
        ("mock-gpt", "cl100k_base"),
    ],
)
def test_encoding_for_model(model: str, encoding: str) -> None:
    assert tokens.encoding_for(model) == encoding


@needs_tokenizer
def test_exact_counts_match_the_published_encodings() -> None:
    # Reference ids: "hello world" is [24912, 2375] in o200k_base and [15339, 1917] in cl100k_base.
    assert tokens.count_text("hello world", "gpt-4o") == 2
    assert tokens.count_text("hello world", "gpt-4") == 2
    assert tokens.count_text("", "gpt-4o") == 0
    # Special-token strings in user text are ordinary text, never a special token.
    assert tokens.count_text("<|endoftext|>", "gpt-4o") > 1
    # The two encodings differ on non-English text.
    text = "Die Größe des Flughafens überrascht 日本語のテキスト"
    assert tokens.count_text(text, "gpt-4o") != tokens.count_text(text, "gpt-4")


@needs_tokenizer
def test_long_text_is_counted_whole() -> None:
    text = "word " * 300_000  # 1.5 M characters: beyond the wrapper's one-shot limit
    assert tokens.count_text(text, "gpt-4o") == pytest.approx(300_000, rel=0.01)


@needs_tokenizer
def test_count_messages_uses_openai_framing() -> None:
    messages = [
        Message(role="system", content="hello world"),
        Message(role="user", content="hello world"),
    ]
    # 3 for reply priming; per message 3 + role (1 token) + content (2 tokens)
    assert tokens.count_messages(messages, "gpt-4o") == 3 + 2 * (3 + 1 + 2)
    named = [Message(role="user", content="hello world", name="bob")]
    assert tokens.count_messages(named, "gpt-4o") == 3 + 3 + 1 + 2 + 1 + 1


@needs_tokenizer
def test_parts_images_and_tool_calls_are_counted() -> None:
    text_only = [Message(role="user", content=[{"type": "text", "text": "hello world"}])]
    with_image = [
        Message(
            role="user",
            content=[
                {"type": "text", "text": "hello world"},
                {
                    "type": "image_url",
                    "image_url": {"url": "data:image/png;base64,AAAA", "detail": "low"},
                },
            ],
        )
    ]
    base = tokens.count_messages(text_only, "gpt-4o")
    assert tokens.count_messages(with_image, "gpt-4o") == base + tokens.IMAGE_TOKENS_LOW
    call = ToolCall(id="call_1", function=FunctionCall("get_weather", '{"city":"Paris"}'))
    assistant = [Message(role="assistant", content=None, tool_calls=[call])]
    assert tokens.count_messages(assistant, "gpt-4o") > tokens.count_messages(
        [Message(role="assistant", content=None)], "gpt-4o"
    ) + tokens.count_text('{"city":"Paris"}', "gpt-4o")


@needs_tokenizer
def test_request_counts_tools() -> None:
    request = ChatRequest(model="gpt-4o", messages=[Message(role="user", content="hello world")])
    plain = tokens.count_request(request, "gpt-4o")
    request.tools = [
        {"type": "function", "function": {"name": "f", "parameters": {"type": "object"}}}
    ]
    assert tokens.count_request(request, "gpt-4o") > plain + tokens.TOOL_OVERHEAD
    assert tokens.quick_count_text("hello world", "gpt-4o") == 2


def test_heuristic_counts() -> None:
    assert tokens.heuristic_count("") == 0
    assert tokens.heuristic_count("abcd") == 1
    assert tokens.heuristic_count("abcde") == 2
    assert tokens.heuristic_count("日本") == 2  # six bytes of UTF-8


def test_without_the_package_counts_fall_back_to_the_heuristic(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(tokens, "_available", False)
    monkeypatch.setattr(tokens, "_counters", {})
    assert not tokens.exact()
    assert not tokens.preload("gpt-4o")
    assert tokens.count_text("a" * 40, "gpt-4o") == 10
    request = ChatRequest(model="m", messages=[Message(role="user", content="a" * 40)])
    assert tokens.count_request(request, "gpt-4o") == tokens.REPLY_PRIMING + 3 + 1 + 10


def test_importing_the_module_does_not_load_the_tokenizer() -> None:
    code = "import sys, gatewise.core.tokens, gatewise.app; print('bpe_openai' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_slices_for_the_wrapper_fallback_cover_the_text() -> None:
    text = ("lorem ipsum " * 50_000) + "x" * 300_000
    pieces = list(tokens._slices(text))
    assert "".join(pieces) == text
    assert all(0 < len(piece) <= tokens._SLICE for piece in pieces)
    assert pieces[1].startswith(" ")  # cut at whitespace where there is some


def test_a_quick_count_never_waits_for_the_tokenizer_to_load(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The first estimate starts loading the tokenizer in a thread (about a second); a count
    meanwhile must answer with the heuristic at once, not wait for that load: the event
    loop stalled for 0.5-0.9 s on the first cut streams (their usage is estimated)."""
    import threading
    import time

    loaded = threading.Event()

    def slow_build(encoding: str) -> tokens.Counter:
        time.sleep(0.5)
        loaded.set()
        return len

    monkeypatch.setattr(tokens, "_available", True)
    monkeypatch.setattr(tokens, "_counters", {})
    monkeypatch.setattr(tokens, "_loading", set())
    monkeypatch.setattr(tokens, "_build", slow_build)
    started = time.perf_counter()
    assert tokens.quick_count_text("four words of text", "gpt-4o") == 5  # the heuristic
    time.sleep(0.05)  # the load is under way in its thread
    assert tokens.quick_count_text("four words of text", "gpt-4o") == 5
    assert time.perf_counter() - started < 0.3  # neither count waited for the load
    assert loaded.wait(5)
    time.sleep(0.05)
    assert tokens.quick_count_text("four words of text", "gpt-4o") == 18  # loaded: len
