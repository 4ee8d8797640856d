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
from ._validate import check_seconds

__all__ = ["RetryConfig", "is_transient"]


@attrs.frozen
class RetryConfig:
    """Retry settings for reads (writes are never retried: Smartcar has no idempotency key).

    Retries (as many as the call's ``CallOptions.max_retries``) wait
    ``initial_backoff`` seconds doubling up to ``max_backoff``, less up to 25%
    jitter so that a fleet of workers does not retry in lockstep. A 429 whose Retry-After is at
    most ``max_retry_after`` seconds is waited out and retried; a longer one is
    raised at once.

    Added in 0.1.0.
    """

    initial_backoff: float = 0.5
    max_backoff: float = 8.0
    max_retry_after: float = 60.0

    def __attrs_post_init__(self) -> None:
        for name in ("initial_backoff", "max_backoff", "max_retry_after"):
            check_seconds(name, getattr(self, name))

    def backoff(self, retry: int) -> float:
        """Seconds to wait before retry number ``retry`` (1-based)."""
        # Past 2**63 every sane cap is reached; a larger power would overflow.
        growth = 2.0 ** min(max(retry - 1, 0), 63)
        delay = min(self.max_backoff, self.initial_backoff * growth)
        return delay * (1.0 - 0.25 * random.random())


def is_transient(exc: SmartcarError) -> bool:
    """Failures a later identical request may not meet: 5xx, 408, timeouts, lost connections."""
    if isinstance(exc, ServerError | UpstreamError | APITimeoutError | APIConnectionError):
        return True
    return exc.status_code == 408
