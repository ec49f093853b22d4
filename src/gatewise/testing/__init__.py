"""Fake upstream servers that speak providers' exact wire formats over real HTTP.

Used by the integration tests, the benchmark and users' own CI::

    from gatewise.testing import FakeOpenAIUpstream, Scenario, run_in_thread

    with run_in_thread(FakeOpenAIUpstream(api_key="sk-up")) as fake:
        fake.script(Scenario(status=429, retry_after=2))
        ...  # point the gateway (or an SDK) at fake.url / fake.base_url
        assert fake.requests[-1].headers["authorization"] == "Bearer sk-up"

Inside a running event loop use ``async with FakeOpenAIUpstream() as fake:`` instead.

When the fake runs in another process (``gatewise mock-upstream``), put markers in
the last user message (or an embeddings input) instead of scripting:
``[[fake:status=429]]``, ``[[fake:retry_after=2]]``, ``[[fake:slow_first_byte=2.5]]``,
``[[fake:reset_after=3]]``, ``[[fake:garbage]]``, ``[[fake:garbage_stream]]``,
``[[fake:hang]]``, ``[[fake:stall]]``, ``[[fake:chunks=50]]``, ``[[fake:chunk_delay=0.01]]``,
``[[fake:ratelimit_headers]]``, ``[[fake:error_message=...]]``, ``[[fake:error_type=...]]``,
``[[fake:error_code=...]]``, ``[[fake:content=...]]``. Markers combine, and are not echoed.

``FakeAnthropicUpstream`` speaks Anthropic's Messages API the same way (its root URL is
what ``anthropic.Anthropic(base_url=...)`` takes) and adds ``[[fake:error_event_after=N]]``:
a mid-stream ``error`` event after N events; ``[[fake:redacted_thinking]]``: a
``redacted_thinking`` block in the reply (after the thinking block, which comes with
``thinking: {"type": "enabled"}``); ``[[fake:citations]]``: a citation on the text block
(``citations`` non-streamed, a ``citations_delta`` event streamed). Like the real API it
rejects, with thinking on, a final assistant turn with ``tool_use`` blocks that does not
start with a thinking block, and thinking blocks whose signature it did not issue.

``FakeGeminiUpstream`` speaks Gemini's ``generateContent`` / ``streamGenerateContent``
and ``batchEmbedContents``; ``GeminiScenario`` (and ``[[fake:finish_reason=SAFETY]]``,
``[[fake:block_reason=SAFETY]]``) script safety blocks.
"""

from gatewise.testing.anthropic_upstream import FakeAnthropicUpstream
from gatewise.testing.gemini_upstream import FakeGeminiUpstream, GeminiScenario
from gatewise.testing.openai_upstream import DEFAULT_MODELS, FakeOpenAIUpstream, RecordedRequest
from gatewise.testing.runner import run_in_thread
from gatewise.testing.scenario import Scenario

__all__ = [
    "DEFAULT_MODELS",
    "FakeAnthropicUpstream",
    "FakeGeminiUpstream",
    "FakeOpenAIUpstream",
    "GeminiScenario",
    "RecordedRequest",
    "Scenario",
    "run_in_thread",
]
