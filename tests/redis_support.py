"""Whether the test Redis (127.0.0.1:6379) is there; tests skip or fail as the rules say."""

from __future__ import annotations

import os
import socket
from functools import cache

import pytest

REDIS_URL = "redis://127.0.0.1:6379/0"


@cache
def redis_available() -> bool:
    try:
        with socket.create_connection(("127.0.0.1", 6379), timeout=1) as connection:
            connection.sendall(b"PING\r\n")
            return connection.recv(16).startswith(b"+PONG")
    except OSError:
        return False


def require_redis() -> str:
    if not redis_available():
        if os.environ.get("GATEWISE_REQUIRE_SERVICES"):
            pytest.fail("Redis at 127.0.0.1:6379 is required but unreachable")
        pytest.skip(
            "Redis at 127.0.0.1:6379 is unreachable (set GATEWISE_REQUIRE_SERVICES to fail)"
        )
    return REDIS_URL
