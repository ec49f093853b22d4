"""The admin trail's bound on audited refusals: a burst, then a steady rate, never more."""

from __future__ import annotations

import pytest

from gatewise.admin import trail as trail_module
from gatewise.admin.trail import REFUSAL_BURST, REFUSALS_PER_SECOND, Trail


def test_refusals_are_recorded_in_bursts_then_at_a_steady_rate(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    clock = [1000.0]
    monkeypatch.setattr(trail_module.time, "monotonic", lambda: clock[0])
    trail = Trail(None, None, lambda: False)  # type: ignore[arg-type]
    taken = [trail._take_token() for _ in range(int(REFUSAL_BURST) + 50)]
    assert taken.count(True) == REFUSAL_BURST  # the burst, then nothing at this instant
    clock[0] += 1.0
    again = [trail._take_token() for _ in range(50)]
    assert again.count(True) == REFUSALS_PER_SECOND
    assert "50 refused admin requests were not audited" in caplog.text
