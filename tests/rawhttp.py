"""A tiny blocking HTTP client for tests that need exact bytes, statuses and headers."""

from __future__ import annotations

import http.client
import json
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit


@dataclass
class Reply:
    status: int
    headers: dict[str, str]
    body: bytes

    @property
    def json(self) -> Any:
        return json.loads(self.body)


def request(
    method: str,
    url: str,
    body: bytes | dict[str, Any] | None = None,
    headers: dict[str, str] | None = None,
    timeout: float = 10.0,
) -> Reply:
    parts = urlsplit(url)
    connection = http.client.HTTPConnection(parts.hostname or "", parts.port, timeout=timeout)
    data = json.dumps(body).encode() if isinstance(body, dict) else body
    all_headers = {"content-type": "application/json", **(headers or {})}
    try:
        connection.request(
            method, parts.path + (f"?{parts.query}" if parts.query else ""), data, all_headers
        )
        response = connection.getresponse()
        payload = response.read()
        return Reply(response.status, {k.lower(): v for k, v in response.getheaders()}, payload)
    finally:
        connection.close()


def post(url: str, body: bytes | dict[str, Any], **kwargs: Any) -> Reply:
    return request("POST", url, body, **kwargs)
