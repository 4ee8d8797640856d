"""One-off requests for code that runs without a `Client`.

The module-level functions (`get_user`, `get_connections`, ...) and
`AuthClient` work like the official SDK's: call them and they make their own
connection. Pass ``session=`` to borrow an aiohttp session instead (it is
never closed here), which reuses its connection pool across calls.
"""

from __future__ import annotations

import base64
import contextlib
from collections.abc import AsyncIterator, Mapping, Sequence
from typing import Any

import aiohttp

from .._options import DEFAULT_MAX_RESPONSE_SIZE, DEFAULT_TIMEOUT
from .._transport import USER_AGENT, RawResponse, Transport

__all__ = [
    "DEFAULT_TIMEOUT",
    "basic_auth",
    "open_session",
    "send",
]


def basic_auth(user: str, password: str) -> str:
    """An ``Authorization: Basic`` value (client credentials, or ``default:{amt}``)."""
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode("ascii")


@contextlib.asynccontextmanager
async def open_session(
    session: aiohttp.ClientSession | None,
) -> AsyncIterator[aiohttp.ClientSession]:
    """Yield *session* untouched, or a new one that is closed on the way out."""
    if session is not None:
        yield session
        return
    async with aiohttp.ClientSession() as owned:
        yield owned


async def send(
    method: str,
    url: str,
    *,
    session: aiohttp.ClientSession | None,
    timeout: float | None,
    authorization: str,
    params: Mapping[str, str] | None = None,
    form: Mapping[str, str] | None = None,
    json_body: Any = None,
    redact: Sequence[str] = (),
    max_response_size: int = DEFAULT_MAX_RESPONSE_SIZE,
) -> RawResponse:
    """One HTTP exchange on a borrowed session or a short-lived owned one.

    Returns the 2xx answer or raises a SmartcarError, like `Transport.request`,
    which removes the *authorization* credentials and every string in *redact*
    (a client secret, a refresh token or code sent in *form*) from the answer
    and from any error's text.
    """
    headers = {"Authorization": authorization, "User-Agent": USER_AGENT}
    async with open_session(session) as live:
        return await Transport(live, max_response_size=max_response_size).request(
            method,
            url,
            headers=headers,
            params=params or None,
            form=form,
            json_body=json_body,
            timeout=timeout,
            redact=redact,
        )
