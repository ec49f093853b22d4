"""``WebhookReceiver``: a loopback endpoint that records webhook deliveries.

Why: alert delivery must be tested against a real HTTP server that can say
no -- answer 500 or 429 with ``retry-after``, reset the connection, or never
answer -- a given number of times before accepting. Every request is
recorded (with the monotonic time it arrived and what the receiver did), and
``valid_signature`` checks one with the same helper a real receiver would use.
Run it in the test's loop (``async with``) or with ``run_in_thread``.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from dataclasses import dataclass
from typing import Any

import orjson

from gatewise.alerts.webhooks import verify_signature
from gatewise.testing.httpserver import Request, Response
from gatewise.testing.loopback import LoopbackServer

__all__ = ["ReceivedDelivery", "WebhookReceiver"]


@dataclass(frozen=True, slots=True)
class _Failure:
    status: int  # 0: reset the connection; -1: never answer
    retry_after: str | None = None


@dataclass(frozen=True, slots=True)
class ReceivedDelivery:
    """One request as received, and the answer it got (0 = reset, -1 = no answer)."""

    path: str
    headers: dict[str, str]
    body: bytes
    arrived: float  # time.monotonic()
    answered: int

    @property
    def json(self) -> Any:
        return orjson.loads(self.body)

    @property
    def delivery_id(self) -> str:
        return self.headers.get("x-gatewise-delivery", "")

    def valid_signature(self, secret: str, tolerance: float = 300) -> bool:
        return verify_signature(
            secret,
            self.headers.get("x-gatewise-timestamp", ""),
            self.body,
            self.headers.get("x-gatewise-signature", ""),
            tolerance,
        )


class WebhookReceiver(LoopbackServer):
    """Answers 204 unless told to fail the next deliveries."""

    server_name = "the webhook receiver"

    def __init__(self) -> None:
        super().__init__()
        self.received: list[ReceivedDelivery] = []
        self._failures: deque[_Failure] = deque()
        self._arrival = asyncio.Event()

    # -- lifecycle ----------------------------------------------------------
    async def start(
        self, host: str = "127.0.0.1", port: int = 0, *, reuse_port: bool = False
    ) -> str:
        url = await super().start(host, port, reuse_port=reuse_port)
        self._arrival = asyncio.Event()  # bound to the loop the receiver runs in
        return url

    @property
    def url(self) -> str:
        return self.root_url + "/hooks/gatewise"

    # -- scripting ----------------------------------------------------------------
    def fail_next(self, count: int, status: int = 500, *, retry_after: str | None = None) -> None:
        """Answer the next ``count`` deliveries with ``status`` (after any already queued)."""
        self._failures.extend([_Failure(status, retry_after)] * count)

    def reset_next(self, count: int) -> None:
        """Reset the connection (TCP RST) on the next ``count`` deliveries."""
        self._failures.extend([_Failure(0)] * count)

    def hang_next(self, count: int) -> None:
        """Never answer the next ``count`` deliveries."""
        self._failures.extend([_Failure(-1)] * count)

    @property
    def accepted(self) -> list[ReceivedDelivery]:
        return [d for d in self.received if 200 <= d.answered < 300]

    async def wait_for(self, count: int, timeout: float = 5.0) -> list[ReceivedDelivery]:
        """Wait until at least ``count`` requests arrived (any answer); return them all."""
        async with asyncio.timeout(timeout):
            while len(self.received) < count:
                self._arrival.clear()
                await self._arrival.wait()
        return list(self.received)

    # -- serving ------------------------------------------------------------------
    async def handle(self, request: Request, response: Response) -> None:
        failure = self._failures.popleft() if self._failures else None
        answer = 204 if failure is None else failure.status
        self.received.append(
            ReceivedDelivery(request.path, request.headers, request.body, time.monotonic(), answer)
        )
        self._arrival.set()
        if failure is None:
            response.send(204, [], b"")
        elif failure.status == 0:
            response.abort()
        elif failure.status == -1:
            await asyncio.Event().wait()  # until the client goes away or the server closes
        else:
            headers = [("content-type", "text/plain")]
            if failure.retry_after is not None:
                headers.append(("retry-after", failure.retry_after))
            response.send(failure.status, headers, b"no thanks")
