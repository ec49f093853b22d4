"""Deployment health: EWMAs, the breaker and its error window, cool-downs, upstream
headroom from rate-limit headers, and the board's ``troubled`` fast path.

Every time is passed in by hand (``now``), so nothing here sleeps.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from gatewise.routing.health import BreakerSettings, DeploymentHealth, HealthBoard
from gatewise.routing.ratelimits import retry_after_seconds
from gatewise.routing.types import HealthView

T0 = 1000.0
SETTINGS = BreakerSettings(failures=5, error_rate=0.5, min_requests=20, window_s=30.0)


def fail(health: DeploymentHealth, times: int, now: float = T0) -> list[str | None]:
    transitions: list[str | None] = []
    for _ in range(times):
        health.started()
        transitions.append(health.finished("failure", now))
    return transitions


def opened(now: float = T0) -> DeploymentHealth:
    health = DeploymentHealth(SETTINGS)
    assert fail(health, 5, now)[-1] == "open"
    return health


# -- load and latency ---------------------------------------------------------------


def test_it_is_a_health_view() -> None:
    view: HealthView = DeploymentHealth()
    assert (view.in_flight, view.ttfb_ewma_ms, view.total_ewma_ms) == (0, None, None)


def test_ewma_first_sample_sets_then_smooths_with_alpha() -> None:
    health = DeploymentHealth(BreakerSettings(ewma_alpha=0.2))
    health.finished("ok", T0, ttfb_ms=100.0, total_ms=1000.0)
    assert (health.ttfb_ewma_ms, health.total_ewma_ms) == (100.0, 1000.0)
    health.finished("ok", T0, ttfb_ms=200.0, total_ms=500.0)
    assert health.ttfb_ewma_ms == pytest.approx(120.0)
    assert health.total_ewma_ms == pytest.approx(900.0)
    health.finished("ok", T0, total_ms=900.0)  # no ttfb: that average stays
    assert health.ttfb_ewma_ms == pytest.approx(120.0)
    assert health.total_ewma_ms == pytest.approx(900.0)


def test_failures_and_neutral_outcomes_do_not_move_the_averages() -> None:
    health = DeploymentHealth()
    health.finished("failure", T0, ttfb_ms=5.0, total_ms=5.0)
    health.finished("neutral", T0, ttfb_ms=5.0, total_ms=5.0)
    assert (health.ttfb_ewma_ms, health.total_ewma_ms) == (None, None)


def test_in_flight_counts_attempts_and_never_goes_negative() -> None:
    health = DeploymentHealth()
    health.started()
    health.started()
    assert health.in_flight == 2
    for outcome in ("ok", "failure", "neutral"):
        health.finished(outcome, T0)
    assert health.in_flight == 0


# -- breaker ------------------------------------------------------------------------


def test_breaker_opens_after_consecutive_failures() -> None:
    health = DeploymentHealth(SETTINGS)
    assert fail(health, 4) == [None] * 4
    assert health.state(T0) == "closed"
    assert fail(health, 1) == ["open"]
    assert health.state(T0) == "open"
    assert not health.admit(T0)
    assert not health.available(T0)


def test_a_success_resets_the_consecutive_count() -> None:
    health = DeploymentHealth(SETTINGS)
    fail(health, 4)
    health.finished("ok", T0)
    assert fail(health, 4) == [None] * 4
    assert health.state(T0) == "closed"


def test_error_rate_opens_only_with_enough_requests() -> None:
    health = DeploymentHealth(SETTINGS)
    # Alternating ok/failure: never 5 in a row, a 50% failure share.
    for i in range(9):
        health.finished("ok", T0 + i * 0.1)
        assert health.finished("failure", T0 + i * 0.1) is None
    assert health.requests(T0 + 1) == 18
    assert health.error_rate(T0 + 1) == pytest.approx(0.5)
    health.finished("ok", T0 + 1)
    assert health.finished("failure", T0 + 1) == "open"  # the 20th attempt


def test_a_low_error_rate_does_not_open() -> None:
    health = DeploymentHealth(SETTINGS)
    for i in range(40):
        outcome = "failure" if i % 3 == 0 else "ok"
        assert health.finished(outcome, T0 + i * 0.1) is None  # type: ignore[arg-type]
    assert health.error_rate(T0 + 4) == pytest.approx(14 / 40)
    assert health.state(T0 + 4) == "closed"


def test_old_buckets_leave_the_window() -> None:
    health = DeploymentHealth(BreakerSettings(min_requests=100))
    for _ in range(10):
        health.finished("ok", T0)
        health.finished("failure", T0)
    assert health.requests(T0) == 20
    health.finished("ok", T0 + 15)
    assert health.requests(T0 + 15) == 21
    assert health.requests(T0 + 31) == 1  # the T0 bucket is gone, T0+15 stays
    assert health.error_rate(T0 + 31) == 0.0
    assert health.requests(T0 + 100) == 0
    assert health.error_rate(T0 + 100) is None


def test_failures_that_left_the_window_do_not_count_towards_the_rate() -> None:
    health = DeploymentHealth(SETTINGS)
    for _ in range(4):
        health.finished("failure", T0)
        health.finished("ok", T0)  # keeps the consecutive count low
    for _ in range(16):
        health.finished("ok", T0 + 40)
    # 16 ok and 4 fresh failures would be 20 attempts at 20%: no opening.
    for _ in range(4):
        assert health.finished("failure", T0 + 40) is None
    assert health.requests(T0 + 40) == 20


def test_open_becomes_half_open_after_the_cooldown() -> None:
    health = opened()
    assert health.state(T0 + SETTINGS.cooldown_s - 0.01) == "open"
    assert health.state(T0 + SETTINGS.cooldown_s) == "half_open"


def test_half_open_admits_exactly_one_probe() -> None:
    health = opened()
    later = T0 + SETTINGS.cooldown_s + 1
    assert health.available(later)
    assert health.admit(later)
    assert not health.admit(later)
    assert not health.available(later)
    assert not health.admit(later + 1)


def test_available_does_not_claim_the_probe() -> None:
    health = opened()
    later = T0 + SETTINGS.cooldown_s
    assert health.available(later) and health.available(later)
    assert health.admit(later)


def test_probe_ok_closes_and_resets_the_counters() -> None:
    health = opened()
    later = T0 + SETTINGS.cooldown_s + 1
    assert health.admit(later)
    assert health.finished("ok", later) == "closed"
    assert health.state(later) == "closed"
    assert health.consecutive_failures == 0
    assert health.requests(later) == 0
    assert health.admit(later) and health.admit(later)
    assert fail(health, 4, later) == [None] * 4  # a fresh count


def test_probe_failure_reopens_for_a_new_cooldown() -> None:
    health = opened()
    later = T0 + SETTINGS.cooldown_s + 1
    assert health.admit(later)
    assert health.finished("failure", later) == "open"
    assert health.state(later + SETTINGS.cooldown_s - 0.01) == "open"
    assert health.state(later + SETTINGS.cooldown_s) == "half_open"
    assert health.admit(later + SETTINGS.cooldown_s)


def test_probe_neutral_frees_the_slot_without_deciding() -> None:
    health = opened()
    later = T0 + SETTINGS.cooldown_s + 1
    assert health.admit(later)
    assert health.finished("neutral", later) is None
    assert health.state(later) == "half_open"
    assert health.admit(later)


def test_a_lost_probe_frees_its_slot_after_another_cooldown() -> None:
    health = opened()
    later = T0 + SETTINGS.cooldown_s
    assert health.admit(later)
    assert not health.admit(later + SETTINGS.cooldown_s - 1)
    assert health.admit(later + SETTINGS.cooldown_s)


def test_outcomes_while_open_do_not_move_the_breaker() -> None:
    health = opened()
    assert health.finished("ok", T0 + 1) is None
    assert health.finished("failure", T0 + 1) is None
    assert health.state(T0 + 1) == "open"
    assert health.state(T0 + SETTINGS.cooldown_s) == "half_open"  # not pushed back


def test_neutral_outcomes_never_open_it() -> None:
    health = DeploymentHealth(SETTINGS)
    for i in range(100):
        assert health.finished("neutral", T0 + i * 0.01) is None
    assert health.state(T0 + 1) == "closed"
    assert health.requests(T0 + 1) == 0
    assert health.consecutive_failures == 0


def test_settings_are_validated() -> None:
    with pytest.raises(ValueError):
        BreakerSettings(failures=0)
    with pytest.raises(ValueError):
        BreakerSettings(error_rate=1.5)
    with pytest.raises(ValueError):
        BreakerSettings(window_s=0)


# -- cool-down ----------------------------------------------------------------------


def test_cool_down_keeps_the_later_until() -> None:
    health = DeploymentHealth()
    assert not health.cooling(T0)
    health.cool_down(T0 + 10)
    health.cool_down(T0 + 5)
    assert health.cooldown_until == T0 + 10
    assert health.cooling(T0 + 9.9)
    assert not health.available(T0 + 9.9)
    assert not health.cooling(T0 + 10)
    assert health.available(T0 + 10)
    health.cool_down(T0 + 20)
    assert health.cooldown_until == T0 + 20


def test_a_429_is_neutral_plus_a_cooldown_and_never_opens_the_breaker() -> None:
    health = DeploymentHealth(SETTINGS)
    for _ in range(30):
        health.finished("neutral", T0)
        health.cool_down(T0 + (retry_after_seconds({"retry-after": "2"}) or 0))
    assert health.state(T0) == "closed"
    assert health.cooling(T0 + 1.9)
    assert not health.cooling(T0 + 2)


# -- upstream headroom --------------------------------------------------------------


def test_openai_headers_give_headroom_until_their_reset() -> None:
    health = DeploymentHealth()
    health.observe_headers(
        {
            "x-ratelimit-remaining-requests": "0",
            "x-ratelimit-reset-requests": "6m0s",
            "x-ratelimit-remaining-tokens": "1000",
            "x-ratelimit-reset-tokens": "20ms",
        },
        T0,
    )
    assert not health.headroom(1, T0)
    assert not health.headroom(1, T0 + 359.9)
    assert health.headroom(1, T0 + 360)  # the requests reset passed


def test_token_headroom_depends_on_the_call_size() -> None:
    health = DeploymentHealth()
    health.observe_headers(
        {"x-ratelimit-remaining-tokens": "1000", "x-ratelimit-reset-tokens": "1h2m3.5s"}, T0
    )
    assert health.headroom(1000, T0)
    assert not health.headroom(1001, T0)
    assert not health.headroom(1001, T0 + 3723.4)
    assert health.headroom(1001, T0 + 3723.5)


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("1s", 1.0), ("6m0s", 360.0), ("20ms", 0.02), ("1h2m3.5s", 3723.5), ("0.5", 0.5)],
)
def test_openai_reset_formats(text: str, seconds: float) -> None:
    health = DeploymentHealth()
    health.observe_headers(
        {"x-ratelimit-remaining-requests": "0", "x-ratelimit-reset-requests": text}, T0
    )
    assert not health.headroom(1, T0 + seconds * 0.99)
    assert health.headroom(1, T0 + seconds + 1e-9)


def test_anthropic_headers_take_the_smallest_token_count_and_rfc3339_resets() -> None:
    wall = datetime(2025, 1, 1, tzinfo=UTC).timestamp()
    health = DeploymentHealth()
    health.observe_headers(
        {
            "anthropic-ratelimit-requests-remaining": "7",
            "anthropic-ratelimit-requests-reset": "2025-01-01T00:01:00Z",
            "anthropic-ratelimit-tokens-remaining": "9000",
            "anthropic-ratelimit-tokens-reset": "2025-01-01T00:00:10Z",
            "anthropic-ratelimit-input-tokens-remaining": "300",
            "anthropic-ratelimit-input-tokens-reset": "2025-01-01T00:00:30.5+00:00",
            "anthropic-ratelimit-output-tokens-remaining": "5000",
            "anthropic-ratelimit-output-tokens-reset": "2025-01-01T00:00:05Z",
        },
        T0,
        wall=wall,
    )
    headroom = health.snapshot(T0)["headroom"]
    assert headroom == {
        "remaining_requests": 7,
        "requests_reset_s": pytest.approx(60.0),
        "remaining_tokens": 300,
        "tokens_reset_s": pytest.approx(30.5),
    }
    assert health.headroom(300, T0) and not health.headroom(301, T0)
    assert health.headroom(301, T0 + 30.5)


def test_anthropic_requests_exhausted_until_reset() -> None:
    wall = datetime(2025, 1, 1, tzinfo=UTC).timestamp()
    health = DeploymentHealth()
    headers = {
        "anthropic-ratelimit-requests-remaining": "0",
        "anthropic-ratelimit-requests-reset": "2025-01-01T00:00:02Z",
    }
    health.observe_headers(headers, T0, wall=wall)
    assert not health.headroom(1, T0 + 1.9)
    assert health.available(T0 + 1.9)  # headroom is advisory: the router tries it last
    assert health.headroom(1, T0 + 2)


def test_newer_headers_replace_older_knowledge() -> None:
    health = DeploymentHealth()
    health.observe_headers(
        {"x-ratelimit-remaining-requests": "0", "x-ratelimit-reset-requests": "60s"}, T0
    )
    health.observe_headers(
        {"x-ratelimit-remaining-requests": "50", "x-ratelimit-reset-requests": "60s"}, T0 + 1
    )
    assert health.headroom(1, T0 + 1)


@pytest.mark.parametrize(
    "headers",
    [
        {"x-ratelimit-remaining-requests": "zero", "x-ratelimit-reset-requests": "1s"},
        {"x-ratelimit-remaining-requests": "-1", "x-ratelimit-reset-requests": "1s"},
        {"x-ratelimit-remaining-requests": "0", "x-ratelimit-reset-requests": "soon"},
        {"x-ratelimit-remaining-requests": "0", "x-ratelimit-reset-requests": "1x"},
        {"x-ratelimit-remaining-requests": "0", "x-ratelimit-reset-requests": "nan"},
        {"x-ratelimit-remaining-tokens": "1.5", "x-ratelimit-reset-tokens": "1s"},
        {
            "anthropic-ratelimit-requests-remaining": "0",
            "anthropic-ratelimit-requests-reset": "tomorrow",
        },
        {"anthropic-ratelimit-tokens-remaining": "", "anthropic-ratelimit-tokens-reset": "x"},
    ],
)
def test_malformed_headers_are_ignored(headers: dict[str, str]) -> None:
    health = DeploymentHealth()
    health.observe_headers(headers, T0, wall=0.0)
    assert health.headroom(1, T0)


def test_retry_after_seconds_variants() -> None:
    assert retry_after_seconds({}) is None
    assert retry_after_seconds({"retry-after": "3"}) == 3.0
    assert retry_after_seconds({"retry-after": "1.5"}) == 1.5
    assert retry_after_seconds({"retry-after-ms": "250", "retry-after": "9"}) == 0.25
    assert retry_after_seconds({"retry-after-ms": "junk", "retry-after": "9"}) == 9.0
    assert retry_after_seconds({"retry-after": "-1"}) is None
    assert retry_after_seconds({"retry-after-ms": "-5"}) is None
    assert retry_after_seconds({"retry-after": "soon"}) is None
    assert retry_after_seconds({"retry-after": "inf"}) is None
    date = "Wed, 21 Oct 2015 07:28:00 GMT"
    stamp = datetime(2015, 10, 21, 7, 28, tzinfo=UTC).timestamp()
    assert retry_after_seconds({"retry-after": date}, wall=stamp - 120) == pytest.approx(120)
    assert retry_after_seconds({"retry-after": date}, wall=stamp + 5) == 0.0


# -- snapshot -----------------------------------------------------------------------


def test_snapshot_is_json_ready_and_complete() -> None:
    health = opened()
    health.cool_down(T0 + 4)
    health.started()
    snapshot = health.snapshot(T0 + 1)
    json.dumps(snapshot)
    assert set(snapshot) >= {
        "state",
        "open_remaining_s",
        "cooldown_remaining_s",
        "in_flight",
        "ttfb_ewma_ms",
        "total_ewma_ms",
        "requests",
        "error_rate",
        "consecutive_failures",
        "headroom",
    }
    assert snapshot["state"] == "open"
    assert snapshot["open_remaining_s"] == pytest.approx(SETTINGS.cooldown_s - 1)
    assert snapshot["cooldown_remaining_s"] == pytest.approx(3.0)
    assert (snapshot["in_flight"], snapshot["consecutive_failures"]) == (1, 5)
    assert (snapshot["requests"], snapshot["error_rate"]) == (5, 1.0)
    healthy = DeploymentHealth().snapshot(T0)
    assert (healthy["state"], healthy["open_remaining_s"], healthy["cooldown_remaining_s"]) == (
        "closed",
        None,
        None,
    )


# -- the board ----------------------------------------------------------------------


def test_board_creates_one_health_per_id_with_its_settings() -> None:
    board = HealthBoard(SETTINGS)
    health = board.get("a")
    assert board.get("a") is health
    assert health.settings is SETTINGS
    assert [id for id, _ in board.items()] == ["a"]
    assert board.peek("b") is None


def test_troubled_is_empty_while_everything_is_healthy() -> None:
    board = HealthBoard(SETTINGS)
    for i in range(50):
        health = board.get(f"d{i % 3}")
        health.started()
        health.finished("ok" if i % 2 else "neutral", T0 + i, 10.0, 20.0)
        health.observe_headers({"x-ratelimit-remaining-requests": "99"}, T0 + i)
    assert board.troubled == set()
    assert board.available("d0", T0)


def test_troubled_tracks_an_open_breaker_until_recovery_is_observed() -> None:
    board = HealthBoard(SETTINGS)
    health = board.get("a")
    board.get("b")
    fail(health, 5)
    assert board.troubled == {"a"}
    assert not board.available("a", T0 + 1)
    assert board.available("b", T0 + 1)
    later = T0 + SETTINGS.cooldown_s
    assert board.available("a", later)  # half-open: the probe may go
    assert board.troubled == {"a"}  # but not healthy yet
    assert health.admit(later)
    assert not board.available("a", later)
    health.finished("ok", later)
    assert board.troubled == {"a"}  # dropped lazily ...
    assert board.available("a", later)
    assert board.troubled == set()  # ... when a check sees it recovered


def test_troubled_tracks_cooldowns_and_exhausted_headroom() -> None:
    board = HealthBoard(SETTINGS)
    board.get("cool").cool_down(T0 + 5)
    board.get("quota").observe_headers(
        {"x-ratelimit-remaining-tokens": "100", "x-ratelimit-reset-tokens": "10s"}, T0
    )
    assert board.troubled == {"cool", "quota"}
    assert not board.available("cool", T0 + 1)
    assert board.available("quota", T0 + 1)  # headroom does not filter ...
    quota = board.get("quota")
    assert quota.headroom(50, T0 + 1) and not quota.headroom(500, T0 + 1)  # ... it ranks
    assert board.troubled == {"cool", "quota"}
    assert board.available("cool", T0 + 5)
    assert board.available("quota", T0 + 10)
    assert quota.headroom(500, T0 + 10)
    assert board.troubled == set()


def test_pending_reports_own_transitions_once() -> None:
    board = HealthBoard(SETTINGS)
    health = board.get("a")
    fail(health, 5)
    health.cool_down(T0 + 3)
    assert board.has_pending("a")
    assert sorted(board.pending(), key=str) == sorted(
        [("a", "open", T0 + SETTINGS.cooldown_s), ("a", "cool", T0 + 3)], key=str
    )
    assert board.pending() == []
    later = T0 + SETTINGS.cooldown_s
    health.admit(later)
    health.finished("ok", later)
    assert board.pending() == [("a", "closed", later)]


def test_remote_state_is_applied_without_being_queued() -> None:
    board = HealthBoard(SETTINGS)
    health = board.get("a")
    assert health.force_open(T0 + 10)
    assert not health.force_open(T0 + 5)  # keeps the later until
    health.cool_down(T0 + 3, share=False)
    assert board.pending() == []
    assert board.troubled == {"a"}
    assert health.state(T0 + 9.9) == "open" and health.state(T0 + 10) == "half_open"
    assert health.open_until == T0 + 10
    # A close elsewhere before this breaker opened (until minus cool-down) does not close it.
    assert not health.force_close(opened_before=T0 + 10 - SETTINGS.cooldown_s - 1)
    assert health.force_close(opened_before=T0 + 10 - SETTINGS.cooldown_s)
    assert health.state(T0) == "closed" and health.snapshot(T0)["open_remaining_s"] is None
    assert not health.force_close()
    assert board.pending() == []


def test_configure_keeps_live_state() -> None:
    board = HealthBoard(SETTINGS)
    health = board.get("a")
    health.started()
    health.finished("ok", T0, 10.0)
    fail(board.get("b"), 5)
    faster = BreakerSettings(failures=2, cooldown_s=5.0)
    board.configure(faster)
    assert board.get("a").settings is faster and board.get("c").settings is faster
    assert health.ttfb_ewma_ms == 10.0
    assert board.get("b").state(T0 + 6) == "open"  # opened under the old cool-down
    assert fail(health, 2, T0 + 1)[-1] == "open"  # the new threshold
