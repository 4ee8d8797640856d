"""StoredTokenSource: a token source whose every rotation is durable before it is used.

Smartcar invalidates a refresh token shortly after its first use, so a
rotated pair that exists only in memory is one crash away from a user who
must reconnect. This source keeps one lineage's pair in a
:class:`~smartcar_async.StateStore` and follows the order the store's
module documents:

- first use: the store's pair for the lineage, if there is one (it wins over
  the one given here, which may be a file's stale first pair); else the given
  pair is saved (``replacing=None``) and used;
- refresh: exchange the refresh token, save the new pair with a
  compare-and-swap replacing the spent token, and only then hand it out. A
  lost swap means another writer (another process) rotated first: its pair is
  loaded and used. A save that keeps failing fails the callers with
  :class:`~smartcar_async.AuthenticationError` and the new pair is kept aside,
  unused, to be saved again on the next call: it is never used unsaved.

With a store shared by many processes (one that can lock a lineage, such
as :class:`~smartcar_async.redis.RedisState`), a refresh is single-flight
across processes too: take the lineage's lock, re-read the stored pair
(another process may have refreshed it: use theirs), refresh only if still
needed, save with the compare-and-swap, release. The lock keeps refreshes
one at a time in the common case; the swap is what keeps pairs safe when a
lock expires during a slow refresh (the loser loads and uses the stored
pair). A refused refresh waits (up to ``lock_wait``) for the pair of a
process whose lock expired before it fails. A refresh never happens without
the lock: when it cannot be taken (the store unreachable, or held past
``lock_wait``) those calls fail with :class:`~smartcar_async.AuthenticationError`.

One refresh runs at a time, in a task of its own that callers await through a
shield, as in :class:`~smartcar_async.RefreshingTokenSource`: a caller that is
cancelled leaves, and the refresh (and its save) goes on for the others.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
from collections.abc import Callable
from typing import Final

from ._exceptions import AuthenticationError, SmartcarError, StateError, StateUnavailableError
from ._models_account import Access
from ._shared import RefreshLocks, SharedLock
from ._state import StateStore, StoredTokens, check_lineage, token_lineage
from ._tokens import TokenExchanger, _margin, _refresh_due
from ._validate import check_seconds

__all__ = ["StoredTokenSource"]

logger = logging.getLogger("smartcar_async")

#: Pauses before the second and later attempts to save a refreshed pair.
_SAVE_PAUSES: Final = (0.1, 0.4)


class StoredTokenSource:
    """One user's tokens, refreshed through ``auth`` and kept in ``store``.

    ``initial`` is the pair to start from when the store holds none for the
    lineage: an :class:`~smartcar_async.Access`, a
    :class:`~smartcar_async.StoredTokens`, or a refresh token alone (the
    first use then refreshes). ``lineage`` defaults to
    ``token_lineage(initial's refresh token)``; keep passing the same initial
    refresh token (a vehicles file's) and a restart finds the rotated pair.

    The access token is refreshed ``refresh_margin`` seconds before it
    expires, and after a 401. Once a refresh has shown how long access tokens
    live, the margin is at most half that life, so that short-lived tokens
    (the emulator's ``token_ttl``) are not refreshed on every call.
    Concurrent callers share one refresh, and a new pair is saved in the store
    before any caller gets it (see the module docs for what happens when the
    save fails or another process rotated first).

    Errors: the auth client's (a refused refresh token is an
    :class:`~smartcar_async.AuthenticationError`), the store's
    :class:`~smartcar_async.StateError` when it cannot be read, and an
    AuthenticationError when a refreshed pair cannot be saved. No message
    holds a token. ``refreshes`` counts the exchanges this source made, and
    ``on_refresh(ok)``, when given, hears of each exchange as it ends
    (``ok`` False when the token endpoint refused it or failed), for metrics.

    With a store that locks lineages across processes (``RedisState``), each
    refresh holds the lineage's lock for up to ``lock_ttl`` seconds (it
    expires by itself after that), and callers wait up to ``lock_wait``
    seconds for it (see the module docs). Both are ignored otherwise.

    Added in 0.1.0.
    """

    def __init__(
        self,
        auth: TokenExchanger,
        store: StateStore,
        initial: Access | StoredTokens | str,
        *,
        lineage: str | None = None,
        refresh_margin: float = 300.0,
        on_refresh: Callable[[bool], object] | None = None,
        lock_ttl: float = 30.0,
        lock_wait: float = 30.0,
    ) -> None:
        if not isinstance(store, StateStore):
            raise TypeError(f"store must be a StateStore, not {type(store).__name__}")
        if not callable(getattr(auth, "exchange_refresh_token", None)):
            raise TypeError("auth must have an exchange_refresh_token method (an AuthClient)")
        given: StoredTokens | None
        if isinstance(initial, Access):
            given = StoredTokens.from_access(initial)
        elif isinstance(initial, StoredTokens):
            given = initial
        elif isinstance(initial, str):
            given = None
            token_lineage(initial)  # the same checks: a non-empty str
            first = initial
        else:
            raise TypeError(
                "initial must be an Access, StoredTokens or a refresh token (str), "
                f"not {type(initial).__name__}"
            )
        self._auth = auth
        self._store = store
        self._locks = store if isinstance(store, RefreshLocks) else None
        self._lock_ttl = check_seconds("lock_ttl", lock_ttl)
        if self._lock_ttl <= 0:
            raise ValueError("lock_ttl must be > 0")
        self._lock_wait = check_seconds("lock_wait", lock_wait)
        self._first_refresh = first if given is None else given.refresh_token
        self._lineage = (
            token_lineage(self._first_refresh) if lineage is None else check_lineage(lineage)
        )
        self._given = given
        self._margin = _margin(refresh_margin)
        # The pair in use; once set, always one the store confirmed (or held).
        self._pair: StoredTokens | None = None
        # How long the token endpoint's access tokens live, once a refresh said.
        self._lifetime: dt.timedelta | None = None
        # A refreshed pair whose save failed, and the refresh token it replaces.
        self._unsaved: tuple[StoredTokens, str | None] | None = None
        self._inflight: asyncio.Task[StoredTokens] | None = None
        self._on_refresh = on_refresh
        self.refreshes = 0

    @property
    def lineage(self) -> str:
        """The store key of this user's pair (a digest; see :func:`token_lineage`)."""
        return self._lineage

    @property
    def tokens(self) -> StoredTokens | None:
        """The pair in use (its repr hides the tokens); None before the first use."""
        return self._pair

    def __repr__(self) -> str:
        expires = "unloaded" if self._pair is None else self._pair.access_expires_at.isoformat()
        return f"<StoredTokenSource lineage={self._lineage[:12]} expires={expires}>"

    # ---------------------------------------------------------- TokenSource

    async def token(self) -> str:
        pair = self._pair
        if pair is not None and self._unsaved is None and not self._due(pair):
            return pair.access_token
        return (await self._renew_once(None)).access_token

    async def refresh(self, stale: str) -> str:
        pair = self._pair
        if pair is not None and pair.access_token != stale and self._unsaved is None:
            return pair.access_token  # someone else already refreshed
        joined = self._inflight is not None
        pair = await self._renew_once(stale)
        if joined and pair.access_token == stale:
            # The flight we joined was not a refresh of this token (a first load).
            pair = await self._renew_once(stale)
        return pair.access_token

    async def drain(self) -> None:
        """Wait until no refresh is in flight: its new pair saved, or its failure settled.

        Call it before closing the store or the auth client, so that a
        refresh a cancelled caller left behind is not cut off between the
        exchange and the save.
        """
        task = self._inflight
        if task is not None:
            await asyncio.wait([task])

    # --------------------------------------------------------------- the flight

    async def _renew_once(self, stale: str | None) -> StoredTokens:
        task = self._inflight
        if task is None:
            task = asyncio.get_running_loop().create_task(self._renew(stale))
            # Nobody may be left to read a failure: collect it.
            task.add_done_callback(_collect)
            if not task.done():
                # An eager task factory (3.12+) may have run it to its end already
                # (a fresh pair needs no wait): kept, it would stand as the renewal
                # in flight for good.
                self._inflight = task
        # One caller's cancellation must not cancel what the others wait for.
        return await asyncio.shield(task)

    async def _renew(self, stale: str | None) -> StoredTokens:
        try:
            if self._unsaved is not None:
                pair: StoredTokens | None = await self._save_unsaved()
            elif self._pair is None:
                pair = await self._first_pair()
            elif self._locks is not None:
                pair = self._pair  # re-read under the lock, below
            else:
                pair = await self._newest()
            if self._fresh(pair, stale):
                assert pair is not None
                return pair
            if self._locks is None:
                return await self._rotate(pair)
            return await self._rotate_locked(self._locks, stale)
        finally:
            self._inflight = None

    def _fresh(self, pair: StoredTokens | None, stale: str | None) -> bool:
        return pair is not None and not self._due(pair) and pair.access_token != stale

    async def _rotate_locked(self, locks: RefreshLocks, stale: str | None) -> StoredTokens:
        """Refresh under the lineage's shared lock, unless another process just did."""
        lock = await self._take_lock(locks)
        try:
            try:
                pair = await self._reread()
            except StateError as exc:
                raise AuthenticationError(
                    f"The token could not be refreshed: the stored pair could not be read ({exc})",
                    type="AUTHENTICATION",
                ) from exc
            if self._fresh(pair, stale):
                assert pair is not None
                return pair
            return await self._rotate(pair, patience=self._lock_wait)
        finally:
            try:
                await lock.release()
            except StateError as exc:
                # It expires by itself; the pair is saved (or not) either way.
                logger.warning(
                    "token lineage %s: releasing the refresh lock failed: %s",
                    self._lineage[:12],
                    exc,
                )

    async def _take_lock(self, locks: RefreshLocks) -> SharedLock:
        """The lineage's lock, waiting up to ``lock_wait``; else AuthenticationError."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self._lock_wait
        pause = 0.05
        while True:
            left = max(0.0, deadline - loop.time())
            lock = locks.lock(self._lineage, ttl=self._lock_ttl, wait=left)
            try:
                await lock.acquire()
                return lock
            except StateUnavailableError as exc:
                failure: StateError = exc
                if loop.time() + pause < deadline:
                    await asyncio.sleep(pause)
                    pause = min(pause * 2, 1.0)
                    continue
            except StateError as exc:  # held by another process past the wait
                failure = exc
            break
        logger.error(
            "token lineage %s: no refresh: the shared refresh lock could not be taken: %s",
            self._lineage[:12],
            failure,
        )
        raise AuthenticationError(
            "The token could not be refreshed: the shared refresh lock could not be taken "
            f"within {self._lock_wait:g} s, and a refresh never happens without it ({failure})",
            type="AUTHENTICATION",
        ) from failure

    async def _reread(self) -> StoredTokens | None:
        """The stored pair, adopted if another process refreshed it; else the one in use."""
        stored = await self._store.load_tokens(self._lineage)
        if stored is not None and (
            self._pair is None or stored.refresh_token != self._pair.refresh_token
        ):
            if self._pair is not None:
                logger.info(
                    "token lineage %s: using the pair another process refreshed",
                    self._lineage[:12],
                )
            self._adopt(stored)
        return self._pair

    async def _first_pair(self) -> StoredTokens | None:
        """The store's pair (it wins), else the given one once saved; None: refresh first."""
        stored = await self._store.load_tokens(self._lineage)
        if stored is None and self._given is not None:
            if await self._store.save_tokens(self._lineage, self._given, replacing=None):
                self._adopt(self._given)
                return self._given
            stored = await self._store.load_tokens(self._lineage)  # another writer was first
            if stored is None:
                raise StateError("the state store refused a first token pair but holds none")
        if stored is not None:
            self._adopt(stored)
        return stored

    async def _newest(self) -> StoredTokens:
        """The pair in use, or the store's if another writer rotated it since."""
        assert self._pair is not None
        stored = await self._store.load_tokens(self._lineage)
        if stored is not None and stored.refresh_token != self._pair.refresh_token:
            logger.info(
                "token lineage %s: using the pair another process refreshed", self._lineage[:12]
            )
            self._adopt(stored)
        return self._pair

    async def _rotate(self, pair: StoredTokens | None, *, patience: float = 0.0) -> StoredTokens:
        # No pair in use: nothing is stored yet, and the first save claims the lineage.
        spent = self._first_refresh if pair is None else pair.refresh_token
        replacing = None if pair is None else spent
        try:
            access = await self._auth.exchange_refresh_token(spent)
        except AuthenticationError:
            # Perhaps another process spent it a moment ago: its successor is
            # stored, or (its lock expired mid-refresh) soon will be.
            stored = await self._successor(spent, patience)
            if stored is not None:
                self._adopt(stored)
                return stored
            self._report(ok=False)
            raise
        except SmartcarError:
            self._report(ok=False)
            raise
        self.refreshes += 1
        self._report(ok=True)
        self._lifetime = dt.timedelta(seconds=access.expires_in)
        self._unsaved = (StoredTokens.from_access(access), replacing)
        return await self._save_unsaved()

    async def _successor(self, spent: str, patience: float) -> StoredTokens | None:
        """The stored pair once it no longer holds ``spent``, waiting up to ``patience`` s."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + patience
        pause = 0.05
        while True:
            try:
                stored = await self._store.load_tokens(self._lineage)
            except StateError:
                if not patience:
                    raise
                stored = None
            if stored is not None and stored.refresh_token != spent:
                return stored
            if loop.time() + pause >= deadline:
                return None
            await asyncio.sleep(pause)
            pause = min(pause * 2, 0.5)

    async def _save_unsaved(self) -> StoredTokens:
        assert self._unsaved is not None
        new, replacing = self._unsaved
        failure: StateError | None = None
        for attempt in range(len(_SAVE_PAUSES) + 1):
            if attempt:
                await asyncio.sleep(_SAVE_PAUSES[attempt - 1])
            try:
                if await self._store.save_tokens(self._lineage, new, replacing=replacing):
                    stored: StoredTokens | None = new
                else:
                    stored = await self._store.load_tokens(self._lineage)
            except StateError as exc:
                failure = exc
                logger.warning(
                    "token lineage %s: saving the refreshed pair failed (attempt %d): %s",
                    self._lineage[:12],
                    attempt + 1,
                    exc,
                )
                continue
            if stored is None:
                # The row vanished (a store reset): the next save claims it afresh.
                replacing = None
                self._unsaved = (new, None)
                continue
            self._unsaved = None
            if stored.refresh_token != new.refresh_token:
                logger.info(
                    "token lineage %s: another process refreshed first; using its pair",
                    self._lineage[:12],
                )
            else:
                logger.info("token lineage %s: refreshed and saved", self._lineage[:12])
            self._adopt(stored)
            return stored
        why = f": {failure}" if failure is not None else ""
        logger.error(
            "token lineage %s: a refreshed token pair could not be saved to the state store%s; "
            "it is not used, and the save is tried again on the next request",
            self._lineage[:12],
            why,
        )
        raise AuthenticationError(
            "The refreshed token pair could not be saved to the state store, so it is not "
            f"used (a pair that is not saved is lost at exit){why}",
            type="AUTHENTICATION",
        ) from failure

    # ---------------------------------------------------------------- expiry

    def _report(self, *, ok: bool) -> None:
        if self._on_refresh is None:
            return
        try:
            self._on_refresh(ok)
        except Exception:
            # Counting refreshes must never fail one.
            logger.exception("on_refresh callback raised")

    def _adopt(self, pair: StoredTokens) -> None:
        self._pair = pair

    def _due(self, pair: StoredTokens) -> bool:
        return _refresh_due(pair.access_expires_at, self._margin, self._lifetime)


def _collect(task: asyncio.Task[StoredTokens]) -> None:
    if not task.cancelled():
        task.exception()
