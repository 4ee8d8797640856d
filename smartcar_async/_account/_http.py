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

from .._exceptions import ClientClosedError
from .._options import DEFAULT_MAX_RESPONSE_SIZE, DEFAULT_TIMEOUT
from .._transport import USER_AGENT, RawResponse, Transport

__all__ = [
    "DEFAULT_TIMEOUT",
    "SessionSlot",
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


class SessionSlot:
    """The session of an object that borrows one, or owns one while inside ``async with``.

    Keeps the open/closed state that AuthClient and AppTokenSource share:
    entering twice or after closing is refused, closing is idempotent and
    closes only what was opened here.
    """

    __slots__ = ("_borrowed", "_name", "_owned", "_state")

    def __init__(self, name: str, borrowed: aiohttp.ClientSession | None) -> None:
        self._name = name
        self._borrowed = borrowed
        self._owned: aiohttp.ClientSession | None = None
        self._state = "unopened"

    @property
    def session(self) -> aiohttp.ClientSession | None:
        """The session to send on; None: open a short-lived one per request."""
        return self._borrowed or self._owned

    @property
    def closed(self) -> bool:
        return self._state == "closed"

    @property
    def state(self) -> str:
        """``unopened``, ``opened`` or ``closed``, for reprs."""
        return self._state

    def open(self) -> None:
        if self._state == "closed":
            raise ClientClosedError(f"This {self._name} is closed; create a new one")
        if self._state == "opened":
            raise RuntimeError(f"This {self._name} is already open; enter it only once")
        if self._borrowed is None:
            self._owned = aiohttp.ClientSession()
        self._state = "opened"

    def check_open(self) -> None:
        if self._state == "closed":
            raise ClientClosedError(f"This {self._name} is closed")

    def mark_closed(self) -> None:
        self._state = "closed"

    async def close(self) -> None:
        """Mark closed and close the session opened here (a borrowed one stays open)."""
        self._state = "closed"
        owned, self._owned = self._owned, None
        if owned is not None:
            await owned.close()
