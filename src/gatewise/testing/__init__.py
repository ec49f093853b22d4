"""Fake upstream servers that speak providers' exact wire formats over real HTTP.

Used by the integration tests, the benchmark and users' own CI::

    from gatewise.testing import FakeOpenAIUpstream, Scenario, run_in_thread

    with run_in_thread(FakeOpenAIUpstream(api_key="sk-up")) as fake:
        fake.script(Scenario(status=429, retry_after=2))
        ...  # point the gateway (or an SDK) at fake.url / fake.base_url
        assert fake.requests[-1].headers["authorization"] == "Bearer sk-up"

In another process (``gatewise mock-upstream``), put markers such as
``[[fake:status=503]]`` or ``[[fake:reset_after=3]]`` in the last user message.
"""

from gatewise.testing.openai_upstream import DEFAULT_MODELS, FakeOpenAIUpstream, RecordedRequest
from gatewise.testing.runner import run_in_thread
from gatewise.testing.scenario import Scenario

__all__ = [
    "DEFAULT_MODELS",
    "FakeOpenAIUpstream",
    "RecordedRequest",
    "Scenario",
    "run_in_thread",
]
