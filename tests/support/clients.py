"""The one client factory for loopback tests, and the token every folder sends."""

from __future__ import annotations

from typing import Any

from smartcar_async import Client
from support.tasks import HANG_GUARD

TOKEN = "tok-SECRET-3f9a7c1e"  # distinctive, so a leak is easy to grep for
OTHER_TOKEN = "tok-OTHER-8b2d4e6f"

#: Bounded timeouts and small backoffs keep the suite fast; retries still happen for real.
FAST: dict[str, Any] = {
    "timeout": HANG_GUARD,
    "close_timeout": 5.0,
    "retry_backoff": 0.01,
    "max_backoff": 0.05,
}

#: For tests that look at one attempt at a time.
NO_RETRY: dict[str, Any] = {"max_retries": 0}


def make_client(origin: str, **overrides: Any) -> Client:
    """A client on ``origin`` with `FAST` settings; ``overrides`` win."""
    return Client(api_origin=origin, **{**FAST, **overrides})
