"""The fleet poller: read the same signals from many vehicles, round after round.

How a run is laid out in time::

    round 1            round 2            round 3
    |--jitter--|       |--jitter--|       |--jitter--|
    t0                 t0 + interval      t0 + 2 * interval

Every vehicle is read once per round, at ``t0 + (round - 1) * interval`` plus an
offset that is a stable hash of (vehicle id, round) scaled to
``jitter * interval``. The offset is deterministic, so two pollers with the
same interval read a vehicle at the same moment and their reads share one
batch (identical reads share one sub-request).

A vehicle that cannot be read within its round's slot (it is backing off after
a rate limit or a vehicle-state error, or its previous poll ran long) gets a
*skipped* result for that round instead: every round accounts for every
vehicle, and nothing ever waits for a slow vehicle but that vehicle.

A read that answers COMPATIBILITY (501) or PERMISSION (403) for a vehicle is
*parked* for that vehicle: not asked again for ``recheck`` seconds, and
reported as parked in each round's result meanwhile (Smartcar bills the "no"
as a read). An AUTHENTICATION (401) answer to a vehicle whose handle holds a
plain token (nothing can refresh it) parks the whole vehicle until its token
changes (:meth:`FleetPoller.add` with a new one) or ``recheck`` passes. A poll
whose reads are all parked sends nothing and still yields its result: parking
never takes a vehicle out of a round.

With a :class:`~smartcar_async.StateStore`, parked reads and back-offs
survive a restart: records are loaded when the poller starts (and, for
vehicles added later, before their first poll), saved in batches as they
change, and flushed when the poller stops, even when it is cancelled.

Many workers share one fleet when ``state`` is a shared schedule
(:class:`~smartcar_async.redis.RedisState`): each worker loads the same
vehicles (the first loader wins), then claims batches of due vehicles by
lease (one call for many), polls them with the same poll step as a lone poller (reads
still coalesce into one batch per vehicle), and reschedules each one at its
due time + ``interval``. Workers may join and leave at any time. A worker that
stops gives its unfinished leases back at once; one that dies loses them when
they expire (``lease`` seconds after the claim or the last renewal; a worker
renews its leases every ``lease / 3`` while their polls run), and the others
take them. Guarantee: a vehicle is polled at most once per interval, except
that a lease lost to a crash (or to an outage longer than the lease) may cause
one repeat: at-least-once. ``rounds=N`` counts polls across all workers: each
vehicle is polled N times in all (a poll counts once its result is taken from
``results()``: one still buffered when a worker stops is polled again by
another), and each worker's results stream ends once no vehicle has a poll left.
A result's ``round`` is the vehicle's poll number.
While the store is unreachable, claims wait (logged once, retried with a
backoff) and finished polls are rescheduled once it answers.

FleetPoller is the public face (lifecycle, fleet, results); its parts are
private modules: ``_poll_args`` (argument checks), ``_poll_rounds`` (the
schedule of a lone poller), ``_poll_shared`` (claiming from a shared one,
whose leases ``_poll_leases`` keeps), ``_poll_step`` (one vehicle's poll),
``_poll_state`` (back-offs and parks), ``_poll_quota`` (spending rules) and
``_poll_result``.
"""

from __future__ import annotations

import inspect
import math
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Mapping
from types import TracebackType
from typing import Final, Literal, Self

import anyio
from anyio.abc import TaskGroup
from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream

from ._names import ReadName
from ._poll_args import READ_NAMES as READ_NAMES  # re-exported: the CLI and tests use it
from ._poll_args import (
    check_jitter,
    check_reads,
    check_shard,
    check_state,
    check_worker_id,
)
from ._poll_args import shard_of as shard_of  # re-exported: the tests use it
from ._poll_leases import _Leases
from ._poll_quota import build_quotas
from ._poll_result import PollOutcome, PollResult, SkipReason, _Results
from ._poll_rounds import _Entry, _RoundSchedule
from ._poll_shared import _SharedPolling
from ._poll_state import (
    _Saver,
    _VehicleState,
    lift_parks,
    parked_reads,
    parked_whole,
)
from ._quota import FreshnessOracle, MakeLimit
from ._shared_schedule import SharedSchedule
from ._state import StateStore
from ._validate import check_bound, check_int, check_interval
from ._vehicle import Vehicle

__all__ = ["FleetPoller", "PollOutcome", "PollResult", "SkipReason"]

_DEFAULT_MAX_BACKOFF: Final = 900.0
_DEFAULT_LEASE: Final = 30.0
_DEFAULT_RECHECK: Final = 86_400.0


class FleetPoller(_RoundSchedule, _SharedPolling):
    """Poll many vehicles for the same reads every ``interval`` seconds.

    ::

        async with smartcar_async.Client() as client, FleetPoller(
            reads=("odometer", "location"), interval=300.0
        ) as poller:
            poller.add(*(client.vehicle(vid, access_token=tok) for vid, tok in rows))
            async for result in poller.results():
                store(result.vehicle_id, result.values, result.errors)

    Vehicles are the handles :meth:`Client.vehicle` gives, so each one brings
    its own token (or token source) and unit system. Add and remove them at
    any time; adding a vehicle id again replaces its handle (a new token, say)
    and keeps its schedule. The reads of one poll are issued together, so the
    client sends them as one batch.

    Args:
        reads: names of :class:`Vehicle` read methods, e.g. ``("odometer",
            "location", "tire_pressure")``.
        interval: seconds between rounds.
        jitter: the fraction of ``interval`` over which each round's polls
            are spread, 0 to 1.
        rounds: stop after this many rounds (the result stream then ends);
            None polls until the poller is stopped.
        max_concurrent_vehicles: vehicles polled at once.
        timeout: seconds one vehicle's reads may take before the missing ones
            fail with :class:`APITimeoutError`; None relies on the client's
            own timeouts.
        backoff: seconds a vehicle is held back after a vehicle-state error
            (asleep, unreachable) or a rate limit without ``Retry-After``,
            doubling with each consecutive one up to ``max_backoff``;
            defaults to ``interval``. A ``Retry-After`` is always honoured.
        max_backoff: the cap on ``backoff``.
        shard: ``(index, count)``: keep only the vehicles whose id hashes to
            ``index`` of ``count`` shards (see :meth:`shard_of`), so that
            ``count`` processes split one fleet without coordinating.
        max_buffered_results: results held for a slow consumer before
            polling waits for it.
        vehicles: vehicles to start with (the same as :meth:`add`).
        recheck: seconds a parked read (COMPATIBILITY, PERMISSION) or a
            parked vehicle (AUTHENTICATION) waits before it is asked again;
            default 24 hours.
        state: a :class:`~smartcar_async.StateStore` (``SQLiteState(path)``)
            that keeps parked reads and back-offs across restarts. The
            caller opens and closes it; the poller only loads and saves
            vehicle records (one poller per vehicle and store at a time).
            A store that fails on entry raises :class:`StateError` there;
            one that fails later is logged and tried again, and a last
            save that fails when the poller stops raises it. A shared
            schedule (:class:`~smartcar_async.redis.RedisState`) also shares
            the polls out among many workers by leases (see the module).
        lease: with a shared schedule, seconds a worker holds the vehicles it
            claimed; renewed every ``lease / 3`` while their polls run, so it
            only bounds how long a dead worker's vehicles wait for another.
        worker_id: with a shared schedule, this worker's name in its leases
            (default: host, process id and a random suffix; keep it unique).
        monthly_budget: billed requests a vehicle may use per calendar month
            (UTC): its polls are spread so that it lasts the month, and a poll
            that could go past it is skipped (``"budget"``), never sent; a
            WARNING is logged once per vehicle and month at 80%. The count
            (what the client billed for the vehicle, see ``stats.billed_requests``)
            is kept in ``state`` and so survives restarts (in memory without one).
        make_limits: ``True`` honours :data:`DEFAULT_MAKE_LIMITS` (Smartcar's
            brand quirks: Hyundai and Kia 20 polls a day, GM once every 30
            minutes); a mapping of make -> :class:`MakeLimit` (or None to lift
            a default) goes on top of them. A vehicle's make is asked once
            (``attributes()``, one billed request) and kept in ``state``.
            Polls that would break a limit are skipped (``"make_limit"``).
        freshness: a :class:`FreshnessOracle`: reads it says a webhook answered
            within ``interval`` are not requested (see :attr:`PollResult.fresh`).
        clock: the wall clock of months and brand windows, epoch seconds
            (default ``time.time``; tests pass a compressed one).

    Leaving the ``async with`` block stops polling: reads in flight are
    cancelled, and every ``results()`` iterator ends. An API failure is a
    result, never an exception; anything else a read raises is a bug, and
    stops the poller with it. Added in 0.1.0.
    """

    def __init__(
        self,
        *,
        reads: Iterable[ReadName],
        interval: float,
        jitter: float = 0.1,
        rounds: int | None = None,
        max_concurrent_vehicles: int = 100,
        timeout: float | None = None,
        backoff: float | None = None,
        max_backoff: float = _DEFAULT_MAX_BACKOFF,
        shard: tuple[int, int] | None = None,
        max_buffered_results: int = 100,
        vehicles: Iterable[Vehicle] = (),
        recheck: float = _DEFAULT_RECHECK,
        state: StateStore | None = None,
        lease: float = _DEFAULT_LEASE,
        worker_id: str | None = None,
        monthly_budget: int | None = None,
        make_limits: bool | Mapping[str, MakeLimit | None] = False,
        freshness: FreshnessOracle | None = None,
        clock: Callable[[], float] | None = None,
    ) -> None:
        self._reads = check_reads(reads)
        self._interval = check_interval("interval", interval)
        self._jitter = check_jitter(jitter)
        if rounds is not None:
            check_int("rounds", rounds, minimum=1)
        self._rounds = rounds
        check_int("max_concurrent_vehicles", max_concurrent_vehicles, minimum=1)
        self._max_concurrent = max_concurrent_vehicles
        self._timeout = check_bound("timeout", timeout)
        self._backoff = self._interval if backoff is None else check_interval("backoff", backoff)
        self._max_backoff = check_interval("max_backoff", max_backoff)
        self._shard = check_shard(shard)
        check_int("max_buffered_results", max_buffered_results, minimum=0)
        self._buffer = max_buffered_results
        self._recheck = check_interval("recheck", recheck)
        check_state(state)
        self._store = state
        self._saver = _Saver(state)
        self._shared = state if isinstance(state, SharedSchedule) else None
        if self._shared is not None and self._shard is not None:
            raise ValueError(
                "shard cannot be used with a shared schedule: its leases share the fleet"
            )
        self._lease = check_interval("lease", lease)
        self._worker_id = check_worker_id(worker_id)
        self._leases: _Leases | None = None
        self._quotas = build_quotas(
            state, monthly_budget, make_limits, freshness, clock, self._interval, self._recheck
        )

        self._phase: Literal["new", "running", "finished", "closed"] = "new"
        self._states: dict[str, _VehicleState] = {}
        # Removed vehicles, kept while their last round may still be current
        # so that adding one back resumes its schedule instead of repeating it.
        self._gone: dict[str, _VehicleState] = {}
        self._heap: list[_Entry] = []
        self._sequence = 0
        self._inflight = 0
        self._t0 = 0.0
        self._wakeup: anyio.Event | None = None
        self._scope = anyio.CancelScope()
        self._tg: TaskGroup | None = None
        self._slots: anyio.Semaphore
        self._send: MemoryObjectSendStream[PollResult] | None = None
        self._receive: MemoryObjectReceiveStream[PollResult] | None = None
        self.add(*vehicles)

    # ------------------------------------------------------------ lifecycle

    async def __aenter__(self) -> Self:
        if self._phase != "new":
            raise RuntimeError(f"This poller is {self._phase}; create a new one")
        if self._store is not None:
            # Before anything starts: a store that cannot be read fails the entry, cleanly.
            await self._saver.load(list(self._states.values()), strict=True)
        if self._shared is not None:
            if not self._states:
                raise ValueError("a shared schedule needs the vehicles before the poller starts")
            # The first worker to load the fleet wins; the others find it loaded.
            await self._shared.load_schedule(list(self._states), rounds=self._rounds or 0)
        self._send, self._receive = anyio.create_memory_object_stream[PollResult](self._buffer)
        self._slots = anyio.Semaphore(self._max_concurrent)
        self._wakeup = anyio.Event()
        tg = anyio.create_task_group()
        await tg.__aenter__()
        self._tg = tg
        self._phase = "running"
        self._t0 = anyio.current_time()
        if self._shared is not None:
            tg.start_soon(self._schedule_shared, self._shared)
        else:
            for state in self._states.values():
                self._plan(state, 1)
            tg.start_soon(self._schedule)
        if self._store is not None:
            tg.start_soon(self._saver.run)
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> bool | None:
        assert self._tg is not None
        assert self._receive is not None
        self.stop()
        self._saver.stop()
        body_failed = exc is not None and not isinstance(exc, anyio.get_cancelled_exc_class())
        try:
            if body_failed:
                # Let the body's exception propagate as it is, not wrapped in
                # the task group's ExceptionGroup.
                await self._tg.__aexit__(None, None, None)
                suppress: bool | None = None
            else:
                suppress = await self._tg.__aexit__(exc_type, exc, tb)
        except BaseException:
            self._close()
            await self._saver.final_flush(failing=True)
            raise
        self._close()
        # A store that cannot take the last records fails the block, unless
        # something else already does (that exception is the one to see).
        await self._saver.final_flush(failing=exc is not None and not suppress)
        return suppress

    def _close(self) -> None:
        assert self._receive is not None
        self._phase = "closed"
        # Consumers still waiting in other tasks end their loops now.
        self._receive.close()
        self._heap.clear()

    def stop(self) -> None:
        """Stop polling now: reads in flight are cancelled, ``results()`` ends once drained.

        Safe to call from a result callback, a signal handler or another
        task, and more than once. Leaving the ``async with`` block calls it.
        """
        self._scope.cancel()

    @property
    def running(self) -> bool:
        """Whether the poller is polling (entered, not stopped, rounds not exhausted)."""
        return self._phase == "running" and not self._scope.cancel_called

    # ---------------------------------------------------------------- fleet

    def add(self, *vehicles: Vehicle) -> int:
        """Poll these vehicles too, from the current round on; return how many this shard took.

        A vehicle id already present gets the new handle (its next poll uses
        it); its schedule and back-off are kept, and its parks that belong to
        the old token (AUTHENTICATION, PERMISSION) are lifted if the token
        changed.
        """
        if self._phase in ("finished", "closed"):
            raise RuntimeError(f"This poller is {self._phase}; it takes no more vehicles")
        taken = 0
        current = self._current_round() if self._phase == "running" else 1
        for vehicle in vehicles:
            if not isinstance(vehicle, Vehicle):
                raise TypeError(
                    "add() takes Vehicle handles from client.vehicle(...), "
                    f"got {type(vehicle).__name__}"
                )
            vehicle_id = vehicle.vehicle_id
            if self._shard is not None and shard_of(vehicle_id, self._shard[1]) != self._shard[0]:
                continue
            taken += 1
            state = self._states.get(vehicle_id)
            if state is None and self._shared is not None and self._phase == "running":
                raise RuntimeError(
                    "a shared schedule's vehicles are fixed once the poller starts: "
                    "only a known vehicle's handle can be replaced"
                )
            if state is not None:
                state.vehicle = vehicle
                if lift_parks(state, None):
                    self._saver.mark(state)
                continue
            state = _VehicleState(vehicle, self._gone.pop(vehicle_id, None))
            self._states[vehicle_id] = state
            if self._phase == "running":
                self._plan(state, max(current, state.last_round + 1))
        self._wake()
        return taken

    def remove(self, *vehicle_ids: str) -> int:
        """Stop polling these vehicles; return how many were present.

        A poll already in flight finishes and its result is still delivered.
        """
        if self._shared is not None and self._phase == "running":
            raise RuntimeError("a shared schedule's vehicles are fixed once the poller starts")
        removed = 0
        for vehicle_id in vehicle_ids:
            state = self._states.pop(vehicle_id, None)
            if state is not None:
                state.removed = True
                self._gone[vehicle_id] = state
                removed += 1
        self._forget_gone()
        self._wake()
        return removed

    def _forget_gone(self) -> None:
        """Drop removed vehicles whose last round is over: they can no longer repeat one."""
        if len(self._gone) <= 1024:
            return
        current = self._current_round() if self._phase == "running" else 1
        self._gone = {vid: s for vid, s in self._gone.items() if s.last_round >= current}

    def __len__(self) -> int:
        return len(self._states)

    def __contains__(self, vehicle_id: object) -> bool:
        return vehicle_id in self._states

    @property
    def vehicle_ids(self) -> list[str]:
        """The ids of the vehicles this poller polls, in the order they were added."""
        return list(self._states)

    @property
    def reads(self) -> tuple[str, ...]:
        return self._reads

    @property
    def interval(self) -> float:
        return self._interval

    @property
    def rounds(self) -> int | None:
        return self._rounds

    @property
    def shard(self) -> tuple[int, int] | None:
        return self._shard

    @property
    def worker_id(self) -> str:
        """This worker's name in a shared schedule's leases."""
        return self._worker_id

    @property
    def shared(self) -> bool:
        """Whether the polls are shared with other workers through the state's schedule."""
        return self._shared is not None

    @property
    def leases_lost(self) -> int:
        """With a shared schedule: leases found expired when rescheduling or renewing them."""
        return 0 if self._leases is None else self._leases.lost

    @property
    def state_outages(self) -> int:
        """With a shared schedule: how many times the store became unreachable."""
        return 0 if self._leases is None else self._leases.outage.count

    @staticmethod
    def shard_of(vehicle_id: str, shards: int) -> int:
        """The shard (``0 .. shards - 1``) a vehicle id belongs to.

        A BLAKE2b hash of the id, so the answer is the same in every process,
        on every machine and in every Python version (unlike ``hash()``).
        """
        return shard_of(vehicle_id, shards)

    # -------------------------------------------------------------- results

    def results(self) -> AsyncIterator[PollResult]:
        """Results as they arrive, until the poller stops or its rounds are done.

        Each result goes to one consumer: several ``results()`` iterators
        share the work rather than each seeing everything.
        """
        if self._receive is None:
            raise RuntimeError("Enter the poller (`async with poller:`) before reading results")
        return _Results(self._receive, None if self._shared is None else self._received)

    def _received(self, result: PollResult) -> None:
        # A poll counts on the shared schedule once a consumer has its result: one still
        # buffered when the worker stops is given back, and polled again by another.
        if self._leases is not None:
            self._leases.complete(result.vehicle_id)

    async def run(self, on_result: Callable[[PollResult], Awaitable[object] | object]) -> None:
        """Hand each result to ``on_result`` (sync or async) until the poller stops."""
        async for result in self.results():
            outcome = on_result(result)
            if inspect.isawaitable(outcome):
                await outcome

    def __repr__(self) -> str:
        return (
            f"<FleetPoller {self._phase} vehicles={len(self._states)} "
            f"reads={','.join(self._reads)} interval={self._interval:g}>"
        )

    def _wake(self) -> None:
        if self._wakeup is not None:
            self._wakeup.set()

    @property
    def reads_parked(self) -> int:
        """How many (vehicle, read) pairs of this poller's reads are parked now."""
        return sum(len(parked_reads(state, self._reads)) for state in self._states.values())

    @property
    def reads_fresh(self) -> int:
        """Reads not requested so far because a webhook answered them (see ``freshness``)."""
        return 0 if self._quotas is None else self._quotas.fresh_reads

    @property
    def vehicles_near_budget(self) -> int:
        """Vehicles at or past 80% of ``monthly_budget`` this month (as last seen)."""
        return 0 if self._quotas is None else len(self._quotas.near_budget)

    @property
    def vehicles_gated(self) -> int:
        """How many vehicles are held back now: backing off, or parked whole (AUTHENTICATION)."""
        now = anyio.current_time() if self._phase == "running" else -math.inf
        return sum(
            state.blocked_until > now or parked_whole(state) for state in self._states.values()
        )
