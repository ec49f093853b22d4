"""The ``webhook`` guardrail: an external HTTP service decides.

The gateway POSTs ``{"text", "role", "guardrail"}`` as JSON and expects
``{"findings": [{"category", "score", "spans": [{"start","end","type"}]}]}``
(``spans`` optional). A service that cannot be reached within the timeout, or
answers anything else, fails closed (a ``service_unavailable`` finding with
score 1, which a rule's action then applies) unless ``on_error: open``, where
the text passes. Connections are pooled by the gateway's own HTTP client.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping, Sequence
from urllib.parse import urlsplit

import orjson

from gatewise.guardrails.base import Finding, Span, TextRole
from gatewise.net.http1 import ClientError, HTTPClient, Origin

log = logging.getLogger("gatewise")


class WebhookGuardrail:
    def __init__(
        self,
        name: str,
        url: str,
        *,
        headers: Mapping[str, str] | None = None,
        timeout_ms: int = 1000,
        fail_open: bool = False,
    ) -> None:
        self.name = name
        self._origin = Origin(url)
        parts = urlsplit(url)
        target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        extra = "".join(f"{k}: {v}\r\n" for k, v in (headers or {}).items())
        self._head = (
            f"POST {target} HTTP/1.1\r\nhost: {self._origin.host_header}\r\n"
            f"content-type: application/json\r\nuser-agent: gatewise\r\n{extra}"
        )
        self._timeout = timeout_ms / 1000.0
        self._fail_open = fail_open
        self._client: HTTPClient | None = None

    async def scan(self, text: str, role: TextRole) -> Sequence[Finding]:
        if self._client is None:
            self._client = HTTPClient(limit=64, connect_timeout=self._timeout)
        body = orjson.dumps({"text": text, "role": role, "guardrail": self.name})
        head = f"{self._head}content-length: {len(body)}\r\n\r\n".encode("latin-1")
        timeout = self._timeout
        try:
            async with asyncio.timeout(timeout):
                response = await self._client.request(
                    self._origin,
                    head,
                    body,
                    first_byte_timeout=timeout,
                    idle_timeout=timeout,
                    total_timeout=timeout,
                )
                data = await response.read()
            if response.status != 200:
                raise ValueError(f"status {response.status}")
            return self._findings(orjson.loads(data), len(text))
        except (ClientError, OSError, TimeoutError, ValueError, TypeError, KeyError) as error:
            log.warning("guardrail %s unavailable: %s", self.name, type(error).__name__)
            if self._fail_open:
                return []
            return [Finding(self.name, "service_unavailable", 1.0)]

    def _findings(self, answer: object, length: int) -> list[Finding]:
        if not isinstance(answer, dict) or not isinstance(answer.get("findings"), list):
            raise ValueError("no findings list")
        found: list[Finding] = []
        for item in answer["findings"]:
            score = float(item["score"])
            spans = tuple(
                Span(int(s["start"]), int(s["end"]), str(s.get("type", item["category"])))
                for s in item.get("spans", ())
                if 0 <= int(s["start"]) < int(s["end"]) <= length
            )
            found.append(
                Finding(self.name, str(item["category"]), min(max(score, 0.0), 1.0), spans)
            )
        return found

    async def close(self) -> None:
        if self._client is not None:
            await self._client.close()
