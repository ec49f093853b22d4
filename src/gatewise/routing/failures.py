"""What an attempt's failure means for routing: retry elsewhere, count against the
deployment's breaker, cool it down, or fall back to another model.

Providers word the same failure differently; these are the shapes they document:
OpenAI's ``context_length_exceeded`` and ``content_policy_violation`` codes, Azure's
``content_filter``, Anthropic's "prompt is too long", Gemini's token-count message.
"""

from __future__ import annotations

import asyncio

from gatewise.core.errors import (
    GatewayError,
    UpstreamProtocolError,
    UpstreamTimeoutError,
    UpstreamUnavailableError,
)
from gatewise.routing.health import Outcome

#: Worth trying another deployment (or the same one again): throttled, timed out,
#: broken or unreachable, or refusing the deployment's own credentials (401, 403: the
#: gateway's key for that upstream, which the caller can do nothing about).
RETRYABLE_STATUSES = frozenset({401, 403, 408, 409, 429, 500, 502, 503, 504, 529})
#: The deployment's fault: counted against its circuit breaker.
_DEPLOYMENT_FAULTS = frozenset({401, 403, 408})

_CONTEXT_CODES = frozenset({"context_length_exceeded", "string_above_max_length"})
_CONTEXT_WORDS = (
    "context length",
    "context_length",
    "context window",
    "prompt is too long",
    "maximum context",
    "input token count",
    "too many tokens",
    "exceeds the maximum number of tokens",
)
_POLICY_CODES = frozenset({"content_policy_violation", "content_filter", "content_filtered"})
_POLICY_WORDS = ("content policy", "content management policy", "content filter")

#: Fallback kinds.
CONTEXT_WINDOW, CONTENT_POLICY, UNAVAILABLE = "context_window", "content_policy", "unavailable"


def retryable(error: GatewayError) -> bool:
    return error.status in RETRYABLE_STATUSES


def outcome(error: BaseException) -> Outcome:
    """The breaker's reading of a failed attempt: ``failure`` (the deployment is
    unwell), or ``neutral`` (the request's fault, a rate limit, a cancelled attempt)."""
    if isinstance(error, UpstreamTimeoutError | UpstreamUnavailableError | UpstreamProtocolError):
        return "failure"
    if isinstance(error, GatewayError):
        return "failure" if error.status >= 500 or error.status in _DEPLOYMENT_FAULTS else "neutral"
    if isinstance(error, asyncio.CancelledError | GeneratorExit):
        return "neutral"
    return "failure"


def fallback_kind(error: GatewayError) -> str | None:
    """Which fallback list a failure calls for (None: none; the error is the answer)."""
    if error.status in (400, 413, 422):
        code = (error.code or "").lower()
        message = error.message.lower()
        if code in _CONTEXT_CODES or any(word in message for word in _CONTEXT_WORDS):
            return CONTEXT_WINDOW
        if code in _POLICY_CODES or any(word in message for word in _POLICY_WORDS):
            return CONTENT_POLICY
        return None
    if retryable(error):
        return UNAVAILABLE
    return None
