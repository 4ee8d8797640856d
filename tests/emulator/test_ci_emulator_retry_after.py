"""The emulator's Retry-After is exact whole seconds, whatever the clock reads.

A CI run failed `test_vehicle_window_and_retry_after` with '61' for a 60 s window: with the
clock frozen at some instants t, (t + 60) - t is 60.000000000000114 and was rounded up.
"""

from __future__ import annotations

import pytest

from smartcar_async.testing._clock import Clock
from smartcar_async.testing._ratelimit import RateLimiter, RateLimits


class _FixedClock(Clock):
    """A clock that reads `t`, the instant a test chooses."""

    def __init__(self, t: float) -> None:
        super().__init__()
        self.t = t

    def now(self) -> float:
        return self.t


# 1000.003 s is one monotonic reading (about 17 minutes of uptime) that used to give 61.
INSTANTS = [1000.003, 1000.005, 86_400.017, *(1000 + i / 997 for i in range(2000))]


@pytest.mark.parametrize("start", [1000.003, 86_400.017])
def test_vehicle_window_retry_after_counts_down_exactly(start: float) -> None:
    clock = _FixedClock(start)
    limiter = RateLimiter(clock)
    limits = RateLimits(vehicle_requests=3, vehicle_window=60)
    for _ in range(3):
        assert limiter.take_vehicle(limits, "v") is None
    limited = limiter.take_vehicle(limits, "v")
    assert limited is not None
    assert limited.retry_after == 60
    clock.t = start + 45
    limited = limiter.take_vehicle(limits, "v")
    assert limited is not None
    assert limited.retry_after == 15


def test_vehicle_window_retry_after_over_many_instants() -> None:
    limits = RateLimits(vehicle_requests=1, vehicle_window=60)
    wrong = []
    for t in INSTANTS:
        limiter = RateLimiter(_FixedClock(t))
        assert limiter.take_vehicle(limits, "v") is None
        limited = limiter.take_vehicle(limits, "v")
        assert limited is not None
        if limited.retry_after != 60:
            wrong.append((t, limited.retry_after))
    assert wrong == []


@pytest.mark.parametrize("per_minute", [11, 21, 22, 2, 120])
def test_app_bucket_retry_after_is_exact(per_minute: int) -> None:
    # An empty bucket that refills `per_minute` tokens a minute holds `per_minute` again in
    # exactly 60 s; 11 / (11 / 60) is 60.00000000000001 in floats.
    limiter = RateLimiter(_FixedClock(1000.003))
    limits = RateLimits(app_capacity=per_minute, app_refill_per_minute=per_minute)
    assert limiter.take_app(limits, per_minute) is None
    limited = limiter.take_app(limits, per_minute)
    assert limited is not None
    assert limited.retry_after == 60
