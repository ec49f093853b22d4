"""Fixtures the routing end-to-end tests share (``routing_support`` holds the rest)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.e2e.routing_support import Upstreams, upstreams


@pytest.fixture(scope="module")
def _fakes() -> Iterator[Upstreams]:
    with upstreams() as started:
        yield started


@pytest.fixture
def fakes(_fakes: Upstreams) -> Upstreams:
    """The module's fake upstreams (a, b, c, and an Anthropic one), reset for each test."""
    _fakes.reset()
    return _fakes
