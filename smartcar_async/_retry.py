"""Which failures are worth another attempt, and how long to wait before it."""

from __future__ import annotations

import random

import attrs

from ._exceptions import (
    APIConnectionError,
    APITimeoutError,
    ServerError,
    SmartcarError,
    UpstreamError,
)

__all__ = ["RetryConfig", "is_transient"]


@attrs.frozen
class RetryConfig:
    """Retry settings for reads (writes are never retried: Smartcar has no idempotency key).

    ``max_retries`` retries follow the first attempt, waiting ``initial_backoff``
    seconds doubling up to ``max_backoff``, less up to 25% jitter so that a
    fleet of workers does not retry in lockstep. A 429 whose Retry-After is at
    most ``max_retry_after`` seconds is waited out and retried; a longer one is
    raised at once.

    Added in 0.1.0.
    """

    max_retries: int = 2
    initial_backoff: float = 0.5
    max_backoff: float = 8.0
    max_retry_after: float = 60.0

    def __attrs_post_init__(self) -> None:
        if isinstance(self.max_retries, bool) or not isinstance(self.max_retries, int):
            raise TypeError("max_retries must be an int")
        if self.max_retries < 0:
            raise ValueError("max_retries must be >= 0")
        for name in ("initial_backoff", "max_backoff", "max_retry_after"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
                raise ValueError(f"{name} must be a number >= 0")

    def backoff(self, retry: int) -> float:
        """Seconds to wait before retry number ``retry`` (1-based)."""
        delay = min(self.max_backoff, self.initial_backoff * 2.0 ** (retry - 1))
        return delay * (1.0 - 0.25 * random.random())


def is_transient(exc: SmartcarError) -> bool:
    """Failures a later identical request may not meet: 5xx, 408, timeouts, lost connections."""
    if isinstance(exc, ServerError | UpstreamError | APITimeoutError | APIConnectionError):
        return True
    return exc.status_code == 408
