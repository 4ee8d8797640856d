"""Rate-limit gates and pacing: when a vehicle (or the whole application) may be called again.

A 429 closes a gate until its Retry-After has passed: for one vehicle
(RATE_LIMIT:VEHICLE) or for every vehicle (RATE_LIMIT:SMARTCAR_API). Callers
that can afford the wait sleep it out; callers that cannot fail at once with
the same error, so a throttled vehicle costs no API calls (that decision is
`SendPolicy`'s; this module only keeps the times). Optional pacing
(a minimum interval per vehicle, an application token bucket) keeps a worker
from tripping the limits in the first place. Nothing here polls: every wait
is one sleep of a computed length.

No gate or hold lasts longer than ``MAX_RETRY_AFTER`` (one day), whatever
number it is given: `parse_retry_after` already clamps what a server sends,
and this is the second line, so no wait can overflow a clock or a sleep.
"""

from __future__ import annotations

import copy
import math
import time

import anyio

from ._exceptions import MAX_RETRY_AFTER, RateLimitError

__all__ = ["Gates", "TokenBucket", "bounded_wait", "still_limited"]

# Expired entries are swept once the maps grow past this, so memory follows
# the number of vehicles throttled right now, not every vehicle ever seen.
_SWEEP_AT = 1024


def bounded_wait(seconds: float) -> float:
    """``seconds`` within ``0 .. MAX_RETRY_AFTER``; NaN counts as no wait, infinity as the most."""
    if not seconds > 0:  # also NaN
        return 0.0
    return min(float(seconds), MAX_RETRY_AFTER)


class Gates:
    """Per-vehicle and application-wide "not before" times, with the error that set them."""

    def __init__(self, *, min_vehicle_interval: float = 0.0) -> None:
        self._blocked: dict[str, tuple[float, RateLimitError]] = {}
        self._app: tuple[float, RateLimitError] | None = None
        self._min_interval = min_vehicle_interval
        self._next_allowed: dict[str, float] = {}

    def block(self, vehicle_id: str | None, seconds: float, error: RateLimitError) -> None:
        """Close the gate of one vehicle (or of the application when ``vehicle_id`` is None)."""
        until = time.monotonic() + bounded_wait(seconds)
        if vehicle_id is None:
            if self._app is None or self._app[0] < until:
                self._app = (until, error)
            return
        current = self._blocked.get(vehicle_id)
        if current is None or current[0] < until:
            self._blocked[vehicle_id] = (until, error)
            if len(self._blocked) > _SWEEP_AT:
                self._sweep()

    def rate_limited(self, vehicle_id: str, error: RateLimitError, fallback: float) -> float:
        """Close the gate a 429 names (the vehicle's, or the application's for
        RATE_LIMIT:SMARTCAR_API) for its Retry-After, or ``fallback`` seconds when
        it gave none (Smartcar documents none for the application limit), and
        record that wait on the error. Returns the wait."""
        wait = bounded_wait(fallback if error.retry_after is None else error.retry_after)
        error.retry_after = wait
        self.block(None if error.code == "SMARTCAR_API" else vehicle_id, wait, error)
        return wait

    def hold(self, vehicle_id: str, seconds: float) -> None:
        """Delay the vehicle's next request without an error to fail fast with (a backoff)."""
        until = time.monotonic() + bounded_wait(seconds)
        if self._next_allowed.get(vehicle_id, 0.0) < until:
            self._next_allowed[vehicle_id] = until
            if len(self._next_allowed) > _SWEEP_AT:
                self._sweep()

    def blocked_for(self, vehicle_id: str) -> tuple[float, RateLimitError | None]:
        """Seconds until a request for this vehicle may go out, and the error behind a 429 gate."""
        if not self._blocked and self._app is None and not self._next_allowed:
            return 0.0, None  # the common case, on every read: nothing is gated
        now = time.monotonic()
        wait, error = 0.0, None
        if self._app is not None:
            if self._app[0] > now:
                wait, error = self._app[0] - now, self._app[1]
            else:
                self._app = None
        entry = self._blocked.get(vehicle_id)
        if entry is not None:
            if entry[0] > now:
                if entry[0] - now > wait:
                    wait, error = entry[0] - now, entry[1]
            else:
                del self._blocked[vehicle_id]
        # Pacing and backoff holds: a wait, never a reason to fail fast.
        pace = self._next_allowed.get(vehicle_id, 0.0) - now
        if pace > wait:
            wait = pace
        return wait, error

    def fail_fast_error(self, vehicle_id: str, max_wait: float) -> RateLimitError | None:
        """The error to raise now if this vehicle is gated for longer than ``max_wait``.

        (`SendPolicy.fail_fast` is this check with the client's ``max_retry_after``.)
        """
        wait, error = self.blocked_for(vehicle_id)
        if error is None or wait <= max_wait:
            return None
        return still_limited(error, wait)

    def passed(self, vehicle_id: str) -> None:
        """A request for the vehicle goes out now: start its pacing interval."""
        if self._min_interval:
            self._next_allowed[vehicle_id] = time.monotonic() + self._min_interval
            if len(self._next_allowed) > _SWEEP_AT:
                self._sweep()

    def _sweep(self) -> None:
        now = time.monotonic()
        self._blocked = {k: v for k, v in self._blocked.items() if v[0] > now}
        self._next_allowed = {k: v for k, v in self._next_allowed.items() if v > now}


def still_limited(error: RateLimitError, wait: float) -> RateLimitError:
    """A copy of the 429 that closed a gate, saying how long it stays closed."""
    twin = copy.copy(error)
    twin.retry_after = math.ceil(bounded_wait(wait) * 1000) / 1000
    return twin


class TokenBucket:
    """Smartcar's application bucket, mirrored client-side: ``capacity`` requests,
    refilled at ``refill_per_minute``. It counts HTTP requests: a batch takes one
    token whatever its size (Smartcar bills each path, but its bucket counts
    requests). Waiters sleep exactly until enough tokens are back."""

    def __init__(self, capacity: int, refill_per_minute: float) -> None:
        if capacity < 1 or refill_per_minute <= 0:
            raise ValueError("the request budget needs capacity >= 1 and a positive refill rate")
        self.capacity = capacity
        self._rate = refill_per_minute / 60.0
        self._tokens = float(capacity)
        self._updated = time.monotonic()

    def _refill(self) -> None:
        now = time.monotonic()
        self._tokens = min(self.capacity, self._tokens + (now - self._updated) * self._rate)
        self._updated = now

    @property
    def available(self) -> float:
        self._refill()
        return self._tokens

    async def acquire(self, cost: int) -> None:
        # A batch larger than the bucket can never be paid in full; charge the
        # whole bucket instead of waiting forever.
        need = float(min(cost, self.capacity))
        while True:
            self._refill()
            if self._tokens >= need:
                self._tokens -= need
                return
            await anyio.sleep(bounded_wait((need - self._tokens) / self._rate))
