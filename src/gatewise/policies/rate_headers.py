"""Rate-limit response headers in each front door's dialect.

OpenAI's ``x-ratelimit-{limit,remaining,reset}-{requests,tokens}`` (reset as a
Go duration: ``20ms``, ``1s``, ``6m0s``) on every response, and Anthropic's
``anthropic-ratelimit-{requests,tokens}-{limit,remaining,reset}`` (reset as an
RFC 3339 time). When several limits count a call, the headers describe the
tightest one (the fewest remaining), which is what a client must respect.

They come as framed header lines (``name: value\r\n`` each), built with one
format per kind: the gateway's own server writes them as they are, and
``gatewise.http.asgi`` splits them into ASGI pairs for any other server.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from datetime import UTC, datetime

from gatewise.state.base import CheckState


def go_duration(seconds: float) -> str:
    """12ms, 1s, 1.5s, 6m0s, 1h2m3s: the format OpenAI's reset headers use."""
    if seconds < 1:
        return f"{round(seconds * 1000) if seconds > 0 else 0}ms"
    seconds = round(seconds, 3)
    whole = int(seconds)
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    fraction = seconds - whole
    sec_text = f"{secs + fraction:.3f}".rstrip("0").rstrip(".") if fraction >= 0.001 else str(secs)
    if hours:
        return f"{hours}h{minutes}m{sec_text}s"
    if minutes:
        return f"{minutes}m{sec_text}s"
    return f"{sec_text}s"


def _names(prefix: str, kind: str, anthropic: bool) -> tuple[bytes, bytes, bytes]:
    def name(part: str) -> bytes:
        return (f"{prefix}{kind}-{part}" if anthropic else f"{prefix}{part}-{kind}").encode()

    return name("limit"), name("remaining"), name("reset")


# Header names by dialect: (requests names, tokens names), each (limit, remaining, reset).
_OPENAI = (_names("x-ratelimit-", "requests", False), _names("x-ratelimit-", "tokens", False))
_ANTHROPIC = (
    _names("anthropic-ratelimit-", "requests", True),
    _names("anthropic-ratelimit-", "tokens", True),
)


def rate_headers(
    wire: str, states: Sequence[CheckState], requests: Sequence[int], tokens: Sequence[int]
) -> bytes:
    """The header lines for the counters at ``requests`` and ``tokens`` (indexes into
    ``states``, the request and token rate limits of a call). Runs on every response."""
    anthropic = wire == "anthropic"
    names = _ANTHROPIC if anthropic else _OPENAI
    lines = b""
    if requests:
        lines = _describe(names[0], _tightest(states, requests), anthropic)
    if tokens:
        lines += _describe(names[1], _tightest(states, tokens), anthropic)
    return lines


def _tightest(states: Sequence[CheckState], indexes: Sequence[int]) -> CheckState:
    state = states[indexes[0]]
    if len(indexes) > 1:
        for index in indexes[1:]:
            if states[index].remaining < state.remaining:
                state = states[index]
    return state


def _describe(names: tuple[bytes, bytes, bytes], state: CheckState, anthropic: bool) -> bytes:
    reset_after = state.reset_after
    if anthropic:
        moment = datetime.fromtimestamp(time.time() + reset_after, UTC)
        reset = moment.strftime("%Y-%m-%dT%H:%M:%SZ").encode()
    elif reset_after < 1:  # the usual case, in bytes straight away
        reset = b"%dms" % round(reset_after * 1000) if reset_after > 0 else b"0ms"
    else:
        reset = go_duration(reset_after).encode()
    return b"%s: %d\r\n%s: %d\r\n%s: %s\r\n" % (
        names[0],
        state.limit,
        names[1],
        state.remaining,
        names[2],
        reset,
    )
