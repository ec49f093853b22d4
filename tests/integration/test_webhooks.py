"""Signed webhook deliveries to a real loopback receiver: signing, retries, giving up, shutdown."""

from __future__ import annotations

import asyncio
import itertools
import logging
import socket
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
from pydantic import TypeAdapter, ValidationError

from gatewise.alerts.webhooks import (
    WebhookSender,
    backoff_delay,
    parse_retry_after,
    sign,
    verify_signature,
)
from gatewise.config.alerts import WebhookConfig, WebhookList
from gatewise.testing.webhook_receiver import WebhookReceiver

SECRET = "whsec-test-0123456789"
EVENT: dict[str, Any] = {"type": "budget.threshold", "budget": "acme", "used": "80.000000"}


def hook(url: str, **extra: Any) -> WebhookConfig:
    fields: dict[str, Any] = {
        "name": "finance",
        "url": url,
        "secret": "${env:GW_TEST_WEBHOOK_SECRET}",
    }
    fields.update(extra)
    return WebhookConfig.model_validate(fields)


def resolve(reference: str) -> str:
    assert reference == "${env:GW_TEST_WEBHOOK_SECRET}"
    return SECRET


@pytest.fixture
async def receiver() -> AsyncIterator[WebhookReceiver]:
    async with WebhookReceiver() as r:
        yield r


async def started(*configs: WebhookConfig, **options: Any) -> WebhookSender:
    options.setdefault("base_delay", 0.01)
    sender = WebhookSender(configs, resolve_secret=resolve, **options)
    await sender.start()
    return sender


@pytest.fixture
def closed_port() -> Iterator[int]:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = int(sock.getsockname()[1])
    yield port


# -- signing ---------------------------------------------------------------------


async def test_delivery_is_signed_and_verifiable(receiver: WebhookReceiver) -> None:
    sender = await started(hook(receiver.url))
    sender.send("finance", EVENT)
    assert await sender.join(5)
    await sender.close()

    [got] = receiver.received
    assert got.path == "/hooks/gatewise"
    assert got.json == EVENT
    assert got.headers["content-type"] == "application/json"
    assert got.headers["user-agent"] == "gatewise"
    assert got.headers["x-gatewise-event"] == "budget.threshold"
    uuid.UUID(got.delivery_id)
    assert got.valid_signature(SECRET)
    assert not got.valid_signature("another-secret")
    timestamp = got.headers["x-gatewise-timestamp"]
    signature = got.headers["x-gatewise-signature"]
    assert signature.startswith("sha256=") and len(signature) == 7 + 64
    tampered = got.body.replace(b"80.000000", b"8.000000")
    assert not verify_signature(SECRET, timestamp, tampered, signature)
    # The same bytes, presented ten minutes later (a replay), are refused ...
    later = int(timestamp) + 600
    assert not verify_signature(SECRET, timestamp, got.body, signature, now=later)
    # ... and re-stamping them breaks the signature.
    assert not verify_signature(SECRET, str(later), got.body, signature, now=later)
    assert verify_signature(SECRET, timestamp, got.body, signature, tolerance=700, now=later)
    assert sender.delivered == 1 and sender.failed == 0


def test_signature_is_hmac_sha256_of_timestamp_dot_body() -> None:
    # Reference value computed independently: HMAC-SHA256("key", "1700000000.{}").
    import hashlib
    import hmac

    expected = hmac.new(b"key", b"1700000000.{}", hashlib.sha256).hexdigest()
    assert sign("key", 1700000000, b"{}") == f"sha256={expected}"
    assert not verify_signature("key", "not-a-number", b"{}", f"sha256={expected}")


# -- retries -------------------------------------------------------------------------


async def test_retries_with_backoff_after_reset_and_500s(receiver: WebhookReceiver) -> None:
    # The reset comes first: on a reused keep-alive connection the HTTP client itself
    # retries a reset once at once (a server closing an idle connection looks the same).
    receiver.reset_next(1)
    receiver.fail_next(2, 500)
    sender = await started(hook(receiver.url), base_delay=0.03, rng=lambda: 1.0)
    sender.send("finance", EVENT)
    assert await sender.join(5)
    await sender.close()

    got = receiver.received
    assert [d.answered for d in got] == [0, 500, 500, 204]
    assert len({d.delivery_id for d in got}) == 1
    # Exponential: 0.03 s, 0.06 s, then 0.12 s between attempts.
    gaps = [later.arrived - earlier.arrived for earlier, later in itertools.pairwise(got)]
    for gap, expected in zip(gaps, [0.03, 0.06, 0.12], strict=True):
        assert gap >= expected * 0.9
    assert all(d.valid_signature(SECRET) for d in got)
    assert sender.delivered == 1 and sender.failed == 0


async def test_retry_after_is_honoured_and_capped(receiver: WebhookReceiver) -> None:
    receiver.fail_next(1, 429, retry_after="0.2")
    receiver.fail_next(1, 503, retry_after="3600")
    sender = await started(hook(receiver.url), base_delay=30, max_delay=0.3)
    started_at = time.monotonic()
    sender.send("finance", EVENT)
    assert await sender.join(5)
    await sender.close()
    first, second, third = receiver.received
    assert second.arrived - first.arrived >= 0.18  # retry-after 0.2, not the 30 s backoff
    assert third.arrived - second.arrived >= 0.28  # retry-after 3600, capped at 0.3
    assert time.monotonic() - started_at < 3
    assert third.answered == 204


async def test_a_400_is_final(receiver: WebhookReceiver) -> None:
    receiver.fail_next(1, 400)
    sender = await started(hook(receiver.url))
    sender.send("finance", EVENT)
    assert await sender.join(5)
    await asyncio.sleep(0.05)  # a retry would have arrived by now (base delay 0.01 s)
    await sender.close()
    assert [d.answered for d in receiver.received] == [400]
    assert sender.failed == 1 and sender.delivered == 0


async def test_408_is_retried(receiver: WebhookReceiver) -> None:
    receiver.fail_next(1, 408)
    sender = await started(hook(receiver.url))
    sender.send("finance", EVENT)
    assert await sender.join(5)
    await sender.close()
    assert [d.answered for d in receiver.received] == [408, 204]


async def test_gives_up_after_max_attempts(
    receiver: WebhookReceiver, caplog: pytest.LogCaptureFixture
) -> None:
    receiver.fail_next(10, 503)
    sender = await started(hook(receiver.url, max_attempts=3))
    with caplog.at_level(logging.DEBUG, logger="gatewise.alerts"):
        sender.send("finance", EVENT)
        assert await sender.join(5)
    await sender.close()
    assert [d.answered for d in receiver.received] == [503, 503, 503]
    assert sender.failed == 1 and sender.delivered == 0
    assert "given up after 3 attempt(s)" in caplog.text
    # Neither the key nor any signature reaches the log.
    assert SECRET not in caplog.text
    for delivery in receiver.received:
        assert delivery.headers["x-gatewise-signature"].split("=")[1] not in caplog.text


async def test_each_attempt_has_a_fresh_timestamp_and_signature(
    receiver: WebhookReceiver,
) -> None:
    receiver.fail_next(1, 500)
    stamps = iter([time.time() - 100, time.time()])
    sender = await started(hook(receiver.url), clock=lambda: next(stamps))
    sender.send("finance", EVENT)
    assert await sender.join(5)
    await sender.close()
    first, second = receiver.received
    assert int(second.headers["x-gatewise-timestamp"]) > int(first.headers["x-gatewise-timestamp"])
    assert second.headers["x-gatewise-signature"] != first.headers["x-gatewise-signature"]
    assert second.valid_signature(SECRET)
    # The first attempt's stamp is 100 s old: a receiver tolerating 60 s refuses it.
    assert first.valid_signature(SECRET) and not first.valid_signature(SECRET, tolerance=60)


# -- shutdown ------------------------------------------------------------------------


async def test_close_does_not_hang_when_the_receiver_is_down(
    closed_port: int, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="gatewise.alerts")
    sender = await started(hook(f"http://127.0.0.1:{closed_port}/hook"), base_delay=30)
    sender.send("finance", EVENT)
    deadline = time.monotonic() + 5
    while "attempt 1 failed" not in caplog.text:  # refused; the retry waits 15-30 s
        assert time.monotonic() < deadline, "the first attempt never failed"
        await asyncio.sleep(0.01)
    assert sender.pending == 1
    began = time.monotonic()
    await sender.close()
    assert time.monotonic() - began < 3  # neither the backoff nor close_timeout (5 s) waited
    assert sender.pending == 0 and sender.failed == 1


async def test_close_abandons_an_attempt_that_never_answers(receiver: WebhookReceiver) -> None:
    receiver.hang_next(1)
    sender = await started(hook(receiver.url, timeout_seconds=30), close_timeout=0.2)
    sender.send("finance", EVENT)
    await receiver.wait_for(1)
    began = time.monotonic()
    await sender.close()
    assert time.monotonic() - began < 5  # close_timeout (0.2 s), not the hook's 30 s
    assert sender.pending == 0 and sender.failed == 1


async def test_a_hanging_receiver_times_out_and_is_retried(receiver: WebhookReceiver) -> None:
    receiver.hang_next(1)
    sender = await started(hook(receiver.url, timeout_seconds=0.2))
    sender.send("finance", EVENT)
    assert await sender.join(5)
    await sender.close()
    assert [d.answered for d in receiver.received] == [-1, 204]


async def test_unknown_webhook_and_stopped_sender_drop_the_event(
    receiver: WebhookReceiver,
) -> None:
    sender = await started(hook(receiver.url))
    sender.send("nobody", EVENT)
    assert sender.pending == 0
    await sender.close()
    sender.send("finance", EVENT)
    assert sender.pending == 0
    assert receiver.received == []


async def test_a_missing_secret_fails_start() -> None:
    def missing(reference: str) -> str:
        raise LookupError(f"{reference} is not set")

    sender = WebhookSender([hook("https://hooks.example.com/x")], resolve_secret=missing)
    with pytest.raises(LookupError):
        await sender.start()


# -- pure helpers and config -----------------------------------------------------------


def test_backoff_grows_is_capped_and_jittered() -> None:
    assert [backoff_delay(n, jitter=1.0) for n in (1, 2, 3, 4)] == [0.5, 1.0, 2.0, 4.0]
    assert backoff_delay(20, jitter=1.0) == 60.0
    assert backoff_delay(3, jitter=0.0) == 1.0  # never less than half the full delay


def test_parse_retry_after() -> None:
    assert parse_retry_after("7") == 7.0
    assert parse_retry_after(None) is None
    assert parse_retry_after("soon") is None
    now = 1_700_000_000.0  # 2023-11-14T22:13:20Z
    assert parse_retry_after("Tue, 14 Nov 2023 22:13:50 GMT", now=now) == 30.0
    assert parse_retry_after("Tue, 14 Nov 2023 22:00:00 GMT", now=now) == 0.0


def test_webhook_config_rules() -> None:
    ok = hook("https://hooks.example.com/gatewise")
    assert ok.timeout_seconds == 5 and ok.max_attempts == 6
    assert hook("http://localhost:9000/x").url.startswith("http://")
    assert hook("http://[::1]:9000/x").url.startswith("http://")
    for bad_url in (
        "http://hooks.example.com/x",
        "ftp://hooks.example.com/x",
        "https://user:pw@hooks.example.com/x",
        "https:///x",
    ):
        with pytest.raises(ValidationError):
            hook(bad_url)
    with pytest.raises(ValidationError, match="reference"):
        hook("https://hooks.example.com/x", secret="literal-secret")
    with pytest.raises(ValidationError):
        hook("https://hooks.example.com/x", max_attempts=0)
    with pytest.raises(ValidationError):
        hook("https://hooks.example.com/x", retries=3)
    section = TypeAdapter(WebhookList)
    entry = {"name": "a", "url": "https://h.example.com/", "secret": "${env:X}"}
    assert len(section.validate_python([entry, {**entry, "name": "b"}])) == 2
    with pytest.raises(ValidationError, match="used twice"):
        section.validate_python([entry, entry])
