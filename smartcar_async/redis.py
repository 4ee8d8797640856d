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

import asyncio
import datetime as dt
import hashlib
import json
import logging
import math
import random
import re
import secrets
import urllib.parse
from collections.abc import Awaitable, Iterable, Mapping
from types import TracebackType
from typing import TYPE_CHECKING, Any, Final, Literal, Self, TypeVar

import attrs

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

from . import _redis_quota as quota
from . import _redis_scripts as scripts
from ._exceptions import StateError, StateUnavailableError
from ._options import RequestBudget
from ._quota import VehicleQuota, check_count, check_month, check_quotas
from ._shared import RefreshLocks, SharedLimits
from ._state import (
    ParkedRead,
    StoredTokens,
    VehicleRecord,
    check_lineage,
    check_records,
    check_vehicle_id,
    check_vehicle_ids,
)

__all__ = ["Admission", "Claim", "ClaimedVehicle", "LockTimeoutError", "RedisState", "RefreshLock"]

logger = logging.getLogger("smartcar_async")

_T = TypeVar("_T")

_US: Final = 1_000_000
_NAMESPACE: Final = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")
_CHUNK: Final = 1000  # fields per HMGET/HSET
#: Gates and leases longer than this are refused: a day, as MAX_RETRY_AFTER.
_MAX_SECONDS: Final = 86_400.0
_UNAVAILABLE: Final = (
    redis_errors.BusyLoadingError,
    redis_errors.ReadOnlyError,
    redis_errors.TryAgainError,
    redis_errors.MasterDownError,
    redis_errors.TimeoutError,
    OSError,  # includes the builtin TimeoutError
)


class LockTimeoutError(StateError):
    """The refresh lock was held by another worker for longer than the wait. Added in 0.1.0."""


@attrs.frozen
class Admission:
    """What :meth:`RedisState.admit` decided: sleep ``wait`` seconds, then...

    ``reason == "bucket"`` (``reserved``): the request's budget is reserved, send
    it after the wait. ``"app"`` or ``"vehicle"``: that gate is closed for
    ``wait`` more seconds and nothing was reserved: ask again after it.

    Added in 0.1.0.
    """

    wait: float
    reason: Literal["bucket", "app", "vehicle"]

    @property
    def reserved(self) -> bool:
        return self.reason == "bucket"


@attrs.frozen
class ClaimedVehicle:
    """One vehicle of a :class:`Claim`: its due time (Redis-clock epoch seconds) and the
    polls it has had so far (0 in the first round).

    Added in 0.1.0.
    """

    vehicle_id: str
    due: float
    polls_done: int


@attrs.frozen
class Claim:
    """The leases one :meth:`RedisState.claim` took.

    ``now`` and ``lease_until`` are Redis-clock epoch seconds; ``reclaimed`` is how
    many expired leases (anyone's) that call returned to the schedule first.

    Added in 0.1.0.
    """

    now: float
    lease_until: float
    vehicles: tuple[ClaimedVehicle, ...]
    reclaimed: int


class RedisState:
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

    # ------------------------------------------------------------ lifecycle

    async def __aenter__(self) -> Self:
        if self._closed:
            raise StateError(f"redis {self._where}: this store is closed")
        if self._entered:
            raise RuntimeError("This RedisState is already open; enter it only once")
        self._entered = True
        try:
            await self._call("connect", self._client.ping())
        except BaseException:
            await self.aclose()
            raise
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close the client if the store made it (a given client stays open); idempotent."""
        if self._closed:
            return
        self._closed = True
        if self._owned:
            try:
                await self._client.aclose()
            except redis_errors.RedisError as exc:
                logger.warning("redis %s: closing failed: %s", self._where, _reason(exc))

    async def ping(self) -> bool:
        """True if Redis answers now; never raises for an unreachable server (a probe)."""
        try:
            await self._call("ping", self._client.ping())
        except StateUnavailableError:
            return False
        return True

    async def now(self) -> float:
        """Redis' clock (monotonic across this namespace's calls), in epoch seconds."""
        value = await self._script("read the clock", "NOW", [self._key("clock")], [])
        return _seconds(value)

    # ---------------------------------------------------------------- tokens

    async def load_tokens(self, lineage: str) -> StoredTokens | None:
        """The stored pair of ``lineage`` (see :func:`~smartcar_async.token_lineage`), or None."""
        key = self._key("tokens", check_lineage(lineage))
        found = await self._call("load tokens", self._client.hgetall(key))
        if not found:
            return None
        fields = {_text(k): _text(v) for k, v in found.items()}
        try:
            refresh_expiry = fields.get("refresh_expires_at")
            return StoredTokens(
                access_token=fields["access"],
                refresh_token=fields["refresh"],
                access_expires_at=_parse_time(fields["access_expires_at"]),
                refresh_expires_at=None if refresh_expiry is None else _parse_time(refresh_expiry),
            )
        except (KeyError, TypeError, ValueError):
            pass
        # Out here, with no detail: a corrupt hash may hold a token where a date belongs.
        raise StateError(f"redis {self._where}: a stored token pair is malformed")

    async def save_tokens(
        self, lineage: str, tokens: StoredTokens, *, replacing: str | None
    ) -> bool:
        """Store ``tokens`` if the stored refresh token is ``replacing`` (None: nothing stored).

        One Lua script, so the compare and the write are atomic across every
        worker. True once Redis has applied it; False, with the stored pair
        unchanged, if another writer got there first.
        """
        key = self._key("tokens", check_lineage(lineage))
        if not isinstance(tokens, StoredTokens):
            raise TypeError(f"tokens must be StoredTokens, not {type(tokens).__name__}")
        if replacing is not None and not isinstance(replacing, str):
            raise TypeError(f"replacing must be a str or None, not {type(replacing).__name__}")
        args = [
            "" if replacing is None else "=" + replacing,
            tokens.access_token,
            tokens.refresh_token,
            _time_text(tokens.access_expires_at),
            "" if tokens.refresh_expires_at is None else _time_text(tokens.refresh_expires_at),
        ]
        done = await self._call("save tokens", self._scripts["SAVE_TOKENS"](keys=[key], args=args))
        return int(done) == 1

    # -------------------------------------------------------------- vehicles

    async def load_vehicles(self, vehicle_ids: Iterable[str]) -> dict[str, VehicleRecord]:
        """The stored records of ``vehicle_ids``, in that order; ids with none are absent."""
        ids = check_vehicle_ids(vehicle_ids)
        if not ids:
            return {}
        key = self._key("vehicles")

        async def load() -> list[Any]:
            async with self._client.pipeline(transaction=True) as pipe:  # one snapshot
                for start in range(0, len(ids), _CHUNK):
                    pipe.hmget(key, ids[start : start + _CHUNK])
                return await pipe.execute()

        chunks = await self._call("load vehicles", load())
        values = [value for chunk in chunks for value in chunk]
        return {
            vid: self._record(vid, value)
            for vid, value in zip(ids, values, strict=True)
            if value is not None
        }

    async def save_vehicles(self, records: Mapping[str, VehicleRecord]) -> None:
        """Replace these vehicles' records in one MULTI/EXEC: all of them or none."""
        checked = check_records(records)
        if not checked:
            return
        key = self._key("vehicles")
        items = [(vid, _record_text(record)) for vid, record in checked.items()]

        async def save() -> None:
            async with self._client.pipeline(transaction=True) as pipe:
                for start in range(0, len(items), _CHUNK):
                    pipe.hset(key, mapping=dict(items[start : start + _CHUNK]))
                await pipe.execute()

        await self._call("save vehicles", save())

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
        return _seconds(wait)

    async def available(self) -> float:
        """How many requests the bucket would grant now without a wait (fractional)."""
        room, _now = await self._script(
            "read the bucket",
            "PEEK",
            [self._key("clock"), self._key("bucket")],
            [self._interval_us, self._capacity],
        )
        return int(room) / self._interval_us

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
        return Admission(wait=_seconds(wait), reason=what)  # type: ignore[arg-type]

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
        return _seconds(left)

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

    # ------------------------------------------------------ schedule and leases

    async def load_schedule(
        self,
        vehicle_ids: Iterable[str],
        *,
        first_due: float | None = None,
        rounds: int = 0,
    ) -> bool:
        """Put ``vehicle_ids`` on the shared schedule, once: True if this call loaded it.

        ``first_due``: Redis-clock epoch seconds (None: now). ``rounds``: polls per
        vehicle across all workers (0: no end). Idempotent: a later call with the
        same ids and rounds answers False and changes nothing; different ones
        raise :class:`StateError` (use another namespace, or :meth:`reset_schedule`).
        """
        ids = check_vehicle_ids(vehicle_ids)
        if isinstance(rounds, bool) or not isinstance(rounds, int):
            raise TypeError(f"rounds must be an int, not {type(rounds).__name__}")
        if rounds < 0:
            raise ValueError(f"rounds must be >= 0 (0: no end), not {rounds}")
        due = "" if first_due is None else str(_epoch_us("first_due", first_due))
        digest = hashlib.sha256("\n".join(sorted(ids)).encode("utf-8")).hexdigest()
        loaded = await self._script(
            "load the schedule",
            "LOAD_SCHEDULE",
            [self._key("clock"), self._key("schedule"), self._key("schedule", "meta")],
            [digest, rounds, due, *ids],
        )
        if int(loaded) < 0:
            raise StateError(
                f"redis {self._where}: namespace {self._namespace!r} already has a schedule "
                "with other vehicles or another rounds count; use another namespace "
                "(--fleet-name), or reset the schedule first"
            )
        return int(loaded) == 1

    async def reset_schedule(self) -> None:
        """Forget the schedule, leases and poll counts (tokens, records and gates stay)."""
        keys = [self._key(*part) for part in _SCHEDULE_KEYS]
        await self._call("reset the schedule", self._client.delete(*keys))

    async def claim(self, worker_id: str, *, max_n: int, lease: float, ahead: float = 0.0) -> Claim:
        """Lease up to ``max_n`` vehicles due by Redis' now + ``ahead``, earliest first.

        One script call: expired leases (anyone's, ``until <= now``) go back to
        the schedule first, then the due vehicles move to the lease set until
        now + ``lease`` seconds, held by ``worker_id``.
        """
        worker = _nonempty("worker_id", worker_id)
        if isinstance(max_n, bool) or not isinstance(max_n, int):
            raise TypeError(f"max_n must be an int, not {type(max_n).__name__}")
        if max_n < 0:
            raise ValueError(f"max_n must be >= 0, not {max_n}")
        lease_us = _duration_us("lease", lease, allow_zero=False)
        ahead_us = _duration_us("ahead", ahead, allow_zero=True)
        reply = await self._script(
            "claim vehicles",
            "CLAIM",
            [self._key("clock"), *self._lease_keys(), self._key("rounds")],
            [worker, ahead_us, max_n, lease_us],
        )
        try:
            now, until, reclaimed, *rest = reply
            vehicles = tuple(
                ClaimedVehicle(
                    vehicle_id=_text(rest[i]),
                    due=_seconds(rest[i + 1]),
                    polls_done=int(rest[i + 2]),
                )
                for i in range(0, len(rest), 3)
            )
            return Claim(
                now=_seconds(now),
                lease_until=_seconds(until),
                vehicles=vehicles,
                reclaimed=int(reclaimed),
            )
        except (TypeError, ValueError, IndexError):
            raise StateError(f"redis {self._where}: unexpected answer to a claim") from None

    async def reschedule(self, vehicle_id: str, next_due: float, worker_id: str) -> bool:
        """Complete ``worker_id``'s lease of ``vehicle_id``: count the poll and schedule the
        next at ``next_due`` (Redis-clock epoch seconds). False if the lease is no longer
        that worker's (it expired: another worker may poll the vehicle)."""
        done = await self.reschedule_many(worker_id, {vehicle_id: next_due})
        return done[vehicle_id] is not None

    async def reschedule_many(
        self, worker_id: str, next_due: Mapping[str, float]
    ) -> dict[str, int | None]:
        """:meth:`reschedule` for many vehicles in one call: vehicle id -> the polls it has
        had now (``rounds_done``), or None where the lease was refused."""
        worker = _nonempty("worker_id", worker_id)
        if not isinstance(next_due, Mapping):
            raise TypeError(f"next_due must be a mapping, not {type(next_due).__name__}")
        args: list[str | int] = [worker]
        for vid, due in next_due.items():
            args += [_nonempty("a vehicle id", vid), _epoch_us("next_due", due)]
        if not next_due:
            return {}
        keys = [self._key("clock"), *self._lease_keys(), self._key("rounds")]
        reply = await self._script(
            "reschedule vehicles", "RESCHEDULE", [*keys, self._key("schedule", "meta")], args
        )
        return {
            vid: (None if int(done) < 0 else int(done))
            for vid, done in zip(next_due, reply, strict=True)
        }

    async def release(self, worker_id: str, vehicle_ids: Iterable[str] | None = None) -> int:
        """Give ``worker_id``'s leases (all, or these) back to the schedule unpolled, at
        their old due time; how many it gave back. For a worker leaving."""
        worker = _nonempty("worker_id", worker_id)
        ids = [] if vehicle_ids is None else check_vehicle_ids(vehicle_ids)
        if vehicle_ids is not None and not ids:
            return 0
        given = await self._script(
            "release leases", "RELEASE", [self._key("clock"), *self._lease_keys()], [worker, *ids]
        )
        return int(given)

    async def renew(self, worker_id: str, vehicle_ids: Iterable[str], lease: float) -> int:
        """Extend ``worker_id``'s unexpired leases of ``vehicle_ids`` to now + ``lease``;
        how many were still held and extended."""
        worker = _nonempty("worker_id", worker_id)
        ids = check_vehicle_ids(vehicle_ids)
        lease_us = _duration_us("lease", lease, allow_zero=False)
        if not ids:
            return 0
        renewed = await self._script(
            "renew leases",
            "RENEW",
            [self._key("clock"), self._key("leases"), self._key("leases", "info")],
            [worker, lease_us, *ids],
        )
        return int(renewed)

    async def rounds_done(self, vehicle_id: str) -> int:
        """How many polls of ``vehicle_id`` were completed (rescheduled), by any worker."""
        vid = _nonempty("vehicle_id", vehicle_id)
        done = await self._call("read a poll count", self._client.hget(self._key("rounds"), vid))
        return 0 if done is None else int(done)

    async def remaining(self) -> int:
        """Vehicles with a poll left (scheduled or leased): 0 once all had their rounds."""

        async def count() -> int:
            async with self._client.pipeline(transaction=True) as pipe:
                pipe.zcard(self._key("schedule"))
                pipe.zcard(self._key("leases"))
                scheduled, leased = await pipe.execute()
            return int(scheduled) + int(leased)

        return await self._call("count the vehicles left", count())

    async def next_due(self) -> float | None:
        """When a claim may next find work (Redis-clock epoch seconds): the earliest due
        vehicle or lease expiry, whichever comes first; None when no vehicle has a poll left.

        One round trip; a worker with nothing to claim sleeps until then."""

        async def earliest() -> list[Any]:
            async with self._client.pipeline(transaction=True) as pipe:
                pipe.zrange(self._key("schedule"), 0, 0, withscores=True)
                pipe.zrange(self._key("leases"), 0, 0, withscores=True)
                return await pipe.execute()

        heads = await self._call("read the schedule", earliest())
        try:
            scores = [float(head[0][1]) for head in heads if head]
        except (TypeError, ValueError, IndexError):
            raise StateError(f"redis {self._where}: unexpected answer from the schedule") from None
        return min(scores) / _US if scores else None

    async def schedule_loaded(self) -> bool:
        """Whether a schedule is loaded under this namespace (False after :meth:`reset_schedule`,
        or after a Redis restart that kept nothing)."""
        found = await self._call(
            "read the schedule", self._client.exists(self._key("schedule", "meta"))
        )
        return int(found) == 1

    # ------------------------------------------- billed requests, quotas (_redis_quota)

    async def add_billed(self, vehicle_id: str, month: str, n: int) -> int:
        """Add ``n`` to the vehicle's billed requests of ``month`` (HINCRBY); the new total."""
        vid, key = check_vehicle_id(vehicle_id), self._key("billed", check_month(month))
        count = check_count("n", n, minimum=0)
        return await self._call(
            "count billed requests", quota.add_billed(self._client, key, vid, count)
        )

    async def billed(self, vehicle_id: str, month: str) -> int:
        """The vehicle's billed requests of ``month`` (0 when none)."""
        vid, key = check_vehicle_id(vehicle_id), self._key("billed", check_month(month))
        return await self._call("read billed requests", quota.billed(self._client, key, vid))

    async def load_quotas(self, vehicle_ids: Iterable[str]) -> dict[str, VehicleQuota]:
        """The stored make and recent poll times of ``vehicle_ids``; ids with none are absent."""
        ids = check_vehicle_ids(vehicle_ids)
        found = await self._call(
            "load quotas", quota.load_quotas(self._client, self._key("quotas"), ids)
        )
        try:
            return {vid: quota.parse_quota(value) for vid, value in found.items()}
        except (TypeError, ValueError, RecursionError) as exc:
            raise StateError(f"redis {self._where}: a stored quota is malformed: {exc}") from None

    async def save_quotas(self, records: Mapping[str, VehicleQuota]) -> None:
        """Replace these vehicles' makes and recent poll times in one MULTI/EXEC."""
        checked = check_quotas(records)
        await self._call(
            "save quotas", quota.save_quotas(self._client, self._key("quotas"), checked)
        )

    # ---------------------------------------------------------------- helpers

    def _key(self, *parts: str) -> str:
        return self._prefix + ":".join(parts)

    def _vehicle_gate(self, vehicle_id: str) -> str:
        return self._key("gate", "vehicle", _nonempty("vehicle_id", vehicle_id))

    def _lease_keys(self) -> list[str]:
        return [self._key("schedule"), self._key("leases"), self._key("leases", "info")]

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

    async def _script(
        self,
        what: str,
        name: str,
        keys: list[str],
        args: list[Any],
    ) -> Any:
        frozen = "" if self._frozen_us is None else str(self._frozen_us)
        return await self._call(what, self._scripts[name](keys=keys, args=[frozen, *args]))

    async def _call(self, what: str, operation: Awaitable[_T]) -> _T:
        if self._closed:
            if asyncio.iscoroutine(operation):
                operation.close()  # never awaited: no "was never awaited" warning
            raise StateError(f"redis {self._where}: this store is closed")
        try:
            return await operation
        except (redis_errors.AuthenticationError, redis_errors.AuthorizationError) as exc:
            # A ConnectionError to redis-py, but no reconnect will fix it.
            raise StateError(f"redis {self._where}: cannot {what}: {_reason(exc)}") from exc
        except (redis_errors.ConnectionError, *_UNAVAILABLE) as exc:
            raise StateUnavailableError(
                f"redis {self._where}: cannot {what}: unreachable ({_reason(exc)})"
            ) from exc
        except redis_errors.RedisError as exc:
            raise StateError(f"redis {self._where}: cannot {what}: {_reason(exc)}") from exc

    def _record(self, vid: str, value: object) -> VehicleRecord:
        try:
            return _parse_record(_text(value))
        except (TypeError, ValueError, KeyError, RecursionError) as exc:
            raise StateError(
                f"redis {self._where}: the record of vehicle {vid!r} is malformed: {exc}"
            ) from None


_SCHEDULE_KEYS: Final = (
    ("schedule",),
    ("schedule", "meta"),
    ("leases",),
    ("leases", "info"),
    ("rounds",),
)


class RefreshLock:
    """A token lineage's refresh lock in Redis (from :meth:`RedisState.lock`).

    ``async with`` takes it (waiting up to ``wait``), and releases it on the way
    out only if it is still this holder's (compare-and-delete with a random
    owner token). The owner token is not shown in the repr. Added in 0.1.0.
    """

    def __init__(self, state: RedisState, key: str, *, ttl: float, wait: float) -> None:
        self._state = state
        self._key = key
        self._ttl_ms = max(1, _duration_us("ttl", ttl, allow_zero=False) // 1000)
        self._wait = _duration_us("wait", wait, allow_zero=True) / _US
        self._owner = secrets.token_hex(16)
        self._held = False

    @property
    def held(self) -> bool:
        """True between a successful take and the release (it may have expired since)."""
        return self._held

    def __repr__(self) -> str:
        return f"<smartcar_async.RefreshLock {self._key!r} held={self._held}>"

    async def try_acquire(self) -> bool:
        """Take the lock if it is free, without waiting; True if taken."""
        if self._held:
            raise RuntimeError("This RefreshLock is already held; take it once at a time")
        client = self._state._client
        taken = await self._state._call(
            "take the refresh lock", client.set(self._key, self._owner, nx=True, px=self._ttl_ms)
        )
        self._held = bool(taken)
        return self._held

    async def acquire(self) -> None:
        """Take the lock, polling until it is free for up to ``wait`` seconds."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self._wait
        pause = 0.01
        while not await self.try_acquire():
            left = deadline - loop.time()
            if left <= 0:
                raise LockTimeoutError(
                    f"redis {self._state._where}: the refresh lock {self._key!r} was "
                    f"still held by another worker after {self._wait:g} s"
                )
            # Jittered so that waiters do not poll in step.
            await asyncio.sleep(min(left, pause * random.uniform(0.5, 1.5)))
            pause = min(pause * 2, 0.25)

    async def extend(self, ttl: float | None = None) -> bool:
        """Push the expiry to ``ttl`` (default: the lock's) from now, if still ours."""
        ttl_ms = self._ttl_ms if ttl is None else max(1, _duration_us("ttl", ttl) // 1000)
        state = self._state
        done = await state._call(
            "extend the refresh lock",
            state._scripts["RELOCK"](keys=[self._key], args=[self._owner, ttl_ms]),
        )
        return int(done) == 1

    async def release(self) -> bool:
        """Release the lock if it is still ours (not expired and taken by another)."""
        if not self._held:
            return False
        self._held = False
        state = self._state
        done = await state._call(
            "release the refresh lock",
            state._scripts["UNLOCK"](keys=[self._key], args=[self._owner]),
        )
        if int(done) != 1:
            logger.warning(
                "redis %s: the refresh lock %s expired before its release "
                "(a refresh took longer than its ttl)",
                state._where,
                self._key,
            )
        return int(done) == 1

    async def __aenter__(self) -> Self:
        await self.acquire()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        try:
            await self.release()
        except StateError:
            if exc is None:
                raise
            # The body's own error matters more; the lock expires by itself.


if TYPE_CHECKING:

    def _capabilities(state: RedisState) -> tuple[SharedLimits, RefreshLocks]:
        """For mypy: the core finds the shared bucket, gates and lock by these protocols."""
        return state, state


# ------------------------------------------------------------------ helpers


def _describe_url(url: str) -> str:
    """The URL without its credentials or query (a password may be in either)."""
    try:
        parts = urllib.parse.urlsplit(url)
    except ValueError:
        return "<a malformed URL>"
    host = parts.hostname or ""
    try:
        port = f":{parts.port}" if parts.port is not None else ""
    except ValueError:
        port = ""
    return f"{parts.scheme}://{host}{port}{parts.path}"


def _describe_client(client: aioredis.Redis) -> str:
    kwargs = client.connection_pool.connection_kwargs
    if kwargs.get("path"):
        return f"unix://{kwargs['path']}"
    host, port, db = kwargs.get("host", "localhost"), kwargs.get("port", 6379), kwargs.get("db", 0)
    return f"redis://{host}:{port}/{db}"


def _reason(exc: BaseException) -> str:
    text = str(exc).strip()
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def _text(value: object) -> str:
    if isinstance(value, bytes):
        return value.decode("utf-8")
    if isinstance(value, str):
        return value
    raise TypeError(f"expected text from Redis, got {type(value).__name__}")


def _seconds(value: object) -> float:
    """Microseconds from a script (a string, or an integer reply) as seconds."""
    if isinstance(value, int) and not isinstance(value, bool):
        return value / _US
    return int(_text(value)) / _US


def _nonempty(name: str, value: object) -> str:
    if not isinstance(value, str):
        raise TypeError(f"{name} must be a str, not {type(value).__name__}")
    if not value:
        raise ValueError(f"{name} must not be empty")
    return value


def _finite(name: str, value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TypeError(f"{name} must be a number of seconds, not {type(value).__name__}")
    try:
        seconds = float(value)
    except OverflowError:
        raise ValueError(f"{name} must be finite") from None
    if not math.isfinite(seconds):
        raise ValueError(f"{name} must be finite, not {seconds}")
    return seconds


def _duration_us(name: str, value: object, *, allow_zero: bool = False) -> int:
    seconds = _finite(name, value)
    if seconds < 0 or (seconds == 0 and not allow_zero):
        raise ValueError(f"{name} must be {'>= 0' if allow_zero else '> 0'}, not {seconds}")
    if seconds > _MAX_SECONDS:
        raise ValueError(f"{name} must be at most {_MAX_SECONDS:g} s (a day), not {seconds}")
    return math.ceil(seconds * _US)


def _epoch_us(name: str, value: object) -> int:
    seconds = _finite(name, value)
    if not 0 <= seconds < 2**53 / _US:
        raise ValueError(f"{name} must be epoch seconds, not {seconds}")
    return round(seconds * _US)


def _time_text(value: dt.datetime) -> str:
    return value.astimezone(dt.UTC).isoformat()


def _parse_time(value: str) -> dt.datetime:
    parsed = dt.datetime.fromisoformat(value)
    if parsed.utcoffset() is None:
        raise ValueError("a stored time has no time zone")
    return parsed


def _record_text(record: VehicleRecord) -> str:
    return json.dumps(
        {
            "next_due": record.next_due,
            "blocked_until": record.blocked_until,
            "failures": record.failures,
            "parked": {
                read: [p.reason, p.until, p.fingerprint] for read, p in record.parked.items()
            },
        },
        separators=(",", ":"),
        allow_nan=False,
    )


def _refuse_constant(name: str) -> object:
    raise ValueError(f"{name} is not a valid number")


_DECODER: Final = json.JSONDecoder(parse_constant=_refuse_constant)


def _parse_record(text: str) -> VehicleRecord:
    data = _DECODER.decode(text)
    if not isinstance(data, dict):
        raise TypeError("not a JSON object")
    parked = data["parked"]
    if not isinstance(parked, dict):
        raise TypeError("parked reads are not a JSON object")
    reads: dict[str, ParkedRead] = {}
    for read, entry in parked.items():
        if not isinstance(entry, list) or len(entry) != 3:
            raise TypeError(f"parked read {read!r} is not [reason, until, fingerprint]")
        reason, until, fingerprint = entry
        reads[read] = ParkedRead(reason=reason, until=until, fingerprint=fingerprint)
    return VehicleRecord(
        next_due=data["next_due"],
        blocked_until=data["blocked_until"],
        failures=data["failures"],
        parked=reads,
    )
