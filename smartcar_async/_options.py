"""Per-call options: timeouts, retries and deadlines that a Vehicle handle carries.

Options are part of a queue's identity, so reads that share a batch always
share one retry policy and one timeout: the policy is applied once per batch.

Two rules for durations a caller gives. A *bound* (``timeout``, ``deadline``)
is seconds > 0, or None for no bound (`check_bound`). A *wait* where 0 means
"none" (``batch_window``, ``retry_backoff``, ``min_vehicle_interval``,
``close_timeout``) is seconds >= 0 (`check_seconds`). Both refuse NaN and
infinity.
"""

from __future__ import annotations

import enum
import math
from typing import Final, Literal

import attrs

from ._validate import check_bound, check_int

__all__ = [
    "DEFAULT_MAX_RESPONSE_SIZE",
    "DEFAULT_MAX_RETRIES",
    "DEFAULT_OPTIONS",
    "DEFAULT_TIMEOUT",
    "NOT_GIVEN",
    "CallOptions",
    "NotGiven",
    "RequestBudget",
]


class NotGiven(enum.Enum):
    """Tells "use the client's default" apart from ``None`` ("no limit")."""

    NOT_GIVEN = "NOT_GIVEN"

    def __repr__(self) -> str:
        return "NOT_GIVEN"


NOT_GIVEN: Final = NotGiven.NOT_GIVEN

#: Smartcar documents answers of up to 300 s; the official SDKs wait 310 s.
DEFAULT_TIMEOUT: Final = 310.0
DEFAULT_MAX_RETRIES: Final = 2
#: Bytes of one response body, after decompression. Real answers are a few
#: kilobytes (a full batch some tens); anything near this is not Smartcar's.
DEFAULT_MAX_RESPONSE_SIZE: Final = 8 * 1024 * 1024
NotGivenType = Literal[NotGiven.NOT_GIVEN]


def check_seconds(name: str, value: object) -> float:
    """A wait where 0 means none: a finite number of seconds >= 0."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TypeError(f"{name} must be a number of seconds, got {type(value).__name__}")
    seconds = _float(name, value)
    if not math.isfinite(seconds) or seconds < 0:
        raise ValueError(f"{name} must be a finite number >= 0, got {value!r}")
    return seconds


def _float(name: str, value: int | float) -> float:
    try:
        return float(value)
    except OverflowError:  # an int too large for a float
        raise ValueError(f"{name} is too large") from None


def check_response_size(value: object) -> int:
    """``max_response_size``: a number of bytes >= 1 (there is no "unlimited")."""
    return check_int("max_response_size", value, minimum=1)


def check_retries(value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"max_retries must be an int, got {type(value).__name__}")
    if value < 0:
        raise ValueError(f"max_retries must be >= 0, got {value}")
    return value


@attrs.frozen
class CallOptions:
    """Resolved options of one Vehicle handle.

    ``timeout`` bounds one HTTP attempt; ``deadline`` bounds a whole call
    (queueing, retries and backoff included); ``None`` disables either.
    """

    timeout: float | None
    max_retries: int
    deadline: float | None

    def replace(
        self,
        *,
        timeout: float | NotGiven | None = NOT_GIVEN,
        max_retries: int | NotGiven = NOT_GIVEN,
        deadline: float | NotGiven | None = NOT_GIVEN,
    ) -> CallOptions:
        return CallOptions(
            timeout=self.timeout
            if isinstance(timeout, NotGiven)
            else check_bound("timeout", timeout),
            max_retries=self.max_retries
            if isinstance(max_retries, NotGiven)
            else check_retries(max_retries),
            deadline=self.deadline
            if isinstance(deadline, NotGiven)
            else check_bound("deadline", deadline),
        )


#: What a Client uses when it is given no options (and what bare queue keys assume).
DEFAULT_OPTIONS: Final = CallOptions(
    timeout=DEFAULT_TIMEOUT, max_retries=DEFAULT_MAX_RETRIES, deadline=None
)


@attrs.frozen
class RequestBudget:
    """Client-side pacing that mirrors Smartcar's application bucket.

    The defaults are Smartcar's documented ones: 120 requests, refilling at 2
    per minute. Each path of a batch counts as one request, as Smartcar counts
    it. Pass ``Client(request_budget=RequestBudget())`` to turn it on.

    Added in 0.1.0.
    """

    capacity: int = 120
    refill_per_minute: float = 2.0

    def __attrs_post_init__(self) -> None:
        if isinstance(self.capacity, bool) or not isinstance(self.capacity, int):
            raise TypeError("capacity must be an int")
        if self.capacity < 1:
            raise ValueError("capacity must be >= 1")
        _float("capacity", self.capacity)
        rate = self.refill_per_minute
        if (
            isinstance(rate, bool)
            or not isinstance(rate, int | float)
            or not 0 < _float("refill_per_minute", rate) < math.inf
        ):
            raise ValueError("refill_per_minute must be a finite number > 0")
