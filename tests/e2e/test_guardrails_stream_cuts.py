"""Output redaction on streams gives the client exactly what the plain reply gives,
however the upstream cuts the text: at every offset of a value, and one character per
chunk (the ``hold`` stream mode keeps back only a value in progress)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from gatewise.testing import FakeOpenAIUpstream, Scenario
from gatewise.testing.gateway import RunningGateway
from tests.e2e.guardrail_support import EMAIL, guarded_config, module_gateway, oai, rule

PRIVATE_KEY = (
    "-----BEGIN RSA PRIVATE KEY-----\nMIIEowIBAAKCAQEA1b2c3d4e5\n-----END RSA PRIVATE KEY-----"
)
#: (label, value): what the real detectors find, as values a stream may cut anywhere.
VALUES = [
    ("PHONE", "+1 415 555 0134"),
    ("PHONE", "(415) 555-0134"),
    ("CREDIT_CARD", "4111 1111 1111 1111"),
    ("IBAN", "DE89 3704 0044 0532 0130 00"),
    ("IBAN", "GB82 WEST 1234 5698 7654 32"),
    ("EMAIL", EMAIL),
    ("OPENAI_API_KEY", "sk-" + "Ab3dE6gH9jK2mN5pQ8sT1vW4yZ7bC0eF"),
    ("PRIVATE_KEY", PRIVATE_KEY),
]
ASK = [{"role": "user", "content": "tell me"}]


@pytest.fixture(scope="module")
def gw(fake_openai: FakeOpenAIUpstream) -> Iterator[RunningGateway]:
    redacting = {
        "rules": [
            rule("pii", on="output", action="mask", mask="redact"),
            rule("secrets", on="output", action="mask", mask="redact"),
        ]
    }
    with module_gateway(guarded_config(fake_openai.url, {"redacting": redacting})) as gateway:
        yield gateway


def plain(gw: RunningGateway, upstream: FakeOpenAIUpstream, text: str) -> str | None:
    upstream.script(Scenario(content=text))
    reply = oai(gw).chat.completions.create(model="redacting", messages=ASK)  # type: ignore[arg-type]
    return reply.choices[0].message.content


def streamed(gw: RunningGateway, upstream: FakeOpenAIUpstream, pieces: tuple[str, ...]) -> str:
    upstream.script(Scenario(pieces=pieces))
    stream = oai(gw).chat.completions.create(model="redacting", messages=ASK, stream=True)  # type: ignore[arg-type]
    return "".join(c.choices[0].delta.content or "" for c in stream if c.choices)


@pytest.mark.parametrize(("label", "value"), VALUES)
def test_every_cut_of_a_value_is_redacted_like_the_plain_reply(
    gw: RunningGateway, upstream: FakeOpenAIUpstream, label: str, value: str
) -> None:
    expected = f"Value: [{label}] end."
    assert plain(gw, upstream, f"Value: {value} end.") == expected
    wrong = [
        (cut, out)
        for cut in range(1, len(value))
        if (out := streamed(gw, upstream, ("Value: ", value[:cut], value[cut:], " end.")))
        != expected
    ]
    assert wrong == []


@pytest.mark.parametrize(("label", "value"), VALUES)
def test_one_character_per_chunk(
    gw: RunningGateway, upstream: FakeOpenAIUpstream, label: str, value: str
) -> None:
    text = f"Value: {value} end, and again {value}!"
    expected = f"Value: [{label}] end, and again [{label}]!"
    assert plain(gw, upstream, text) == expected
    assert streamed(gw, upstream, tuple(text)) == expected
