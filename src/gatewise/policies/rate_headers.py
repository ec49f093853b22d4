"""Rate-limit response headers in each front door's dialect.

OpenAI's ``x-ratelimit-{limit,remaining,reset}-{requests,tokens}`` (reset as a
Go duration: ``20ms``, ``1s``, ``6m0s``) on every response, and Anthropic's
``anthropic-ratelimit-{requests,tokens}-{limit,remaining,reset}`` (reset as an
RFC 3339 time). When several limits count a call, the headers describe the
tightest one (the fewest remaining), which is what a client must respect.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from datetime import UTC, datetime

from gatewise.state.base import CheckState

Headers = list[tuple[bytes, bytes]]


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


_OPENAI = {
    kind: (
        b"x-ratelimit-limit-" + kind.encode(),
        b"x-ratelimit-remaining-" + kind.encode(),
        b"x-ratelimit-reset-" + kind.encode(),
    )
    for kind in ("requests", "tokens")
}
_ANTHROPIC = {
    kind: (
        f"anthropic-ratelimit-{kind}-limit".encode(),
        f"anthropic-ratelimit-{kind}-remaining".encode(),
        f"anthropic-ratelimit-{kind}-reset".encode(),
    )
    for kind in ("requests", "tokens")
}


def rate_headers(
    wire: str, states: Sequence[CheckState], requests: Sequence[int], tokens: Sequence[int]
) -> Headers:
    """The headers for the counters at ``requests`` and ``tokens`` (indexes into ``states``,
    the request and token rate limits of a call)."""
    headers: Headers = []
    anthropic = wire == "anthropic"
    for kind, indexes in (("requests", requests), ("tokens", tokens)):
        if not indexes:
            continue
        state = states[indexes[0]]
        for index in indexes[1:]:
            if states[index].remaining < state.remaining:
                state = states[index]
        limit_name, remaining_name, reset_name = (_ANTHROPIC if anthropic else _OPENAI)[kind]
        if anthropic:
            moment = datetime.fromtimestamp(time.time() + state.reset_after, UTC)
            reset = moment.strftime("%Y-%m-%dT%H:%M:%SZ").encode()
        else:
            reset = go_duration(state.reset_after).encode()
        headers += [
            (limit_name, b"%d" % state.limit),
            (remaining_name, b"%d" % state.remaining),
            (reset_name, reset),
        ]
    return headers
