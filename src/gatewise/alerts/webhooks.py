"""Signed webhook deliveries, retried with backoff, never on the request's path.

``send()`` only queues a task; the task POSTs the event as JSON and retries
network errors, 408, 429 and 5xx with exponential backoff and jitter (honouring
``retry-after``), up to the webhook's ``max_attempts``. Other 4xx answers are
final: the receiver has said it will never accept this body.

Every attempt is signed. Headers::

    x-gatewise-event: budget.threshold
    x-gatewise-delivery: <uuid, the same on every retry: receivers de-duplicate on it>
    x-gatewise-timestamp: <unix seconds of this attempt>
    x-gatewise-signature: sha256=<hex HMAC-SHA256(secret, f"{timestamp}.{body}")>

How a receiver verifies (``verify_signature`` does exactly this): take the raw
body bytes as received (before any JSON parsing), compute
``HMAC-SHA256(secret, timestamp + "." + body)``, compare it in constant time
with the signature header, and reject a timestamp more than five minutes from
its own clock. The timestamp is inside the signed string, so a captured
delivery cannot be replayed later with a fresh timestamp.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import logging
import random
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from email.utils import parsedate_to_datetime
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import orjson

from gatewise.config.alerts import GitLabIssueConfig, WebhookConfig
from gatewise.net.http1 import ClientError, HTTPClient, Origin

if TYPE_CHECKING:
    from gatewise.alerts.gitlab import GitLabIssues

__all__ = [
    "WebhookSender",
    "backoff_delay",
    "parse_retry_after",
    "sign",
    "verify_signature",
]

log = logging.getLogger(__name__)

RETRYABLE_STATUSES = frozenset({408, 429})
SIGNATURE_PREFIX = "sha256="


def sign(secret: str, timestamp: int | str, body: bytes) -> str:
    """The ``x-gatewise-signature`` value for ``body`` sent at ``timestamp``."""
    message = str(timestamp).encode("ascii") + b"." + body
    digest = hmac.new(secret.encode("utf-8"), message, hashlib.sha256).hexdigest()
    return SIGNATURE_PREFIX + digest


def verify_signature(
    secret: str,
    timestamp: str | int,
    body: bytes,
    header: str,
    tolerance: float = 300,
    *,
    now: float | None = None,
) -> bool:
    """True when ``header`` signs ``body`` at ``timestamp`` and the timestamp is fresh.

    ``timestamp`` is the ``x-gatewise-timestamp`` header, ``body`` the raw bytes
    received, ``tolerance`` the seconds of clock difference accepted either way.
    """
    try:
        sent_at = int(timestamp)
    except (TypeError, ValueError):
        return False
    current = time.time() if now is None else now
    if abs(current - sent_at) > tolerance:
        return False
    expected = sign(secret, sent_at, body)
    return hmac.compare_digest(expected.encode("ascii"), header.strip().encode("latin-1"))


def backoff_delay(
    attempt: int,
    *,
    base: float = 0.5,
    factor: float = 2.0,
    cap: float = 60.0,
    jitter: float = 1.0,
) -> float:
    """Seconds to wait after failed attempt number ``attempt`` (1-based).

    ``base * factor**(attempt-1)``, capped, then "equal jitter": a uniform
    pick in the upper half, so retries spread out yet still grow. ``jitter``
    is the random draw in [0, 1] (1.0 gives the full delay).
    """
    full = min(cap, base * factor ** max(attempt - 1, 0))
    return full / 2 + full / 2 * min(max(jitter, 0.0), 1.0)


def parse_retry_after(value: str | None, *, now: float | None = None) -> float | None:
    """A ``retry-after`` header (seconds or an HTTP date) as seconds from now, or None."""
    if not value:
        return None
    text = value.strip()
    try:
        return max(float(text), 0.0)
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return None
    current = time.time() if now is None else now
    return max(when.timestamp() - current, 0.0)


def _header_safe(value: str) -> str:
    """Keep a header value to printable ASCII so no event can inject a header."""
    return "".join(ch for ch in value if " " <= ch <= "~")[:200]


class _Hook:
    """One configured webhook, resolved: origin, request target and key."""

    __slots__ = ("config", "head_prefix", "origin", "secret")

    def __init__(self, config: WebhookConfig, secret: str) -> None:
        self.config = config
        self.secret = secret
        self.origin = Origin(config.url)
        parts = urlsplit(config.url)
        target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        self.head_prefix = (
            f"POST {target} HTTP/1.1\r\nhost: {self.origin.host_header}\r\n"
            "content-type: application/json\r\nuser-agent: gatewise\r\n"
        )


class _Attempt:
    """What one attempt produced: a status (0 for a network error) and the wait it asks for."""

    __slots__ = ("error", "retry_after", "status")

    def __init__(self, status: int, retry_after: float | None = None, error: str = "") -> None:
        self.status = status
        self.retry_after = retry_after
        self.error = error

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300

    @property
    def retryable(self) -> bool:
        return self.status == 0 or self.status in RETRYABLE_STATUSES or self.status >= 500

    def describe(self) -> str:
        return self.error if self.status == 0 else f"HTTP {self.status}"


class WebhookSender:
    """Queues deliveries to the configured webhooks and runs them in the background."""

    def __init__(
        self,
        configs: Sequence[WebhookConfig | GitLabIssueConfig],
        *,
        resolve_secret: Callable[[str], str],
        client_factory: Callable[[], HTTPClient] | None = None,
        base_delay: float = 0.5,
        backoff_factor: float = 2.0,
        max_delay: float = 60.0,
        close_timeout: float = 5.0,
        max_pending: int = 1000,
        rng: Callable[[], float] = random.random,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._configs = [c for c in configs if isinstance(c, WebhookConfig)]
        gitlab = [c for c in configs if isinstance(c, GitLabIssueConfig)]
        # ``gitlab_issue`` targets: the same send(), GitLab's REST API behind it.
        self._gitlab: GitLabIssues | None = None
        if gitlab:
            from gatewise.alerts.gitlab import GitLabIssues

            self._gitlab = GitLabIssues(gitlab, resolve_secret=resolve_secret)
        self._resolve_secret = resolve_secret
        self._client_factory = client_factory
        self._base_delay = base_delay
        self._factor = backoff_factor
        self._max_delay = max_delay
        self._close_timeout = close_timeout
        self._max_pending = max_pending
        self._rng = rng
        self._clock = clock  # the wall clock stamped on (and signed into) each attempt
        self._hooks: dict[str, _Hook] = {}
        self._client: HTTPClient | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._closing: asyncio.Event | None = None
        #: Counters for tests and metrics.
        self.delivered = 0
        self.failed = 0

    @property
    def names(self) -> list[str]:
        gitlab = self._gitlab.names if self._gitlab is not None else []
        return [config.name for config in self._configs] + gitlab

    @property
    def gitlab(self) -> GitLabIssues | None:
        """The ``gitlab_issue`` targets' sender, if any are configured."""
        return self._gitlab

    @property
    def pending(self) -> int:
        """Deliveries queued or in flight."""
        return len(self._tasks) + (self._gitlab.pending if self._gitlab is not None else 0)

    async def start(self) -> None:
        """Resolve every secret now (a missing one fails start-up) and open the client."""
        self._hooks = {c.name: _Hook(c, self._resolve_secret(c.secret)) for c in self._configs}
        if self._client_factory is not None:
            self._client = self._client_factory()
        else:
            connect = max((c.timeout_seconds for c in self._configs), default=5.0)
            self._client = HTTPClient(limit=8, connect_timeout=connect)
        self._closing = asyncio.Event()
        if self._gitlab is not None:
            await self._gitlab.start()

    def send(self, webhook_name: str, event: Mapping[str, Any]) -> None:
        """Queue ``event`` for ``webhook_name``; returns at once, never raises for delivery."""
        if self._closing is None or self._closing.is_set():
            log.warning(
                "webhook %r: sender not running, event %s dropped", webhook_name, event.get("type")
            )
            return
        hook = self._hooks.get(webhook_name)
        if hook is None and self._gitlab is not None and webhook_name in self._gitlab.names:
            self._gitlab.send(webhook_name, event)
            return
        if hook is None:
            log.warning(
                "webhook %r is not configured; event %s dropped", webhook_name, event.get("type")
            )
            return
        if len(self._tasks) >= self._max_pending:
            log.warning(
                "webhook %r: %d deliveries pending; event %s dropped",
                webhook_name,
                len(self._tasks),
                event.get("type"),
            )
            return
        body = orjson.dumps(event)
        task = asyncio.get_running_loop().create_task(
            self._deliver(hook, str(event.get("type", "")), body, str(uuid.uuid4()))
        )
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def join(self, timeout: float | None = None) -> bool:
        """Wait until nothing is pending (for tests); True if that happened in time."""
        loop = asyncio.get_running_loop()
        deadline = None if timeout is None else loop.time() + timeout
        while self._tasks:
            left = None if deadline is None else deadline - loop.time()
            if left is not None and left <= 0:
                return False
            await asyncio.wait(set(self._tasks), timeout=left)
        if self._gitlab is not None:
            left = None if deadline is None else max(deadline - loop.time(), 0.0)
            return await self._gitlab.join(left)
        return True

    async def close(self) -> None:
        """Stop: retries waiting for backoff give up now; in-flight attempts get
        ``close_timeout`` seconds to finish, then are cancelled (and logged)."""
        if self._closing is not None:
            self._closing.set()
        tasks = set(self._tasks)
        if tasks:
            _done, late = await asyncio.wait(tasks, timeout=self._close_timeout)
            for task in late:
                task.cancel()
            if late:
                log.warning("webhooks: %d deliveries abandoned at shutdown", len(late))
                await asyncio.gather(*late, return_exceptions=True)
        if self._gitlab is not None:
            await self._gitlab.close()
        client, self._client = self._client, None
        if client is not None:
            await client.close()

    # -- one delivery ----------------------------------------------------------
    async def _deliver(self, hook: _Hook, event_type: str, body: bytes, delivery: str) -> None:
        config = hook.config
        try:
            for attempt in range(1, config.max_attempts + 1):
                result = await self._attempt(hook, event_type, body, delivery)
                if result.ok:
                    self.delivered += 1
                    log.info(
                        "webhook %r: delivery %s accepted (attempt %d)",
                        config.name,
                        delivery,
                        attempt,
                    )
                    return
                if not result.retryable:
                    self._give_up(hook, delivery, f"{result.describe()} is final", attempt)
                    return
                if attempt == config.max_attempts:
                    break
                delay = backoff_delay(
                    attempt,
                    base=self._base_delay,
                    factor=self._factor,
                    cap=self._max_delay,
                    jitter=self._rng(),
                )
                if result.retry_after is not None:
                    delay = min(result.retry_after, self._max_delay)
                log.info(
                    "webhook %r: delivery %s attempt %d failed (%s); retrying in %.2f s",
                    config.name,
                    delivery,
                    attempt,
                    result.describe(),
                    delay,
                )
                if await self._shutting_down_within(delay):
                    self._give_up(hook, delivery, "shutting down", attempt)
                    return
            self._give_up(hook, delivery, f"last error {result.describe()}", config.max_attempts)
        except asyncio.CancelledError:
            self.failed += 1
            raise

    async def _attempt(self, hook: _Hook, event_type: str, body: bytes, delivery: str) -> _Attempt:
        client = self._client
        if client is None:
            return _Attempt(0, error="sender closed")
        timestamp = int(self._clock())
        head = (
            f"{hook.head_prefix}x-gatewise-event: {_header_safe(event_type)}\r\n"
            f"x-gatewise-delivery: {delivery}\r\nx-gatewise-timestamp: {timestamp}\r\n"
            f"x-gatewise-signature: {sign(hook.secret, timestamp, body)}\r\n"
            f"content-length: {len(body)}\r\n\r\n"
        ).encode("latin-1")
        timeout = hook.config.timeout_seconds
        try:
            async with asyncio.timeout(timeout):
                response = await client.request(
                    hook.origin,
                    head,
                    body,
                    first_byte_timeout=timeout,
                    idle_timeout=timeout,
                    total_timeout=timeout,
                )
                await response.read()  # drain, so the connection can be reused
        except (ClientError, OSError, TimeoutError) as exc:
            return _Attempt(
                0, error=f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
            )
        return _Attempt(response.status, parse_retry_after(response.headers.get("retry-after")))

    async def _shutting_down_within(self, delay: float) -> bool:
        closing = self._closing
        if closing is None:
            return True
        try:
            await asyncio.wait_for(closing.wait(), timeout=delay)
        except TimeoutError:
            return False
        return True

    def _give_up(self, hook: _Hook, delivery: str, why: str, attempts: int) -> None:
        self.failed += 1
        log.error(
            "webhook %r: delivery %s given up after %d attempt(s): %s",
            hook.config.name,
            delivery,
            attempts,
            why,
        )
