"""Application tokens for Smartcar API v3: client credentials, cached and renewed ahead of expiry.

``POST {iam_origin}/oauth2/token`` with ``grant_type=client_credentials``
answers ``{"access_token", "token_type": "Bearer", "expires_in": 3600}``: one
hour, and no refresh token, so renewing means asking again with the client
credentials. The request body is JSON, as Smartcar's spec gives it and its
production integrations send it (a form body is accepted too, but JSON is the
documented one); the answer is read as JSON, or as a form when a server sends
that instead.

One :class:`AppTokenSource` serves a whole fleet: every vehicle handle built
with it shares one cached token, and N concurrent callers cause one token
request, run in a task of its own that callers await through a shield (as
`_tokens.RefreshingTokenSource` does), so a cancelled caller leaves and the
request goes on for the others.

By its imports this is account-level code (it shares credential handling and
one-off sessions with `AuthClient`); the core never imports it: the v3 handles
recognise an application token by ``getattr(source, "application_token", False)``.
"""

from __future__ import annotations

import asyncio
import logging
import math
import re
import time
from collections.abc import Mapping
from types import TracebackType
from typing import Any, ClassVar, Final, Self

import aiohttp

from . import _origins
from ._account._api import client_credentials
from ._account._http import DEFAULT_TIMEOUT, SessionSlot, open_session
from ._exceptions import ClientClosedError, InvalidResponseError, SmartcarError
from ._transport import USER_AGENT, RawResponse, Transport
from ._validate import check_bound, check_seconds

__all__ = ["AppTokenSource"]

logger = logging.getLogger("smartcar_async")

#: Smartcar's documented life of an application token, assumed when an answer omits it.
DEFAULT_LIFETIME: Final = 3600
#: The longest life taken from an answer, in seconds (a day; Smartcar's is an hour).
#: Longer claims are clamped, not refused: the token is good, and should it die
#: sooner, the 401 it then gets renews it through ``refresh``.
MAX_LIFETIME: Final = 24 * 3600
_DIGITS: Final = re.compile(r"[0-9]+")


class AppTokenSource:
    """Application tokens (Smartcar API v3) for one application, as a `TokenSource`.

    ``client_id`` and ``client_secret`` fall back to ``SMARTCAR_CLIENT_ID`` and
    ``SMARTCAR_CLIENT_SECRET``; a missing one is a ValueError before any I/O.
    ``iam_origin`` is the token service's origin (or its full ``/oauth2/token``
    URL); it falls back to ``SMARTCAR_IAM_ORIGIN``, then to
    ``https://iam.smartcar.com``, and is read when the source is built. (No
    official SDK names a variable for it; this one is ours.)

    ``token()`` returns the cached token while it is fresh and gets a new one
    ``refresh_margin`` seconds (default 300) before it expires, or halfway
    through its life if that comes later (a short-lived token is not renewed
    on every call). ``refresh(stale)``, after a 401, gets a new token unless
    another caller already did. Concurrent callers share one token request. If
    renewing ahead of expiry fails while the current token is still valid, that
    token is used (with a logged warning) and the next call tries again.

    Sessions as for `AuthClient`: ``session=`` borrows one (never closed here);
    inside ``async with`` the source owns one and closes it on exit or
    :meth:`aclose`; otherwise each token request opens and closes its own
    connection (one an hour). ``timeout`` is seconds per token request, None
    for no limit. After :meth:`aclose`, calls raise `ClientClosedError`.

    Use a source from one event loop: the shared request belongs to the loop
    that started it. The client secret and the tokens never appear in its repr,
    its logs or its errors.

    Added in 0.1.0.
    """

    #: Read by the v3 vehicle handles, which then require ``user_id``.
    application_token: ClassVar[bool] = True

    __slots__ = (
        "_client_secret",
        "_expires_at",
        "_fresh_until",
        "_inflight",
        "_margin",
        "_session",
        "_timeout",
        "_token",
        "_token_url",
        "client_id",
        "token_requests",
    )

    def __init__(
        self,
        client_id: str | None = None,
        client_secret: str | None = None,
        *,
        iam_origin: str | None = None,
        session: aiohttp.ClientSession | None = None,
        timeout: float | None = DEFAULT_TIMEOUT,
        refresh_margin: float = 300.0,
    ) -> None:
        self.client_id, self._client_secret = client_credentials(
            client_id, client_secret, "AppTokenSource"
        )
        self._token_url = _origins.iam_token_url(iam_origin)
        if session is not None and not isinstance(session, aiohttp.ClientSession):
            raise TypeError(
                f"session must be an aiohttp.ClientSession, got {type(session).__name__}"
            )
        self._timeout = check_bound("timeout", timeout)
        self._margin = check_seconds("refresh_margin", refresh_margin)
        self._session = SessionSlot("AppTokenSource", session)
        self._token: str | None = None
        # time.monotonic() values: a wall-clock jump must not age or rejuvenate a token.
        self._expires_at = 0.0
        self._fresh_until = 0.0
        self._inflight: asyncio.Task[str] | None = None
        #: Token requests that succeeded (each answer a new token).
        self.token_requests = 0

    # ------------------------------------------------------------ lifecycle

    async def __aenter__(self) -> Self:
        self._session.open()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Stop a token request in flight and close the session this source owns. Idempotent.

        Callers waiting for that request get `ClientClosedError`.

        Added in 0.1.0.
        """
        self._session.mark_closed()
        self._token = None
        task = self._inflight
        if task is not None and not task.done() and task.get_loop() is _running_loop():
            task.cancel()
            await asyncio.wait([task])
        await self._session.close()

    @property
    def closed(self) -> bool:
        """True once :meth:`aclose` ran (or the ``async with`` block ended)."""
        return self._session.closed

    @property
    def token_url(self) -> str:
        """The endpoint tokens are requested from."""
        return self._token_url

    @property
    def expires_in(self) -> float | None:
        """Seconds until the cached token expires (0 once it has), None before the first one."""
        if self._token is None:
            return None
        return max(0.0, self._expires_at - time.monotonic())

    def __repr__(self) -> str:
        cached = "fresh" if self._is_fresh() else ("valid" if self._is_valid() else "none")
        return (
            f"<smartcar_async.AppTokenSource client_id={self.client_id!r} "
            f"state={self._session.state} token={cached}>"
        )

    # ---------------------------------------------------------- TokenSource

    async def token(self) -> str:
        """A valid application token: the cached one, or a new one when it is due."""
        self._check_open()
        current = self._token
        if current is not None and self._is_fresh():
            return current
        try:
            return await self._renew()
        except ClientClosedError:
            raise
        except SmartcarError as exc:
            current = self._token
            if current is None or not self._is_valid():
                raise
            # The error's text is already free of secrets (the transport scrubbed it).
            logger.warning(
                "Renewing the application token failed (%s: %s); "
                "the current one stays in use until it expires",
                type(exc).__name__,
                exc,
            )
            return current

    async def refresh(self, stale: str) -> str:
        """A new token after ``stale`` was refused, or the current one if it already replaced it."""
        self._check_open()
        current = self._token
        if current is not None and current != stale and self._is_valid():
            return current  # another caller already renewed
        return await self._renew()

    # ------------------------------------------------------------- internals

    def _check_open(self) -> None:
        self._session.check_open()

    def _is_fresh(self) -> bool:
        return self._token is not None and time.monotonic() < self._fresh_until

    def _is_valid(self) -> bool:
        return self._token is not None and time.monotonic() < self._expires_at

    async def _renew(self) -> str:
        loop = asyncio.get_running_loop()
        task = self._inflight
        if task is not None and task.get_loop() is not loop:
            if not task.done() and not task.get_loop().is_closed():
                raise RuntimeError(
                    "This AppTokenSource is fetching a token on another event loop; "
                    "use one source per loop"
                )
            task = None  # left over from a loop that is gone
        if task is None:
            task = loop.create_task(self._fetch())
            # If every waiter was cancelled, nobody reads a failure: collect it
            # here so asyncio does not report it as never retrieved.
            task.add_done_callback(_collect)
            self._inflight = task
        try:
            # The shield keeps one caller's cancellation from cancelling the
            # request every other caller is waiting for.
            return await asyncio.shield(task)
        except asyncio.CancelledError:
            if task.cancelled() and not _being_cancelled():
                # aclose() stopped the shared request; this caller was not cancelled.
                raise ClientClosedError(
                    "The AppTokenSource was closed during this request"
                ) from None
            raise

    async def _fetch(self) -> str:
        try:
            started = time.monotonic()
            async with open_session(self._session.session) as session:
                resp = await Transport(session).request(
                    "POST",
                    self._token_url,
                    headers={"Accept": "application/json", "User-Agent": USER_AGENT},
                    json_body={
                        "grant_type": "client_credentials",
                        "client_id": self.client_id,
                        "client_secret": self._client_secret,
                    },
                    timeout=self._timeout,
                    # Removed from the answer and from any error's text, should
                    # the server echo it.
                    redact=(self._client_secret,),
                    form_answer=True,
                )
            token, lifetime = _token_from(resp)
            # Counted from before the request: the token's life began no earlier.
            self._token = token
            self._expires_at = started + lifetime
            self._fresh_until = started + max(lifetime - self._margin, lifetime / 2)
            self.token_requests += 1
            logger.debug("Obtained an application token valid for %d s", lifetime)
            return token
        finally:
            if self._inflight is asyncio.current_task():
                self._inflight = None


def _token_from(resp: RawResponse) -> tuple[str, float]:
    body = resp.body
    if not isinstance(body, Mapping):
        raise _bad(None, "expected an object", resp)
    token = body.get("access_token")
    if not isinstance(token, str) or not token or not token.isprintable() or " " in token:
        raise _bad("access_token", "expected a non-empty string without spaces", resp)
    token_type = body.get("token_type")
    if token_type is not None and (
        not isinstance(token_type, str) or token_type.lower() != "bearer"
    ):
        raise _bad("token_type", "expected 'Bearer'", resp)
    return token, _lifetime(body.get("expires_in"), resp)


def _lifetime(value: Any, resp: RawResponse) -> float:
    """``expires_in`` in seconds, clamped to `MAX_LIFETIME`."""
    if value is None:
        return DEFAULT_LIFETIME
    if isinstance(value, str) and _DIGITS.fullmatch(value):
        # A form answer's number. A very long one is clamped without int(),
        # which refuses more than 4300 digits.
        digits = value.lstrip("0") or "0"
        return float(MAX_LIFETIME) if len(digits) > 9 else float(min(int(digits), MAX_LIFETIME))
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise _bad("expires_in", "expected a number of seconds", resp)
    if (isinstance(value, float) and math.isnan(value)) or value < 0:
        raise _bad("expires_in", "expected a number of seconds >= 0", resp)
    return float(min(value, MAX_LIFETIME))


def _bad(field: str | None, reason: str, resp: RawResponse) -> InvalidResponseError:
    # Name the field and the expectation only: the value may be a token.
    where = f"{field}: " if field else ""
    return InvalidResponseError(
        f"Invalid application token response: {where}{reason}",
        field=field,
        status_code=resp.status,
        request_id=resp.request_id,
    )


def _running_loop() -> asyncio.AbstractEventLoop | None:
    try:
        return asyncio.get_running_loop()
    except RuntimeError:
        return None


def _being_cancelled() -> bool:
    current = asyncio.current_task()
    return current is not None and current.cancelling() > 0


def _collect(task: asyncio.Task[str]) -> None:
    if not task.cancelled():
        task.exception()
