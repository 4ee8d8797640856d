"""The emulator's clock: real time that tests may freeze or move forward.

Everything time-based (token expiry, rate-limit windows, the fleet's drift,
SC-Data-Age) reads this clock, so `advance_clock` makes hours pass instantly.
"""

from __future__ import annotations

import functools
import time
from datetime import UTC, datetime


class Clock:
    """Monotonic seconds plus a test-controlled offset; `wall()` is the matching epoch time."""

    __slots__ = ("_frozen_at", "_mono0", "_offset", "_wall0")

    def __init__(self) -> None:
        self._mono0 = time.monotonic()
        self._wall0 = time.time()
        self._offset = 0.0
        self._frozen_at: float | None = None

    def now(self) -> float:
        base = self._frozen_at if self._frozen_at is not None else time.monotonic()
        return base + self._offset

    def wall(self) -> float:
        return self._wall0 + (self.now() - self._mono0)

    def advance(self, seconds: float) -> None:
        if seconds < 0:
            raise ValueError("the emulator clock only moves forward")
        self._offset += seconds

    def freeze(self) -> None:
        if self._frozen_at is None:
            self._frozen_at = time.monotonic()

    def unfreeze(self) -> None:
        if self._frozen_at is not None:
            # Resume from the frozen instant rather than jumping to real time.
            self._offset -= time.monotonic() - self._frozen_at
            self._frozen_at = None

    @property
    def frozen(self) -> bool:
        return self._frozen_at is not None


def iso(epoch: float) -> str:
    """ISO-8601 in UTC with milliseconds and a Z, the form Smartcar uses in headers."""
    millis = round(epoch * 1000)
    second, milli = divmod(millis, 1000)
    return f"{_second(second)}.{milli:03d}Z"


@functools.lru_cache(maxsize=1024)
def _second(second: int) -> str:
    # Two timestamps go into every data response; formatting dominates without a cache.
    return datetime.fromtimestamp(second, UTC).strftime("%Y-%m-%dT%H:%M:%S")
