"""Resilience end to end: retries and their backoff and budget, 429 cool-downs, circuit
breakers (seen through the admin API) and quota-aware routing, through a real gateway on
loopback in front of fake upstreams that count (and time) what they received.
"""

from __future__ import annotations

import itertools
import logging
import re
import time
from pathlib import Path
from typing import Any

import pytest

from gatewise.identity.roles import Role
from gatewise.store.identity import IdentityStore
from gatewise.testing import Scenario
from tests.e2e.routing_support import (
    MODEL,
    StartGateway,
    Upstreams,
    chat,
    config,
    deployment,
    served_by,
)
from tests.identity_seed import ACTOR, with_store
from tests.rawhttp import request

A, B = f"a/{MODEL}", f"b/{MODEL}"
ALWAYS = 1000  # Scenario.times for "every request of this test"


def two_deployments(fakes: Upstreams, **routing: Any) -> dict[str, Any]:
    return config(fakes, {"m": [deployment("a"), deployment("b")]}, routing=routing)


def retry_waits(caplog: pytest.LogCaptureFixture) -> list[float]:
    """The backoffs dispatch chose (``retry:N:Xms`` decisions in the access log), in s."""
    decisions = [d for r in caplog.records for d in getattr(r, "decisions", None) or ()]
    return [int(m.group(1)) / 1000 for d in decisions if (m := re.match(r"retry:\d+:(\d+)ms", d))]


def test_retries_back_off_within_bounds_then_succeed(
    fakes: Upstreams, start_gateway: StartGateway, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="gatewise")
    retry = {"attempts": 3, "backoff_ms": 50, "max_backoff_ms": 200}
    gateway = start_gateway(
        config(
            fakes, {"m": [deployment("a")]}, routing={"retry": retry}, server={"access_log": True}
        )
    )
    fakes.a.script(Scenario(status=500, times=2))
    started = time.monotonic()
    reply = chat(gateway, "m")
    elapsed = time.monotonic() - started
    assert reply.status == 200, reply.body
    assert reply.headers["x-gatewise-attempts"] == "3"
    assert len(fakes.a.requests) == 3
    # Full jitter: retry n waits uniformly up to min(max_backoff, backoff * 2**(n-1)).
    waits = retry_waits(caplog)
    assert len(waits) == 2
    assert waits[0] <= 0.050 and waits[1] <= 0.100
    arrivals = fakes.a.arrivals
    gaps = [later - earlier for earlier, later in itertools.pairwise(arrivals)]
    for gap, wait in zip(gaps, waits, strict=True):
        assert wait - 0.002 <= gap < wait + 0.1  # the wait was slept, and nothing more
    assert elapsed < 0.15 + 0.5


def test_a_retry_honours_a_short_retry_after_and_gives_up_on_a_long_one(
    fakes: Upstreams, start_gateway: StartGateway
) -> None:
    retry = {"attempts": 2, "backoff_ms": 0, "max_backoff_ms": 300}
    gateway = start_gateway(config(fakes, {"m": [deployment("a")]}, routing={"retry": retry}))
    fakes.a.script(Scenario(retry_after=0.2))  # a 429 with retry-after-ms: 200
    reply = chat(gateway, "m")
    assert reply.status == 200, reply.body
    arrivals = fakes.a.arrivals
    assert len(arrivals) == 2 and arrivals[1] - arrivals[0] >= 0.2

    # Longer than max_backoff_ms: no retry, the 429 (and its retry-after) is the answer.
    fakes.a.script(Scenario(retry_after=5))
    reply = chat(gateway, "m")
    assert reply.status == 429
    assert reply.headers["retry-after"] == "5"
    assert len(fakes.a.requests) == 3


def test_a_429_cools_its_deployment_down_for_its_retry_after(
    fakes: Upstreams, start_gateway: StartGateway
) -> None:
    gateway = start_gateway(two_deployments(fakes))
    fakes.a.script(Scenario(retry_after=0.5))  # retry-after-ms: 500 (and quota headers)
    limited = time.monotonic()
    reply = chat(gateway, "m")
    assert reply.status == 200, reply.body
    assert served_by(reply) == B and reply.headers["x-gatewise-attempts"] == "2"
    for _ in range(2):  # cooling down: straight to b
        reply = chat(gateway, "m")
        assert served_by(reply) == B and reply.headers["x-gatewise-attempts"] == "1"
    # Cooling is not "tried last": a gets nothing even when b fails.
    fakes.b.script(Scenario(status=503))
    assert chat(gateway, "m").status == 503
    assert time.monotonic() - limited < 0.5, "too slow to observe the cool-down"
    assert fakes.counts()[:2] == (1, 4)
    time.sleep(max(0.0, limited + 0.6 - time.monotonic()))
    reply = chat(gateway, "m")
    assert served_by(reply) == A and reply.headers["x-gatewise-attempts"] == "1"
    assert fakes.counts()[:2] == (2, 4)


def test_max_retry_after_s_caps_a_429_cool_down(
    fakes: Upstreams, start_gateway: StartGateway
) -> None:
    gateway = start_gateway(two_deployments(fakes, retry={"max_retry_after_s": 0.5}))
    # 30 s asked; the 429's x-ratelimit-* headers also say no requests left for 30 s.
    fakes.a.script(Scenario(retry_after=30))
    limited = time.monotonic()
    assert served_by(chat(gateway, "m")) == B
    fakes.b.script(Scenario(status=503))
    assert chat(gateway, "m").status == 503  # cooling: a is not tried at all
    assert time.monotonic() - limited < 0.5, "too slow to observe the cool-down"
    assert fakes.counts()[:2] == (1, 2)
    time.sleep(max(0.0, limited + 0.6 - time.monotonic()))
    # The cool-down is over after 0.5 s; its quota headers still put a last (not out).
    assert served_by(chat(gateway, "m")) == B
    fakes.b.script(Scenario(status=503))
    reply = chat(gateway, "m")
    assert served_by(reply) == A and reply.headers["x-gatewise-attempts"] == "2"
    assert fakes.counts()[:2] == (2, 4)


def test_a_retry_skips_a_deployment_still_cooling_down(
    fakes: Upstreams, start_gateway: StartGateway
) -> None:
    retry = {"attempts": 3, "backoff_ms": 0, "max_backoff_ms": 100}
    gateway = start_gateway(two_deployments(fakes, retry=retry))
    fakes.a.script(Scenario(retry_after=5))  # cools a for 5 s: far over max_backoff_ms
    fakes.b.script(Scenario(status=503))
    chat(gateway, "m")
    assert len(fakes.a.requests) == 1  # actual: 2, the second 1 ms after the 429


def test_the_retry_budget_caps_retries_of_an_always_failing_deployment(
    fakes: Upstreams, start_gateway: StartGateway
) -> None:
    routing = {
        "retry": {
            "attempts": 3,
            "backoff_ms": 0,
            "budget": {"ratio": 0.0, "window_s": 10, "min_per_s": 0.1},  # 1 retry per 10 s
        },
        "breaker": {"failures": 1000},  # keep the breaker out of it
    }
    gateway = start_gateway(config(fakes, {"m": [deployment("a")]}, routing=routing))
    fakes.a.script(Scenario(status=500, times=ALWAYS))
    reply = chat(gateway, "m")
    assert reply.status == 500
    assert reply.headers.get("x-gatewise-attempts") is None  # not served: no routing headers
    assert len(fakes.a.requests) == 2  # the first attempt and the one retry the budget has
    for calls in range(1, 5):
        assert chat(gateway, "m").status == 500
        assert len(fakes.a.requests) == 2 + calls  # one attempt each: the budget holds


async def platform_admin(store: IdentityStore) -> str:
    root = await store.create_user(ACTOR, email="root@ops.test", role=Role.PLATFORM_ADMIN)
    _, key = await store.create_key(ACTOR, name="root", user_id=root.id)
    return key


def test_the_circuit_breaker_opens_probes_and_closes(
    fakes: Upstreams, start_gateway: StartGateway, tmp_path: Path
) -> None:
    store_url = f"sqlite+aiosqlite:///{tmp_path}/gatewise.db"
    root = with_store(store_url, platform_admin)
    breaker = {"failures": 3, "cooldown_s": 1}
    gateway = start_gateway(
        {**two_deployments(fakes, breaker=breaker), "store": {"url": store_url}}
    )

    def listing() -> dict[str, dict[str, Any]]:
        headers = {"authorization": f"Bearer {root}"}
        reply = request("GET", gateway.url + "/admin/v1/deployments", headers=headers)
        assert reply.status == 200, reply.body
        return {d["id"]: d for d in reply.json["data"]}

    def states() -> dict[str, str]:
        return {id: d["state"] for id, d in listing().items()}

    # Open mode serves anonymous callers, never the admin API.
    assert request("GET", gateway.url + "/admin/v1/deployments").status == 401
    fakes.a.script(Scenario(status=500, times=ALWAYS))
    for _ in range(3):
        reply = chat(gateway, "m")
        assert served_by(reply) == B and reply.headers["x-gatewise-attempts"] == "2"
    opened = time.monotonic()
    assert states() == {A: "open", B: "closed"}
    broken = listing()[A]  # until when (epoch seconds), and why
    assert broken["healthy"] is False and broken["consecutive_failures"] == 3
    assert time.time() < broken["open_until"] <= time.time() + 1.0
    assert broken["requests"] == 3 and broken["error_rate"] == 1.0
    for _ in range(3):  # open: a is skipped
        reply = chat(gateway, "m")
        assert served_by(reply) == B and reply.headers["x-gatewise-attempts"] == "1"
    assert time.monotonic() - opened < 1, "too slow to observe the open breaker"
    assert fakes.counts()[:2] == (3, 6)

    # After the cool-down one probe goes to a; it fails, so the breaker opens again.
    time.sleep(max(0.0, opened + 1.1 - time.monotonic()))
    assert states()[A] == "half_open"
    reply = chat(gateway, "m")
    assert served_by(reply) == B and reply.headers["x-gatewise-attempts"] == "2"
    reopened = time.monotonic()
    assert fakes.counts()[:2] == (4, 7)
    assert states()[A] == "open"
    assert served_by(chat(gateway, "m")) == B
    assert fakes.counts()[:2] == (4, 8)

    # a recovers: the next probe succeeds, the breaker closes, a serves again.
    fakes.a.reset()
    time.sleep(max(0.0, reopened + 1.1 - time.monotonic()))
    for _ in range(3):
        reply = chat(gateway, "m")
        assert served_by(reply) == A and reply.headers["x-gatewise-attempts"] == "1"
    assert len(fakes.a.requests) == 3 and len(fakes.b.requests) == 8
    assert states() == {A: "closed", B: "closed"}


def test_a_deployment_out_of_quota_is_tried_last_until_its_reset(
    fakes: Upstreams, start_gateway: StartGateway
) -> None:
    gateway = start_gateway(two_deployments(fakes))
    exhausted = {"x-ratelimit-remaining-requests": "0", "x-ratelimit-reset-requests": "500ms"}
    fakes.a.script(Scenario(headers=exhausted))
    reply = chat(gateway, "m")
    told = time.monotonic()
    assert reply.status == 200 and served_by(reply) == A
    # a said it has no requests left: b serves, before a ever answers 429.
    reply = chat(gateway, "m")
    assert served_by(reply) == B and reply.headers["x-gatewise-attempts"] == "1"
    assert fakes.counts()[:2] == (1, 1)
    # Tried last, not left out: with b failing, a still serves.
    fakes.b.script(Scenario(status=503))
    reply = chat(gateway, "m")
    assert served_by(reply) == A and reply.headers["x-gatewise-attempts"] == "2"
    assert fakes.counts()[:2] == (2, 2)
    assert time.monotonic() - told < 0.5, "too slow to observe the quota"
    # After the reset a is first again.
    time.sleep(max(0.0, told + 0.6 - time.monotonic()))
    reply = chat(gateway, "m")
    assert served_by(reply) == A and reply.headers["x-gatewise-attempts"] == "1"
    assert fakes.counts()[:2] == (3, 2)
