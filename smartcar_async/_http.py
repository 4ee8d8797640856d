"""One-off requests for code that runs without a `Client`.

The module-level functions (`get_user`, `get_connections`, ...) and
`AuthClient` work like the official SDK's: call them and they make their own
connection. Pass ``session=`` to borrow an aiohttp session instead (it is
never closed here), which reuses its connection pool across calls.
"""

from __future__ import annotations

import base64
import contextlib
import platform
from collections.abc import AsyncIterator, Iterable, Mapping, Sequence
from typing import Any, Final

import aiohttp

from ._exceptions import SmartcarError
from ._options import DEFAULT_MAX_RESPONSE_SIZE, DEFAULT_TIMEOUT
from ._transport import RawResponse, Transport
from ._validate import check_bound
from ._version import __version__

__all__ = [
    "DEFAULT_TIMEOUT",
    "USER_AGENT",
    "basic_auth",
    "check_timeout",
    "open_session",
    "scrub",
    "send",
]

USER_AGENT: Final = (
    f"smartcar-async/{__version__} (Python {platform.python_version()}; "
    f"aiohttp {aiohttp.__version__})"
)


def check_timeout(timeout: object) -> float | None:
    """Seconds for one HTTP exchange, or None for no limit (the rule of `check_bound`)."""
    return check_bound("timeout", timeout)


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
    with every string in *redact* blanked out of the error's text.
    """
    headers = {"Authorization": authorization, "User-Agent": USER_AGENT}
    try:
        async with open_session(session) as live:
            return await Transport(live, max_response_size=max_response_size).request(
                method,
                url,
                headers=headers,
                params=params or None,
                form=form,
                json_body=json_body,
                timeout=timeout,
            )
    except SmartcarError as exc:
        scrub(exc, redact)
        raise


_REDACTED: Final = "<redacted>"


def scrub(exc: SmartcarError, secrets: Iterable[str]) -> None:
    """Blank out, in place, any secret an error's text carries.

    Smartcar's token endpoint echoes what it rejects ("Invalid refresh_token:
    <token>."); such text must not reach logs through the exception.
    """
    # Longest first, so a secret containing another is replaced whole.
    words = sorted({s for s in secrets if s}, key=len, reverse=True)
    if not words:
        return

    def clean(text: str) -> str:
        for word in words:
            text = text.replace(word, _REDACTED)
        return text

    for name, value in list(vars(exc).items()):
        if isinstance(value, str):
            setattr(exc, name, clean(value))
    exc.args = tuple(clean(a) if isinstance(a, str) else a for a in exc.args)
