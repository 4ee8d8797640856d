"""Token sources: where a vehicle's access token comes from when it is not a fixed string.

Smartcar access tokens live two hours, and a refresh token is invalidated
shortly after use, so N concurrent callers must cause ONE refresh. The
:class:`RefreshingTokenSource` runs each refresh in a task of its own that
callers await through a shield: a caller that is cancelled leaves, the
refresh goes on for the others, and the new tokens still reach ``on_refresh``.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
from collections.abc import Awaitable, Callable
from typing import Protocol, runtime_checkable

from ._models_account import Access
from ._validate import check_seconds

__all__ = [
    "CallableTokenSource",
    "RefreshingTokenSource",
    "TokenExchanger",
    "TokenSource",
    "as_token_source",
]

logger = logging.getLogger("smartcar_async")


@runtime_checkable
class TokenSource(Protocol):
    """Anything that can hand out an access token and renew it after a 401.

    ``token()`` returns a token that is valid now. ``refresh(stale)`` is called
    with the token the API just refused; it returns a fresh one (or the
    current one, if another caller already refreshed). Added in 0.1.0.
    """

    async def token(self) -> str: ...

    async def refresh(self, stale: str) -> str: ...


class TokenExchanger(Protocol):
    """What :class:`RefreshingTokenSource` needs of an auth client (``AuthClient`` fits)."""

    async def exchange_refresh_token(self, refresh_token: str) -> Access: ...


class CallableTokenSource:
    """Adapts ``async def get_token() -> str`` to :class:`TokenSource`.

    After a 401 the callable is simply asked again. Added in 0.1.0.
    """

    __slots__ = ("_fn",)

    def __init__(self, fn: Callable[[], Awaitable[str]]) -> None:
        self._fn = fn

    async def token(self) -> str:
        return await self._fn()

    async def refresh(self, stale: str) -> str:
        return await self._fn()

    # Two handles built from one callable are one identity: their reads may
    # share a batch.
    def __eq__(self, other: object) -> bool:
        if not isinstance(other, CallableTokenSource):
            return NotImplemented
        return self._fn == other._fn

    def __hash__(self) -> int:
        return hash(self._fn)

    def __repr__(self) -> str:
        return f"<CallableTokenSource {getattr(self._fn, '__qualname__', 'callable')}>"


class RefreshingTokenSource:
    """Keeps one user's tokens fresh with an auth client.

    It refreshes ``refresh_margin`` seconds before the access token expires,
    and after a 401. Concurrent callers share one refresh. Each new
    :class:`Access` is handed to ``on_refresh`` (sync or async) so that you
    can persist the new refresh token: the old one stops working soon after.

    Added in 0.1.0.
    """

    def __init__(
        self,
        auth: TokenExchanger,
        access: Access,
        *,
        on_refresh: Callable[[Access], object] | None = None,
        refresh_margin: float = 300.0,
    ) -> None:
        self._auth = auth
        self._access = access
        self._on_refresh = on_refresh
        self._margin = _margin(refresh_margin)
        self._inflight: asyncio.Task[Access] | None = None
        # Learnt at each refresh; unknown for the pair given.
        self._lifetime: dt.timedelta | None = None
        self.refreshes = 0

    @property
    def access(self) -> Access:
        """The current tokens (their repr hides the secrets)."""
        return self._access

    def __repr__(self) -> str:
        return f"<RefreshingTokenSource expires={self._access.expiration.isoformat()}>"

    async def token(self) -> str:
        if _refresh_due(self._access.expiration, self._margin, self._lifetime):
            return (await self._refresh_once()).access_token
        return self._access.access_token

    async def refresh(self, stale: str) -> str:
        if stale != self._access.access_token:
            return self._access.access_token  # someone else already refreshed
        return (await self._refresh_once()).access_token

    async def _refresh_once(self) -> Access:
        task = self._inflight
        if task is None:
            task = asyncio.get_running_loop().create_task(self._do_refresh())
            # If every waiter was cancelled, nobody reads a failure: collect it
            # here so asyncio does not report it as never retrieved.
            task.add_done_callback(_collect)
            if not task.done():
                # An eager task factory (3.12+) may have run it to its end already:
                # kept, it would stand as the refresh in flight for good.
                self._inflight = task
        # The shield keeps one caller's cancellation from cancelling the refresh
        # every other caller is waiting for.
        return await asyncio.shield(task)

    async def _do_refresh(self) -> Access:
        try:
            access = await self._auth.exchange_refresh_token(self._access.refresh_token)
            self._access = access
            self._lifetime = access.expiration - dt.datetime.now(dt.UTC)
            self.refreshes += 1
            if self._on_refresh is not None:
                try:
                    result = self._on_refresh(access)
                    if isinstance(result, Awaitable):
                        await result
                except Exception:
                    # Persisting is the user's job; a failure there must not
                    # turn a good refresh into a failed request.
                    logger.exception("on_refresh callback raised; the new tokens are in use")
            return access
        finally:
            self._inflight = None


def _refresh_due(
    expires_at: dt.datetime, margin: dt.timedelta, lifetime: dt.timedelta | None
) -> bool:
    """Whether an access token expiring at ``expires_at`` should be refreshed now.

    Within ``margin`` of its expiry, or of half its ``lifetime`` when that is
    known and shorter: tokens that live less than the margin would otherwise
    be refreshed on every call. A pair whose life is unknown (loaded, or
    given) is refreshed at the full margin: one early refresh, which then
    tells the life.
    """
    if lifetime is not None:
        margin = min(margin, lifetime / 2)
    # expires_at - now, not now + margin: the sum could pass datetime.max.
    return expires_at - dt.datetime.now(dt.UTC) <= margin


def _margin(seconds: object) -> dt.timedelta:
    checked = check_seconds("refresh_margin", seconds)
    try:
        return dt.timedelta(seconds=checked)
    except OverflowError:  # more than timedelta holds (some 2.7 million years)
        raise ValueError("refresh_margin is too large") from None


def _collect(task: asyncio.Task[Access]) -> None:
    if not task.cancelled():
        task.exception()


def as_token_source(value: object) -> TokenSource | None:
    """A TokenSource for a source or an async callable; None for anything else."""
    if isinstance(value, TokenSource):
        return value
    if callable(value):
        return CallableTokenSource(value)
    return None
