"""Upstream response heads, handed to the deployment that answered: its rate-limit
headers say how much headroom it has left (quota-aware routing).

Dispatch sets ``HEADERS_SINK`` to the attempt's deployment health while the attempt
runs; the provider's transport calls ``observe`` on every response head. A context
variable keeps providers free of routing: they never know which deployment they serve.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from contextvars import ContextVar
from typing import Protocol


class HeaderSink(Protocol):
    def observe_headers(self, headers: Mapping[str, str], now: float) -> None: ...


HEADERS_SINK: ContextVar[HeaderSink | None] = ContextVar("gatewise_upstream_heads", default=None)


def observe(headers: Mapping[str, str]) -> None:
    sink = HEADERS_SINK.get()
    if sink is not None:
        sink.observe_headers(headers, time.monotonic())
