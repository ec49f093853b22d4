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

from gatewise.policies.limits import Meter
from gatewise.state.base import CheckState

Headers = list[tuple[bytes, bytes]]


def go_duration(seconds: float) -> str:
    """12ms, 1s, 1.5s, 6m0s, 1h2m3s: the format OpenAI's reset headers use."""
    if seconds < 1:
        return f"{max(0, round(seconds * 1000))}ms"
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


def rate_headers(wire: str, meters: Sequence[Meter], states: Sequence[CheckState]) -> Headers:
    tightest: dict[str, CheckState] = {}
    for meter, state in zip(meters, states, strict=True):
        kind = meter.kind
        if kind == "requests" or kind == "tokens":
            chosen = tightest.get(kind)
            if chosen is None or state.remaining < chosen.remaining:
                tightest[kind] = state
    headers: Headers = []
    anthropic = wire == "anthropic"
    for kind, state in tightest.items():
        limit_name, remaining_name, reset_name = (_ANTHROPIC if anthropic else _OPENAI)[kind]
        if anthropic:
            moment = datetime.fromtimestamp(time.time() + state.reset_after, UTC)
            reset = moment.strftime("%Y-%m-%dT%H:%M:%SZ").encode()
        else:
            reset = go_duration(state.reset_after).encode()
        headers += [
            (limit_name, str(state.limit).encode()),
            (remaining_name, str(state.remaining).encode()),
            (reset_name, reset),
        ]
    return headers
