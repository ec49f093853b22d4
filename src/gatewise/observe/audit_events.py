"""What the gateway itself adds to the audit trail: guardrail blocks and config loads.

The request path only calls ``GuardrailBlocks.finished``: a look at the request's verdicts
(usually none), and for a blocked request a token-bucket check and an append to a queue.
``AuditWriter`` chains the queued entries into ``audit_log`` in batches from a background
task (one transaction, one lock of the chain's head per batch); ``close`` writes what is
still queued. An entry names the guardrail, its category, where it fired, the caller and
the request id: never the text that was blocked, nor the matched value.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import os
import socket
import time
from collections import deque
from typing import TYPE_CHECKING, Any

from gatewise import __version__
from gatewise.config.secrets import LITERAL_SECRET_PATTERNS
from gatewise.core.context import RequestContext
from gatewise.corridor.observer import Observer
from gatewise.store import audit_chain
from gatewise.store.engine import describe_error

if TYPE_CHECKING:
    from gatewise.config.models import Config
    from gatewise.store.engine import Database

log = logging.getLogger("gatewise.audit")

_WARN_EVERY = 10.0


class AuditWriter:
    """A bounded queue of audit entries, chained into the database in the background."""

    def __init__(
        self,
        database: Database,
        *,
        max_queue: int = 10_000,
        batch_size: int = 500,
        flush_interval: float = 0.5,
        max_retries: int = 5,
        retry_delay: float = 0.5,
    ) -> None:
        self._database = database
        self._max_queue = max_queue
        self._batch_size = batch_size
        self._flush_interval = flush_interval
        self._max_retries = max_retries
        self._retry_delay = retry_delay
        self._queue: deque[audit_chain.Entry] = deque()
        self._wake: asyncio.Event | None = None
        self._idle: asyncio.Event | None = None
        self._task: asyncio.Task[None] | None = None
        self._closing = False
        self._warned_at = 0.0
        #: Entries written, and entries lost (queue full, or the database down too long).
        self.written = 0
        self.dropped = 0

    def start(self) -> None:
        self._wake, self._idle = asyncio.Event(), asyncio.Event()
        if not self._queue:
            self._idle.set()
        self._task = asyncio.ensure_future(self._run())

    def submit(self, entry: audit_chain.Entry) -> bool:
        """Queue one entry (never waits); False when the queue was full and it was dropped."""
        if len(self._queue) >= self._max_queue or self._closing:
            self.dropped += 1
            self._warn_dropped()
            return False
        self._queue.append(entry)
        if self._idle is not None:
            self._idle.clear()
        if len(self._queue) >= self._batch_size and self._wake is not None:
            self._wake.set()
        return True

    async def flush(self, timeout: float = 10.0) -> None:
        """Wait until everything queued so far is written (tests, and ``close``)."""
        if self._wake is None or self._idle is None:
            return
        if self._queue or not self._idle.is_set():
            self._wake.set()
            await asyncio.wait_for(self._idle.wait(), timeout)

    async def close(self) -> None:
        self._closing = True
        task, self._task = self._task, None
        if task is None:
            return
        assert self._wake is not None
        self._wake.set()
        await asyncio.gather(task, return_exceptions=True)

    async def _run(self) -> None:
        assert self._wake is not None and self._idle is not None
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self._flush_interval)
            self._wake.clear()
            while self._queue:
                count = min(len(self._queue), self._batch_size)
                await self._write([self._queue.popleft() for _ in range(count)])
            self._idle.set()
            if self._closing:
                return

    async def _write(self, batch: list[audit_chain.Entry]) -> None:
        for attempt in range(self._max_retries + 1):
            try:
                async with self._database.engine.begin() as connection:
                    rows = await audit_chain.append(connection, batch)
            except Exception as exc:
                if attempt == self._max_retries or (self._closing and attempt >= 1):
                    self.dropped += len(batch)
                    log.error(
                        "%d audit entries could not be written: %s", len(batch), describe_error(exc)
                    )
                    return
                await asyncio.sleep(self._retry_delay * 2**attempt)
                continue
            self.written += len(rows)
            audit_chain.published(self._database, rows)
            return

    def _warn_dropped(self) -> None:
        now = time.monotonic()
        if now - self._warned_at >= _WARN_EVERY:
            self._warned_at = now
            log.warning("audit queue full: %d entries dropped so far", self.dropped)


class GuardrailBlocks(Observer):
    """A request a guardrail blocked becomes an audit entry (action ``guardrail_block``),
    at most ``per_second`` on average (``burst`` at once) per worker: a flood of blocked
    prompts cannot flood the trail; what is left out is counted in a warning."""

    def __init__(self, writer: AuditWriter, *, per_second: float = 10.0, burst: int = 100) -> None:
        self._writer = writer
        self._rate = per_second
        self._burst = float(burst)
        self._tokens = float(burst)
        self._filled_at = time.monotonic()
        #: Blocks not audited because the rate was exceeded (since the last warning).
        self.skipped = 0

    def finished(self, ctx: RequestContext) -> None:
        verdicts = ctx.guardrails
        if not verdicts:
            return
        blocks = [v for v in verdicts if v.action == "block"]
        if not blocks or not self._take_token():
            return
        first = blocks[0]
        principal = ctx.principal
        tenant = principal.tenant_id if principal is not None else None
        self._writer.submit(
            {
                "at": time.time(),
                "actor": principal.name[:512] if principal is not None else "anonymous",
                "actor_tenant_id": tenant,
                "action": "guardrail_block",
                "object_type": "guardrail",
                "object_id": first.guardrail[:64],
                "tenant_id": tenant,
                "before": None,
                "after": {
                    "category": first.category,
                    "direction": first.direction,
                    "index": first.index,
                    "score": first.score,
                    "blocks": [
                        {"guardrail": v.guardrail, "category": v.category, "direction": v.direction}
                        for v in blocks
                    ],
                    "profile": ctx.guardrail_profile,
                    "model": ctx.model[:256],
                    "operation": ctx.operation,
                    "path": ctx.path[:256],
                    "status": ctx.status,
                },
                "request_id": ctx.request_id[:128],
            }
        )

    def _take_token(self) -> bool:
        now = time.monotonic()
        self._tokens = min(self._burst, self._tokens + (now - self._filled_at) * self._rate)
        self._filled_at = now
        if self._tokens >= 1:
            self._tokens -= 1
            if self.skipped:
                log.warning("%d guardrail blocks were not audited (too many)", self.skipped)
                self.skipped = 0
            return True
        self.skipped += 1
        return False


# --- config loads -----------------------------------------------------------------------------


def config_digest(config: Config) -> str:
    """SHA-256 of the config as validated (secret references, never their values)."""
    return hashlib.sha256(config.model_dump_json().encode()).hexdigest()


def _process() -> dict[str, Any]:
    return {"pid": os.getpid(), "host": socket.gethostname()[:253], "version": __version__}


def config_loaded(config: Config, source: str) -> audit_chain.Entry:
    """The entry for a config a worker starts (or a reload switches) to."""
    digest = config_digest(config)
    return {
        "at": time.time(),
        "actor": "gateway",
        "actor_tenant_id": None,
        "action": "config_load",
        "object_type": "config",
        "object_id": digest,
        "tenant_id": None,
        "before": None,
        "after": {"sha256": digest, "source": source[:1024], **_process()},
        "request_id": None,
    }


def config_rejected(
    source: str, error: str, *, text: bytes | None = None, serving: Config | None = None
) -> audit_chain.Entry:
    """The entry for a reload that was refused (``error`` says why; ``serving`` still serves).
    ``text`` is the refused file's content: only its SHA-256 is kept; anything in ``error``
    shaped like a credential is blanked."""
    return {
        "at": time.time(),
        "actor": "gateway",
        "actor_tenant_id": None,
        "action": "config_reject",
        "object_type": "config",
        "object_id": hashlib.sha256(text).hexdigest() if text is not None else "",
        "tenant_id": None,
        "before": {"sha256": config_digest(serving)} if serving is not None else None,
        "after": {"source": source[:1024], "error": _blank_secrets(error)[:2000], **_process()},
        "request_id": None,
    }


def _blank_secrets(text: str) -> str:
    for _kind, pattern in LITERAL_SECRET_PATTERNS:
        text = pattern.sub("[secret]", text)
    return text
