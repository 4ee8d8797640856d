"""Smartcar's two rate limits: a per-vehicle sliding window and the application bucket.

Accounting:

* Every request for one vehicle counts one against that vehicle's window, and
  every path of a batch counts one (the emulator's choice: Smartcar bills each
  batch path as one request, and whether its vehicle throttle counts a batch
  once or per path is unconfirmed, smartcar-api.md §4). Only requests that
  pass authentication, permission and capability checks are counted, and a
  rejected (429) request does not take a slot.
* The application bucket counts HTTP requests: 1 per Vehicle API request
  (``/vehicles``, ``/user`` and every vehicle endpoint), a batch included
  whatever its size ("one HTTP request instead of N toward
  RATE_LIMIT:SMARTCAR_API", smartcar-api.md §4; Smartcar's limits page speaks
  of "120 connections"), after authentication and batch validation. No 429
  carries a Retry-After when the refill rate is 0.
"""

from __future__ import annotations

import math
from collections import deque

import attrs

from ._clock import Clock


@attrs.define
class RateLimits:
    """Rate limits the emulator enforces; both are off unless set. Mutable mid-test.

    ``vehicle_requests`` per ``vehicle_window`` seconds, per vehicle: excess
    requests get 429 ``RATE_LIMIT:VEHICLE`` with ``Retry-After`` = whole seconds
    until a slot frees (inside a batch: per item, with item headers
    ``{"Retry-After": N}``).

    ``app_capacity`` tokens refilled at ``app_refill_per_minute``, one per HTTP
    request (a batch takes one, whatever its size): an empty bucket answers the
    whole HTTP request with 429 ``RATE_LIMIT:SMARTCAR_API`` and ``Retry-After``.
    Smartcar's documented default is 120 and 2/minute.

    Windows run on the emulator clock, so ``Emulator.advance_clock`` frees slots.

    Added in 0.1.0.
    """

    vehicle_requests: int | None = None
    vehicle_window: float = 60.0
    app_capacity: int | None = None
    app_refill_per_minute: float = 2.0


@attrs.frozen
class Limited:
    """A rejected request; ``retry_after`` is None when no wait would help."""

    retry_after: int | None


class RateLimiter:
    """The mutable counters behind a `RateLimits` configuration."""

    def __init__(self, clock: Clock) -> None:
        self._clock = clock
        self._windows: dict[str, deque[float]] = {}
        self._tokens = 0.0
        self._refilled_at: float | None = None
        self._calls = 0

    def reset(self) -> None:
        self._windows.clear()
        self._refilled_at = None

    def take_app(self, limits: RateLimits, cost: int) -> Limited | None:
        capacity = limits.app_capacity
        if capacity is None:
            self._refilled_at = None
            return None
        now = self._clock.now()
        rate = max(0.0, limits.app_refill_per_minute) / 60.0
        if self._refilled_at is None:
            self._tokens = float(capacity)
        else:
            # Rounded: (t + 30) - t is not exactly 30 for every clock value t, and a
            # refill that should give exactly one token must not give 0.9999999.
            refill = round((now - self._refilled_at) * rate, 9)
            self._tokens = min(float(capacity), self._tokens + refill)
        self._refilled_at = now
        if self._tokens >= cost:
            self._tokens -= cost
            return None
        if rate <= 0 or cost > capacity:
            # No wait helps: the bucket never refills, or never holds this much.
            return Limited(None)
        return Limited(max(1, _whole_seconds((cost - self._tokens) / rate)))

    def app_tokens(self, limits: RateLimits) -> float | None:
        """Tokens left in the bucket now (None when the app limit is off)."""
        if limits.app_capacity is None:
            return None
        if self._refilled_at is None:
            return float(limits.app_capacity)
        rate = max(0.0, limits.app_refill_per_minute) / 60.0
        elapsed = self._clock.now() - self._refilled_at
        return min(float(limits.app_capacity), self._tokens + round(elapsed * rate, 9))

    def take_vehicle(self, limits: RateLimits, vehicle_id: str) -> Limited | None:
        allowed = limits.vehicle_requests
        if allowed is None:
            return None
        now = self._clock.now()
        window = limits.vehicle_window
        self._calls += 1
        if self._calls % 4096 == 0:
            self._sweep(now - window)
        stamps = self._windows.get(vehicle_id)
        if stamps is None:
            stamps = self._windows[vehicle_id] = deque()
        cutoff = now - window
        while stamps and stamps[0] <= cutoff:
            stamps.popleft()
        if len(stamps) < allowed:
            stamps.append(now)
            return None
        if allowed <= 0:
            return Limited(max(1, math.ceil(window)))
        # The (len - allowed)-th oldest stamp must expire before one more fits.
        frees_at = stamps[len(stamps) - allowed] + window
        return Limited(max(1, _whole_seconds(frees_at - now)))

    def _sweep(self, cutoff: float) -> None:
        idle = [vid for vid, stamps in self._windows.items() if not stamps or stamps[-1] <= cutoff]
        for vid in idle:
            del self._windows[vid]


def _whole_seconds(seconds: float) -> int:
    """Seconds rounded up, after float noise is rounded away: (t + 60) - t is 60.000000000000114
    for some t, and 11 / (11 / 60) is 60.00000000000001; both must say 60, not 61."""
    return math.ceil(round(seconds, 6))
