"""Alerts as GitLab issues: one open issue per alert and period, later alerts as notes.

A ``gitlab_issue`` target turns an alert event into GitLab REST calls:

1. ``GET /api/v4/projects/:id/issues?state=opened&in=title&search=<marker>``
   finds an open issue whose title carries the alert's marker,
   ``[gatewise-alert:<budget>:<per>:<scope>:<period>]``;
2. if there is one, ``POST .../issues/:iid/notes`` adds the new alert to it;
3. else ``POST .../issues`` opens one (with the configured labels, confidential
   by default).

The marker is in the title rather than a label so that alerts do not litter the
project with one label per period. A new period has a new marker, hence a new
issue. Each target has one worker with a bounded queue, so alerts of one process
never race each other into two issues; across replicas the threshold tracker
already lets only one replica send each threshold.

Never on the request's path: ``send()`` only queues. Every API call is retried on
network errors, 408, 429 and 5xx with backoff (``retry-after`` honoured); any other
4xx is final and logged with the token's *reference*, never its value.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Callable, Mapping, Sequence
from typing import Any
from urllib.parse import quote, urlsplit

import orjson

from gatewise.alerts.webhooks import RETRYABLE_STATUSES, backoff_delay, parse_retry_after
from gatewise.config.alerts import GitLabIssueConfig
from gatewise.net.http1 import ClientError, HTTPClient, Origin

__all__ = ["GitLabIssues", "alert_marker", "issue_text"]

log = logging.getLogger(__name__)

_STOP = object()


def alert_marker(event: Mapping[str, Any]) -> str:
    """The de-duplication key of an alert: same alert and period, same marker."""
    if "alert_key" in event:
        key = str(event["alert_key"])
    elif event.get("type") == "budget.threshold":
        scope = event.get("scope") or {}
        key = f"{event.get('budget')}:{scope.get('per')}:{scope.get('id')}:{event.get('period')}"
    else:
        key = f"{event.get('type')}:{event.get('period')}"
    return "gatewise-alert:" + "".join(ch for ch in key if ch.isprintable() and ch not in "[]")


def issue_text(event: Mapping[str, Any]) -> tuple[str, str]:
    """A one-line summary of the alert, and its details as a Markdown table."""
    if event.get("type") == "budget.threshold":
        scope = event.get("scope") or {}
        summary = (
            f"Budget {event.get('budget')} reached {event.get('threshold_percent')}% "
            f"for {scope.get('per')} {scope.get('id')} ({event.get('period')})"
        )
    else:
        summary = str(event.get("summary") or f"Gatewise alert {event.get('type')}")
    rows = "\n".join(
        f"| {key} | {_cell(value)} |" for key, value in event.items() if key != "alert_key"
    )
    return summary, f"{summary}\n\n| field | value |\n| --- | --- |\n{rows}\n"


def _cell(value: Any) -> str:
    text = value if isinstance(value, str) else orjson.dumps(value).decode()
    return text.replace("|", "\\|").replace("\n", " ")


class _Answer:
    __slots__ = ("body", "retry_after", "status")

    def __init__(self, status: int, body: bytes = b"", retry_after: float | None = None) -> None:
        self.status = status
        self.body = body
        self.retry_after = retry_after


class _GiveUp(Exception):
    """An API call failed for good; the message is safe to log."""


class _Target:
    """One configured project: where, with which token, and its queue of alerts."""

    def __init__(self, config: GitLabIssueConfig, token: str, queue_size: int) -> None:
        self.config = config
        self.token = token
        self.origin = Origin(config.url)
        self.base = (urlsplit(config.url).path.rstrip("/")) + (
            f"/api/v4/projects/{quote(config.project, safe='')}"
        )
        self.queue: asyncio.Queue[object] = asyncio.Queue(queue_size)
        self.worker: asyncio.Task[None] | None = None


class GitLabIssues:
    """Opens or updates GitLab issues for alerts, in the background."""

    def __init__(
        self,
        configs: Sequence[GitLabIssueConfig],
        *,
        resolve_secret: Callable[[str], str],
        client_factory: Callable[[], HTTPClient] | None = None,
        base_delay: float = 0.5,
        max_delay: float = 30.0,
        max_pending: int = 1000,
        close_timeout: float = 5.0,
        rng: Callable[[], float] = random.random,
    ) -> None:
        self._configs = list(configs)
        self._resolve_secret = resolve_secret
        self._client_factory = client_factory
        self._base_delay = base_delay
        self._max_delay = max_delay
        self._max_pending = max_pending
        self._close_timeout = close_timeout
        self._rng = rng
        self._targets: dict[str, _Target] = {}
        self._client: HTTPClient | None = None
        self._busy = 0
        #: Counters for tests and metrics.
        self.opened = 0
        self.noted = 0
        self.failed = 0

    @property
    def names(self) -> list[str]:
        return [config.name for config in self._configs]

    @property
    def pending(self) -> int:
        """Alerts queued or being handled."""
        return self._busy

    async def start(self) -> None:
        """Resolve every token now (a missing one fails start-up) and start the workers."""
        targets: dict[str, _Target] = {}
        for config in self._configs:
            token = self._resolve_secret(config.token)
            if not token or any(not " " < ch <= "~" for ch in token):
                raise ValueError(
                    f"gitlab_issue {config.name!r}: the token {config.token} is empty or has "
                    "characters a header cannot carry"
                )
            targets[config.name] = _Target(config, token, self._max_pending)
        self._targets = targets
        if self._client_factory is not None:
            self._client = self._client_factory()
        else:
            connect = max((c.timeout_seconds for c in self._configs), default=10.0)
            self._client = HTTPClient(limit=4, connect_timeout=connect)
        loop = asyncio.get_running_loop()
        for target in self._targets.values():
            target.worker = loop.create_task(self._work(target))

    def send(self, name: str, event: Mapping[str, Any]) -> None:
        """Queue ``event`` for target ``name``; returns at once, never raises."""
        target = self._targets.get(name)
        if target is None or target.worker is None or target.worker.done():
            log.warning("gitlab_issue %r: not running; alert %s dropped", name, event.get("type"))
            return
        try:
            target.queue.put_nowait(dict(event))
        except asyncio.QueueFull:
            log.warning("gitlab_issue %r: queue full; alert %s dropped", name, event.get("type"))
            return
        self._busy += 1

    async def join(self, timeout: float | None = None) -> bool:
        """Wait until every queued alert is handled (for tests); True if in time."""
        try:
            async with asyncio.timeout(timeout):
                for target in self._targets.values():
                    await target.queue.join()
        except TimeoutError:
            return False
        return True

    async def close(self) -> None:
        """Handle what is queued (up to ``close_timeout`` seconds), then stop."""
        workers = [t.worker for t in self._targets.values() if t.worker is not None]
        for target in self._targets.values():
            try:
                target.queue.put_nowait(_STOP)
            except asyncio.QueueFull:
                if target.worker is not None:
                    target.worker.cancel()
        if workers:
            _done, late = await asyncio.wait(workers, timeout=self._close_timeout)
            for task in late:
                task.cancel()
            if late:
                log.warning("gitlab_issue: alerts abandoned at shutdown")
                await asyncio.gather(*late, return_exceptions=True)
        client, self._client = self._client, None
        if client is not None:
            await client.close()

    # -- one alert -------------------------------------------------------------
    async def _work(self, target: _Target) -> None:
        while True:
            item = await target.queue.get()
            try:
                if item is _STOP:
                    return
                assert isinstance(item, dict)
                await self._handle(target, item)
            except _GiveUp as exc:
                self.failed += 1
                log.error("gitlab_issue %r: alert given up: %s", target.config.name, exc)
            except Exception:  # a worker must survive anything one alert does
                self.failed += 1
                log.exception("gitlab_issue %r: alert failed", target.config.name)
            finally:
                if item is not _STOP:
                    self._busy -= 1
                target.queue.task_done()

    async def _handle(self, target: _Target, event: dict[str, Any]) -> None:
        marker = alert_marker(event)
        summary, details = issue_text(event)
        query = f"state=opened&in=title&per_page=100&search={quote(marker, safe='')}"
        found = orjson.loads(await self._call(target, "GET", f"/issues?{query}"))
        tag = f"[{marker}]"
        issue = next(
            (i for i in found if isinstance(i, dict) and tag in str(i.get("title", ""))), None
        )
        if issue is not None:
            note = {"body": details}
            await self._call(target, "POST", f"/issues/{int(issue['iid'])}/notes", note)
            self.noted += 1
            log.info(
                "gitlab_issue %r: noted %s on issue #%s", target.config.name, marker, issue["iid"]
            )
            return
        config = target.config
        body: dict[str, Any] = {
            "title": f"{summary} {tag}",
            "description": details,
            "labels": ",".join(config.labels),
            "confidential": config.confidential,
        }
        created = orjson.loads(await self._call(target, "POST", "/issues", body))
        self.opened += 1
        log.info(
            "gitlab_issue %r: opened issue #%s for %s",
            config.name,
            created.get("iid") if isinstance(created, dict) else "?",
            marker,
        )

    async def _call(
        self, target: _Target, method: str, path: str, payload: Mapping[str, Any] | None = None
    ) -> bytes:
        """One API call, retried while GitLab may yet accept it; the answer's body."""
        config = target.config
        body = b"" if payload is None else orjson.dumps(payload)
        route = path.split("?", 1)[0]
        answer = _Answer(0)
        for attempt in range(1, config.max_attempts + 1):
            answer = await self._attempt(target, method, target.base + path, body)
            if 200 <= answer.status < 300:
                return answer.body
            retryable = (
                answer.status == 0 or answer.status in RETRYABLE_STATUSES or answer.status >= 500
            )
            if not retryable or attempt == config.max_attempts:
                break
            delay = backoff_delay(
                attempt, base=self._base_delay, cap=self._max_delay, jitter=self._rng()
            )
            if answer.retry_after is not None:
                delay = min(answer.retry_after, self._max_delay)
            await asyncio.sleep(delay)
        what = "no answer" if answer.status == 0 else f"HTTP {answer.status}"
        hint = ""
        if answer.status in (401, 403):
            hint = f" (check the token {config.token} and its api scope)"
        elif answer.status == 404:
            hint = f" (check the project {config.project!r})"
        raise _GiveUp(f"{method} {route}: {what} after {attempt} attempt(s){hint}")

    async def _attempt(
        self, target: _Target, method: str, target_path: str, body: bytes
    ) -> _Answer:
        client = self._client
        if client is None:
            return _Answer(0)
        head = (
            f"{method} {target_path} HTTP/1.1\r\nhost: {target.origin.host_header}\r\n"
            f"private-token: {target.token}\r\nuser-agent: gatewise\r\n"
            "accept: application/json\r\n"
            + (f"content-type: application/json\r\ncontent-length: {len(body)}\r\n" if body else "")
            + "\r\n"
        ).encode("latin-1")
        timeout = target.config.timeout_seconds
        try:
            async with asyncio.timeout(timeout):
                response = await client.request(
                    target.origin,
                    head,
                    body,
                    first_byte_timeout=timeout,
                    idle_timeout=timeout,
                    total_timeout=timeout,
                )
                data = await response.read()
        except (ClientError, OSError, TimeoutError) as exc:
            log.info(
                "gitlab_issue %r: %s %s failed: %s",
                target.config.name,
                method,
                target_path.split("?", 1)[0],
                type(exc).__name__,
            )
            return _Answer(0)
        return _Answer(
            response.status, data, parse_retry_after(response.headers.get("retry-after"))
        )
