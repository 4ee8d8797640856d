"""Per-call options: timeouts, retries and deadlines that a Vehicle handle carries.

Options are part of a queue's identity, so reads that share a batch always
share one retry policy and one timeout: the policy is applied once per batch.

The rules for the values a caller gives (bounds, waits, counts) are
`_validate`'s.
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
    """Tells "use the client's default" apart from ``None`` ("no limit"). Added in 0.1.0."""

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
#: One request in about two years. Slower rates are zero in all but name, and an
#: emission interval past a float's range (or its exact integers) breaks the
#: bucket arithmetic: a division by zero locally, an overflow in RedisState.
_MIN_REFILL: Final = 1e-6


def _float(name: str, value: int | float) -> float:
    try:
        return float(value)
    except OverflowError:  # an int too large for a float
        raise ValueError(f"{name} is too large") from None


def check_response_size(value: object) -> int:
    """``max_response_size``: a number of bytes >= 1 (there is no "unlimited")."""
    return check_int("max_response_size", value, minimum=1)


def check_retries(value: object) -> int:
    return check_int("max_retries", value)


@attrs.frozen
class CallOptions:
    """Resolved options of one Vehicle handle.

    ``timeout`` bounds one HTTP attempt; ``deadline`` bounds a whole call
    (queueing, retries and backoff included); ``None`` disables either.

    Added in 0.1.0.
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
    per minute. The bucket counts HTTP requests, so a batch takes one token
    whatever its size (billing still counts each path). Pass
    ``Client(request_budget=RequestBudget())`` to turn it on.

    Added in 0.1.0.
    """

    capacity: int = 120
    refill_per_minute: float = 2.0

    def __attrs_post_init__(self) -> None:
        check_int("capacity", self.capacity, minimum=1)
        _float("capacity", self.capacity)
        rate = self.refill_per_minute
        if (
            isinstance(rate, bool)
            or not isinstance(rate, int | float)
            or not _MIN_REFILL <= _float("refill_per_minute", rate) < math.inf
        ):
            raise ValueError(f"refill_per_minute must be a finite number >= {_MIN_REFILL:g}")
