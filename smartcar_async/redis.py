"""RedisState: fleet state shared by many workers on many machines, on Redis.

Install the extra (``pip install 'smartcar-async[redis]'``; Redis 6.2 or newer,
7 recommended). :class:`RedisState` is a :class:`~smartcar_async.StateStore`
like :class:`~smartcar_async.SQLiteState` (token pairs with a compare-and-swap,
vehicle records), and adds what only a shared store can do: the application's
request bucket, rate-limit gates, a token refresh lock, and a schedule of
vehicles shared out by leases. Every shared primitive is one atomic Lua script
timed by Redis' own clock (``TIME``, kept monotonic by a high-water mark), never
by the workers' clocks, which may disagree by seconds.

::

    async with RedisState("redis://localhost:6379/0", namespace="my-fleet") as state:
        wait = await state.acquire(cost=3)     # three paths of a batch
        await anyio.sleep(wait)                # then send: the budget is reserved

Keys live under ``smartcar_async:{namespace}:``; two fleets (or a test and
production) share one Redis with two namespaces.

The application bucket (GCRA with reservation)
----------------------------------------------
Smartcar's budget belongs to the application: 120 requests, refilling 2 per
minute, each path of a batch counting as one (``budget=RequestBudget(...)``
changes it; give every worker the same). The script keeps one number, the
*theoretical arrival time* (TAT): every call moves it on by ``cost`` emission
intervals (30 s at 2 per minute) and answers how long the caller must wait
before sending: ``max(0, new_tat - capacity * interval - now)``. The reservation
is made at once, so the caller sleeps (on its own clock, for a duration Redis
computed) without holding a connection or coming back, and a later caller
always gets a later time: first come, first served, with no queue to clean up
after a crash. A full bucket answers 0 ``capacity`` times in a row, then exactly
one interval more per request. A reservation abandoned (the caller cancelled
while sleeping) is spent anyway: the bucket errs on the side of fewer requests.
A cost above the capacity could never be granted and is refused with
``ValueError`` before any I/O (send smaller batches).

Gates
-----
``block_vehicle(vid, seconds, code)`` after a 429 ``RATE_LIMIT:VEHICLE`` and
``block_app(seconds)`` after a ``RATE_LIMIT:SMARTCAR_API``: set-if-later (a
shorter Retry-After never shortens a gate) with the key expiring at the gate's
end (``PEXPIREAT``). ``blocked_for(vid)`` answers both gates in one round trip.
``admit(cost, vehicle_id)`` does the gates and the bucket in ONE round trip:
while a gate is closed it reserves nothing and says which gate and for how long;
otherwise it reserves like ``acquire``.

How the policy should call them (one request)::

    while True:
        admission = await state.admit(cost=len(paths), vehicle_id=vid)
        await anyio.sleep(admission.wait)
        if admission.reserved:
            break                       # the budget is ours: send now
        # a gate was closed: nothing reserved, ask again when it opens
    response = await send(...)
    if 429 RATE_LIMIT:VEHICLE:     await state.block_vehicle(vid, retry_after, code)
    if 429 RATE_LIMIT:SMARTCAR_API: await state.block_app(retry_after)

Token refresh: lock, re-read, refresh, compare-and-swap
-------------------------------------------------------
Smartcar invalidates a refresh token shortly after it is used, so two workers
refreshing the same lineage at once leave one of them with a dead pair. The
protocol, per lineage::

    async with state.lock(lineage, ttl=30, wait=60) as held:   # LockTimeoutError after wait
        pair = await state.load_tokens(lineage)   # another worker may have refreshed
        if pair.refresh_token != spent_by_me:     # it did: use theirs, no refresh
            return pair
        new = StoredTokens.from_access(await auth.exchange_refresh_token(pair.refresh_token))
        if await state.save_tokens(lineage, new, replacing=pair.refresh_token):
            return new                            # stored BEFORE first use
        return await state.load_tokens(lineage)   # a stale writer: the stored pair wins

The lock (``SET NX PX`` with a random owner; released by compare-and-delete,
so a worker never releases a lock that expired and was taken by another) makes
refreshes single-flight in the common case. It is not what keeps pairs safe:
the compare-and-swap is. If worker A's lock expires during a slow exchange,
worker B takes the lock, re-reads and still finds A's spent token, and spends
it too. Then either Smartcar refuses B's exchange (the token is used) or grants
it (a grace period). If A saves first, B's swap is refused (the stored token is
no longer the one B replaced), so B drops its own pair and loads A's; if B
saves first, A is the stale writer and does the same. Either way exactly one
pair is stored and every worker ends up using it; none is ever overwritten by a
pair derived from an older token. A worker whose exchange was REFUSED must not
give up at once: it re-reads the store (A's pair may just have landed) and, if
the stored refresh token is still the one it spent, waits for the lock again and
re-reads before failing with an ``AuthenticationError``. A worker that holds
the lock longer than expected can ``held.extend()`` it. A refresh never happens
without the lock: when Redis is unreachable, ``lock`` raises
:class:`~smartcar_async.StateUnavailableError` and the caller fails the calls
that need a new token rather than refresh alone.

Durability: a save returns True once Redis has applied it. What survives a
Redis crash is Redis' persistence setting: run it with ``appendonly yes``
(``appendfsync everysec`` loses at most a second; ``always`` nothing).

The schedule and leases
-----------------------
A sorted set of vehicle ids by next-due time (Redis clock), a sorted set of
leases by expiry, and who holds each lease::

    await state.load_schedule(ids, rounds=n)            # idempotent: the first loader wins
    while True:
        claim = await state.claim(worker_id, max_n=50, lease=120)   # ONE script call
        if not claim.vehicles:
            if await state.remaining() == 0:
                break                                   # every vehicle had its n polls
            await anyio.sleep(min(claim.next_due_in, 1.0)) ...
            continue
        results = await poller.poll([v.vehicle_id for v in claim.vehicles])
        await state.reschedule_many(worker_id, {v.vehicle_id: v.due + interval ...})

``claim`` first returns every expired lease (``until <= now``) to the schedule
at its old due time, then moves up to ``max_n`` vehicles due by ``now + ahead``
into the lease set with ``until = now + lease`` and returns them with their
due time, the polls already done (``polls_done``: which round this is) and
Redis' ``now`` (a worker maps Redis time to its own clock from it).
``reschedule`` completes a lease only while it is held by that worker and not
expired; it counts the poll (``rounds_done``) and, unless the vehicle has had
its ``rounds``, puts it back at ``next_due`` (Redis-clock epoch seconds; use
``v.due + interval`` for a fixed rate, ``claim.now + interval`` after a late
start). A refused reschedule means the lease expired and the vehicle may be
polled again by another worker: keep ``lease`` well above a poll's longest
duration (or ``renew`` it). ``release`` gives leases back unpolled (a worker
leaving). ``remaining()`` counts vehicles with a poll left (scheduled or
leased); it is 0 only once every vehicle has had its rounds. ``next_due()`` says
when a claim may next find work (None: nothing left), so an idle worker sleeps
until then instead of asking again and again.

Guarantee: a vehicle is polled at most once per schedule slot, except that a
lease lost to a crash (or a poll slower than its lease) may cause one repeat:
at-least-once. ``load_schedule`` refuses (``StateError``) a different vehicle
list or rounds count under a namespace already loaded: use another namespace,
or ``reset_schedule()`` first.

Faults and degraded mode
------------------------
A client made from a URL reconnects by itself (redis-py retries a failed
command twice with a short exponential backoff, connect timeout 2 s, command
timeout 5 s); a client you pass keeps its own settings and stays yours to
close. While Redis cannot be reached every call raises
:class:`~smartcar_async.StateUnavailableError` (a ``StateError``): the policy
and the poller then carry on with their local gates and local pacing (log it
once, count it in a metric) and probe with :meth:`RedisState.ping` until it
answers. Anything else wrong (a wrong password, a key of the wrong type, a
malformed stored value, use after close) raises a plain ``StateError``; bad
arguments raise ``TypeError``/``ValueError`` before any I/O. A command retried
after a lost reply may apply twice: the bucket then over-reserves (fewer
requests, never more), a claim's vehicles come back when its lease expires,
and a token swap answers False (load the stored pair: it is your own).

No message, repr or log line holds a token, and a URL's password is never shown.

Added in 0.1.0.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Final

try:
    import redis.asyncio as aioredis
    import redis.exceptions as redis_errors
    from redis.asyncio.retry import Retry
    from redis.backoff import ExponentialBackoff
except ImportError as exc:  # pragma: no cover - exercised in a subprocess
    raise ModuleNotFoundError(
        "smartcar_async.redis needs the redis package: pip install 'smartcar-async[redis]'",
        name="redis",
    ) from exc

from . import _redis_scripts as scripts
from ._exceptions import StateError
from ._options import RequestBudget
from ._redis_helpers import (
    _US,
    _describe_client,
    _describe_url,
    _duration_us,
    _nonempty,
    _reason,
    _spilled_credentials,
    _text,
)
from ._redis_lock import RefreshLock
from ._redis_quota import RedisQuotas
from ._redis_records import RedisRecords
from ._redis_schedule import RedisSchedule
from ._redis_types import Admission, Claim, ClaimedVehicle, LockTimeoutError
from ._shared import RefreshLocks, SharedLimits
from ._state import check_lineage

__all__ = ["Admission", "Claim", "ClaimedVehicle", "LockTimeoutError", "RedisState", "RefreshLock"]

_NAMESPACE: Final = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")


class RedisState(RedisRecords, RedisSchedule, RedisQuotas):
    """A :class:`~smartcar_async.StateStore` on Redis, shared by many workers (see the module).

    ``url_or_client``: a ``redis://``, ``rediss://`` or ``unix://`` URL (the
    store makes, configures and closes its client), or a ``redis.asyncio.Redis``
    (used as given, never closed by the store). No I/O until the first call;
    ``async with`` pings first so a wrong URL fails there. ``namespace``:
    letters, digits, ``_.-``, up to 64. ``budget``: the application bucket's
    capacity and refill (Smartcar's by default). Added in 0.1.0.
    """

    def __init__(
        self,
        url_or_client: str | aioredis.Redis,
        *,
        namespace: str = "default",
        budget: RequestBudget | None = None,
    ) -> None:
        if not isinstance(namespace, str):
            raise TypeError(f"namespace must be a str, not {type(namespace).__name__}")
        if not _NAMESPACE.fullmatch(namespace):
            raise ValueError(
                "namespace must be 1 to 64 letters, digits, '_', '.' or '-' "
                "(starting with a letter or digit)"
            )
        if budget is None:
            budget = RequestBudget()
        elif not isinstance(budget, RequestBudget):
            raise TypeError(f"budget must be a RequestBudget, not {type(budget).__name__}")
        self._capacity = budget.capacity
        # Emission interval in whole microseconds: exact arithmetic in the script.
        self._interval_us = max(1, round(60 * _US / budget.refill_per_minute))
        self._namespace = namespace
        self._prefix = f"smartcar_async:{namespace}:"
        if isinstance(url_or_client, str):
            self._where = _describe_url(url_or_client)
            if _spilled_credentials(url_or_client):
                # redis-py would connect to localhost, on a port taken from the
                # password, and quote that port in its errors.
                raise ValueError(
                    f"not a Redis URL: {self._where} (percent-encode '/', '?', '#' "
                    "and '@' in the user name and password)"
                )
            try:
                self._client: aioredis.Redis = aioredis.Redis.from_url(
                    url_or_client,
                    retry=Retry(ExponentialBackoff(cap=0.5, base=0.05), 2),
                    retry_on_error=[redis_errors.ConnectionError, redis_errors.TimeoutError],
                    socket_connect_timeout=2.0,
                    # No health_check_interval: with retries, redis-py 5 then hangs on
                    # an AUTH failure instead of raising it. A dead connection fails
                    # its next command, which the retry repeats on a new one.
                    socket_timeout=5.0,
                    client_name="smartcar_async",
                )
            except ValueError as exc:
                # redis-py quotes the URL, which may hold a password: say it without.
                raise ValueError(f"not a Redis URL: {self._where} ({_reason(exc)})") from None
            self._owned = True
        elif isinstance(url_or_client, aioredis.Redis):
            self._client = url_or_client
            self._where = _describe_client(url_or_client)
            self._owned = False
        else:
            raise TypeError(
                "url_or_client must be a Redis URL (str) or a redis.asyncio.Redis, "
                f"not {type(url_or_client).__name__}"
            )
        register = self._client.register_script
        self._scripts = {
            name: register(getattr(scripts, name))
            for name in (
                "NOW",
                "ACQUIRE",
                "PEEK",
                "ADMIT",
                "BLOCK",
                "BLOCKED_FOR",
                "UNLOCK",
                "RELOCK",
                "SAVE_TOKENS",
                "LOAD_SCHEDULE",
                "CLAIM",
                "RESCHEDULE",
                "RELEASE",
                "RENEW",
            )
        }
        self._closed = False
        self._entered = False
        # Tests only: a frozen Redis-clock time (microseconds) passed to every script.
        self._frozen_us: int | None = None

    @property
    def namespace(self) -> str:
        return self._namespace

    @property
    def closed(self) -> bool:
        return self._closed

    @property
    def capacity(self) -> int:
        """The application bucket's capacity (requests)."""
        return self._capacity

    def __repr__(self) -> str:
        state = "closed" if self._closed else "open"
        return f"<smartcar_async.RedisState {self._where} namespace={self._namespace!r} {state}>"

    # ------------------------------------------------- the application bucket

    async def acquire(self, cost: int = 1) -> float:
        """Reserve ``cost`` requests of the application bucket; the seconds to wait first.

        0.0 when granted at once. The reservation is made: sleep the returned
        time (holding nothing) and send. First come, first served across
        every worker. ``cost`` is the number of paths of a batch (1 for a GET).
        """
        cost = self._check_cost(cost)
        wait, _now = await self._script(
            "take from the bucket",
            "ACQUIRE",
            [self._key("clock"), self._key("bucket")],
            [cost, self._interval_us, self._capacity],
        )
        return self._time("take from the bucket", wait)

    async def available(self) -> float:
        """How many requests the bucket would grant now without a wait (fractional)."""
        room, _now = await self._script(
            "read the bucket",
            "PEEK",
            [self._key("clock"), self._key("bucket")],
            [self._interval_us, self._capacity],
        )
        try:
            return int(room) / self._interval_us
        except ValueError:  # "nan", from a clock another writer set to "inf"
            raise StateError(f"redis {self._where}: cannot read the bucket: not a number") from None

    async def admit(self, cost: int = 1, vehicle_id: str | None = None) -> Admission:
        """Check both gates, then reserve ``cost`` from the bucket: one round trip.

        While the application gate (or ``vehicle_id``'s) is closed nothing is
        reserved (``reserved`` is False, ``wait`` is until it opens).
        """
        cost = self._check_cost(cost)
        app = self._key("gate", "app")
        vehicle = app if vehicle_id is None else self._vehicle_gate(vehicle_id)
        wait, reason = await self._script(
            "admit a request",
            "ADMIT",
            [self._key("clock"), app, vehicle, self._key("bucket")],
            [cost, self._interval_us, self._capacity],
        )
        what = _text(reason)
        if what not in ("bucket", "app", "vehicle"):
            raise StateError(f"redis {self._where}: unexpected answer from the bucket script")
        return Admission(wait=self._time("admit a request", wait), reason=what)  # type: ignore[arg-type]

    # ----------------------------------------------------------------- gates

    async def block_vehicle(self, vehicle_id: str, seconds: float, code: str) -> bool:
        """Gate ``vehicle_id`` in every worker for ``seconds`` (Redis clock), unless it
        is already gated for longer. True if the gate moved later."""
        key = self._vehicle_gate(vehicle_id)
        return await self._block(key, seconds, code)

    async def block_app(self, seconds: float, code: str = "RATE_LIMIT:SMARTCAR_API") -> bool:
        """Gate the whole application for ``seconds``, set-if-later. True if it moved."""
        return await self._block(self._key("gate", "app"), seconds, code)

    async def blocked_for(self, vehicle_id: str | None = None) -> float:
        """Seconds until both the application gate and ``vehicle_id``'s are open; 0.0 if open."""
        app = self._key("gate", "app")
        vehicle = app if vehicle_id is None else self._vehicle_gate(vehicle_id)
        left = await self._script(
            "read the gates", "BLOCKED_FOR", [self._key("clock"), app, vehicle], []
        )
        return self._time("read the gates", left)

    async def _block(self, key: str, seconds: float, code: str) -> bool:
        duration = _duration_us("seconds", seconds, allow_zero=True)
        if not isinstance(code, str):
            raise TypeError(f"code must be a str, not {type(code).__name__}")
        if duration == 0:
            return False
        moved, _left = await self._script(
            "set a gate", "BLOCK", [self._key("clock"), key], [duration, code]
        )
        return int(moved) == 1

    # ----------------------------------------------------------- refresh lock

    def lock(self, lineage: str, *, ttl: float = 30.0, wait: float = 60.0) -> RefreshLock:
        """The refresh lock of ``lineage``, to use as ``async with state.lock(...) as held``.

        Entering waits up to ``wait`` seconds for it (then :class:`LockTimeoutError`);
        it expires by itself ``ttl`` seconds after it was taken or extended.
        """
        key = self._key("lock", "refresh", check_lineage(lineage))
        return RefreshLock(self, key, ttl=ttl, wait=wait)

    # ---------------------------------------------------------------- helpers

    def _vehicle_gate(self, vehicle_id: str) -> str:
        return self._key("gate", "vehicle", _nonempty("vehicle_id", vehicle_id))

    def _check_cost(self, cost: int) -> int:
        if isinstance(cost, bool) or not isinstance(cost, int):
            raise TypeError(f"cost must be an int, not {type(cost).__name__}")
        if cost < 1:
            raise ValueError(f"cost must be >= 1, not {cost}")
        if cost > self._capacity:
            raise ValueError(
                f"cost {cost} exceeds the bucket's capacity ({self._capacity}): "
                "it could never be granted; send fewer paths per batch"
            )
        return cost


if TYPE_CHECKING:

    def _capabilities(state: RedisState) -> tuple[SharedLimits, RefreshLocks]:
        """For mypy: the core finds the shared bucket, gates and lock by these protocols."""
        return state, state
