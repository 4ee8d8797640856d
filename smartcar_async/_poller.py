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
lease (one call for many), polls them with the same machinery as below (reads
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

The machinery is one scheduler task holding a heap with at most one entry per
vehicle, and at most ``max_concurrent_vehicles`` poll tasks: no task per
vehicle, no growth with rounds, and a bounded result stream, so a slow
consumer slows polling down instead of filling memory.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import heapq
import inspect
import logging
import math
import os
import secrets
import socket
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Mapping
from time import perf_counter
from types import TracebackType
from typing import Any, Final, Literal, Self

import anyio
import attrs
from anyio.abc import TaskGroup
from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream

from ._endpoints import READS
from ._exceptions import APITimeoutError, SmartcarError, StateUnavailableError
from ._names import ReadName
from ._poll_leases import RETRY_FIRST, RETRY_MAX, _Leases, idle_wait
from ._poll_quota import Quotas, build_quotas
from ._poll_result import PollOutcome, PollResult, SkipReason, _Results
from ._poll_state import (
    _Saver,
    _VehicleState,
    hold_back,
    lift_parks,
    note_parks,
    parked_reads,
    parked_whole,
)
from ._quota import FreshnessOracle, MakeLimit
from ._shared_schedule import ClaimedBatch, SharedSchedule
from ._state import StateStore
from ._validate import check_bound, check_int, check_interval
from ._vehicle import Vehicle

__all__ = ["FleetPoller", "PollOutcome", "PollResult", "SkipReason"]

#: The vehicle reads a poller may take: every batchable GET of the endpoint
#: table that Vehicle exposes as a method without arguments.
READ_NAMES: Final[tuple[str, ...]] = tuple(
    r.name for r in READS if inspect.iscoroutinefunction(getattr(Vehicle, r.name, None))
)

logger = logging.getLogger("smartcar_async")

_DEFAULT_MAX_BACKOFF: Final = 900.0
_DEFAULT_LEASE: Final = 30.0
#: Vehicles one claim takes at most (fewer when fewer concurrency slots are free).
_CLAIM_MAX: Final = 100
#: The longest a worker with nothing to claim sleeps before asking the schedule again.
_IDLE_MAX: Final = 5.0
_DEFAULT_RECHECK: Final = 86_400.0
# (due, sequence, state, round, skip reason); the unique sequence number keeps
# heapq from ever comparing two states.
_Entry = tuple[float, int, _VehicleState, int, SkipReason | None]


class FleetPoller:
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
        if not isinstance(jitter, int | float) or isinstance(jitter, bool):
            raise TypeError("jitter must be a number")
        if not 0.0 <= jitter <= 1.0:
            raise ValueError(f"jitter must be within 0..1, got {jitter!r}")
        self._jitter = float(jitter)
        if rounds is not None:
            check_int("rounds", rounds, minimum=1)
        self._rounds = rounds
        check_int("max_concurrent_vehicles", max_concurrent_vehicles, minimum=1)
        self._max_concurrent = max_concurrent_vehicles
        self._timeout = check_bound("timeout", timeout)
        self._backoff = self._interval if backoff is None else check_interval("backoff", backoff)
        self._max_backoff = check_interval("max_backoff", max_backoff)
        self._shard = _check_shard(shard)
        check_int("max_buffered_results", max_buffered_results, minimum=0)
        self._buffer = max_buffered_results
        self._recheck = check_interval("recheck", recheck)
        if state is not None and not isinstance(state, StateStore):
            raise TypeError(
                f"state must be a StateStore (e.g. SQLiteState), not {type(state).__name__}"
            )
        self._store = state
        self._saver = _Saver(state)
        self._shared = state if isinstance(state, SharedSchedule) else None
        if self._shared is not None and self._shard is not None:
            raise ValueError(
                "shard cannot be used with a shared schedule: its leases share the fleet"
            )
        self._lease = check_interval("lease", lease)
        if worker_id is None:
            worker_id = f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(4)}"
        elif not isinstance(worker_id, str) or not worker_id:
            raise ValueError("worker_id must be a non-empty str")
        self._worker_id = worker_id
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

    # ------------------------------------------------------------ schedule

    def _slot(self, round_: int) -> float:
        return self._t0 + (round_ - 1) * self._interval

    def _offset(self, vehicle_id: str, round_: int) -> float:
        if not self._jitter:
            return 0.0
        digest = hashlib.blake2b(f"{vehicle_id}\x1f{round_}".encode(), digest_size=8).digest()
        return self._jitter * self._interval * (int.from_bytes(digest, "big") / 2.0**64)

    def _current_round(self) -> int:
        elapsed = anyio.current_time() - self._t0
        current = max(1, int(elapsed // self._interval) + 1)
        return current if self._rounds is None else min(current, self._rounds)

    def _plan(self, state: _VehicleState, round_: int) -> None:
        """Queue the vehicle's entry for ``round_``: a poll, or a skip if it cannot fit the slot."""
        if self._rounds is not None and round_ > self._rounds:
            return
        now = anyio.current_time()
        natural = max(self._slot(round_) + self._offset(state.vehicle.vehicle_id, round_), now)
        slot_end = self._slot(round_ + 1)
        held = max(state.blocked_until, state.not_before)
        due = max(natural, held)
        skip: SkipReason | None = None
        if due >= slot_end:
            # Held back for the whole slot: by a back-off, or (rarely: a longer
            # interval than the last run's) by the poll planned before a restart.
            skip = "backoff" if held >= slot_end else "late"
            due = natural
        else:
            state.not_before = -math.inf  # a stored due time holds back one poll only
            state.next_due = due
            self._saver.mark(state)
        self._sequence += 1
        heapq.heappush(self._heap, (due, self._sequence, state, round_, skip))

    def _wake(self) -> None:
        if self._wakeup is not None:
            self._wakeup.set()

    def _done(self) -> bool:
        return (
            self._rounds is not None
            and not self._heap
            and self._inflight == 0
            and anyio.current_time() >= self._slot(self._rounds)
        )

    async def _schedule(self) -> None:
        assert self._send is not None
        try:
            with self._scope:
                async with anyio.create_task_group() as polls:
                    while not self._done():
                        if self._heap and self._heap[0][0] <= anyio.current_time():
                            await self._dispatch(polls)
                        else:
                            await self._sleep()
                    # Before any await: add() must not slip a vehicle in now.
                    self._phase = "finished"
        finally:
            # The stream ends here, so consumers finish whether we ran out of
            # rounds, were stopped, or crashed.
            self._send.close()

    async def _sleep(self) -> None:
        assert self._wakeup is not None
        if self._heap:
            deadline = self._heap[0][0]
        elif self._rounds is not None and self._inflight == 0:
            deadline = self._slot(self._rounds)
        else:
            deadline = math.inf
        with anyio.move_on_at(deadline):
            await self._wakeup.wait()
        if self._wakeup.is_set():
            # Nothing is lost by resetting: the loop re-reads all state next.
            self._wakeup = anyio.Event()

    # ---------------------------------------------------- shared schedule

    async def _schedule_shared(self, schedule: SharedSchedule) -> None:
        """Claim due vehicles by lease and poll them, until no vehicle has a poll left."""
        assert self._send is not None
        leases = self._leases = _Leases(
            schedule,
            worker_id=self._worker_id,
            interval=self._interval,
            lease=self._lease,
            on_change=self._wake,
        )
        try:
            with self._scope:
                async with anyio.create_task_group() as polls:
                    polls.start_soon(leases.run)
                    await self._claim_loop(schedule, leases, polls)
                    # Nothing in flight, nothing held: only the lease keeper is left.
                    polls.cancel_scope.cancel()
                self._phase = "finished"
        finally:
            if self._phase != "finished":
                # Stopped: results not yet taken are dropped (their leases go back with
                # the rest, for another worker to poll), so none is delivered twice.
                assert self._receive is not None
                self._receive.close()
            # Shielded: finished polls are rescheduled and unfinished leases given back
            # even when the poller is being stopped.
            await leases.final()
            self._send.close()

    async def _claim_loop(
        self, schedule: SharedSchedule, leases: _Leases, polls: TaskGroup
    ) -> None:
        # Claims wait for a quarter of the slots (up to a claim's size) to be free, so
        # that a busy worker takes vehicles in batches rather than one per finished poll.
        batch = max(1, min(self._max_concurrent, _CLAIM_MAX) // 4)
        idle_cap = min(_IDLE_MAX, self._interval / 4)
        pause = RETRY_FIRST
        while True:
            free = self._max_concurrent - self._inflight
            if free < batch:
                await self._wait(math.inf)
                continue
            try:
                # Shielded: a claim applied in Redis but cancelled here (the worker
                # stopping) would leave leases nobody gives back until they expire.
                with anyio.CancelScope(shield=True):
                    claim = await schedule.claim(
                        self._worker_id, max_n=min(free, _CLAIM_MAX), lease=self._lease
                    )
                    leases.take(claim)
                next_due = None if claim.vehicles else await schedule.next_due()
                finished = (
                    not claim.vehicles
                    and next_due is None
                    and self._inflight == 0
                    and not leases.busy
                    and await self._still_loaded(schedule)
                )
            except StateUnavailableError as exc:
                leases.outage.failed(exc, "claiming vehicles")
                await anyio.sleep(pause)
                pause = min(pause * 2, RETRY_MAX)
                continue
            leases.outage.recovered()
            pause = RETRY_FIRST
            if finished:
                return
            if claim.vehicles:
                await self._start_claimed(claim, leases, polls)
            elif next_due is not None or self._inflight or leases.busy:
                await anyio.sleep(idle_wait(next_due, claim.now, idle_cap))

    async def _still_loaded(self, schedule: SharedSchedule) -> bool:
        """Whether the schedule is there; if it is gone (reset, or a Redis restart that kept
        nothing), load it again and say so: its polls start over."""
        if await schedule.schedule_loaded():
            return True
        logger.warning(
            "The shared schedule is gone (was Redis restarted without persistence?); "
            "loading it again: every vehicle's polls start over",
            extra={"event": "schedule_reloaded"},
        )
        await schedule.load_schedule(list(self._states), rounds=self._rounds or 0)
        return False

    async def _start_claimed(self, claim: ClaimedBatch, leases: _Leases, polls: TaskGroup) -> None:
        claimed: list[tuple[_VehicleState, int]] = []
        for slot in claim.vehicles:
            state = self._states.get(slot.vehicle_id)
            if state is None:
                # Not ours to poll (the same --vehicles-file in every worker prevents it):
                # moved on without a poll rather than claimed again and again.
                logger.warning(
                    "Vehicle %s is on the shared schedule but not among this worker's vehicles",
                    slot.vehicle_id,
                    extra={"event": "unknown_vehicle", "vehicle_id": slot.vehicle_id},
                )
                leases.complete(slot.vehicle_id)
                continue
            claimed.append((state, slot.polls_done + 1))
        if self._store is not None:
            # Other workers' back-offs and parks of these vehicles: one call for the batch.
            await self._saver.load([state for state, _ in claimed], strict=False)
        now = anyio.current_time()
        for state, round_ in claimed:
            state.last_round = round_
            if state.blocked_until > now:
                await self._emit_skip(state, round_, "backoff")
                continue
            reads, parked = self._split_reads(state)
            if not reads:
                await self._emit(state, round_, parked=parked)
                continue
            await self._slots.acquire()
            self._inflight += 1
            polls.start_soon(self._poll, state, round_, reads, parked)

    async def _wait(self, timeout: float) -> None:
        """Until a poll finishes (or ``timeout``)."""
        assert self._wakeup is not None
        with anyio.move_on_after(timeout):
            await self._wakeup.wait()
        if self._wakeup.is_set():
            self._wakeup = anyio.Event()

    async def _dispatch(self, polls: TaskGroup) -> None:
        _, _, state, round_, skip = heapq.heappop(self._heap)
        if state.removed:
            return
        if self._store is not None and not state.loaded:
            # Added while running: its record (a back-off, parked reads) may
            # change this very poll. Everything added meanwhile loads with it.
            await self._saver.load([s for s in self._states.values() if not s.loaded], strict=False)
            if not state.removed:
                self._plan(state, round_)
            return
        if skip is not None:
            state.last_round = round_
            await self._emit_skip(state, round_, skip)
            self._plan(state, round_ + 1)
            return
        reads, parked = self._split_reads(state)
        if not reads:
            # Nothing to ask: no request, no concurrency slot, still a result.
            state.last_round = round_
            await self._emit(state, round_, parked=parked)
            self._plan(state, round_ + 1)
            return
        await self._slots.acquire()
        if state.removed:
            self._slots.release()
            return
        state.last_round = round_
        self._inflight += 1
        polls.start_soon(self._poll, state, round_, reads, parked)

    async def _emit_skip(self, state: _VehicleState, round_: int, reason: SkipReason) -> None:
        await self._emit(state, round_, skipped=reason)

    async def _emit(
        self,
        state: _VehicleState,
        round_: int,
        *,
        skipped: SkipReason | None = None,
        parked: Mapping[str, str] | None = None,
    ) -> None:
        """Send a result for a round in which nothing was requested."""
        assert self._send is not None
        now = anyio.current_time()
        await self._send.send(
            PollResult(
                vehicle_id=state.vehicle.vehicle_id,
                round=round_,
                started_at=dt.datetime.now(dt.UTC),
                latency=0.0,
                skipped=skipped,
                backoff=max(0.0, state.blocked_until - now),
                parked=parked or {},
            )
        )

    async def _poll(
        self, state: _VehicleState, round_: int, reads: tuple[str, ...], parked: Mapping[str, str]
    ) -> None:
        assert self._send is not None
        try:
            if self._quotas is None:
                result = await self._read(state, round_, reads, parked)
            else:
                result = await self._spend(self._quotas, state, round_, reads, parked)
            await self._send.send(result)
        finally:
            self._slots.release()
            self._inflight -= 1
            if self._leases is None and not state.removed:
                self._plan(state, round_ + 1)
            self._wake()

    async def _read(
        self, state: _VehicleState, round_: int, reads: tuple[str, ...], parked: Mapping[str, str]
    ) -> PollResult:
        vehicle = state.vehicle
        values: dict[str, Any] = {}
        errors: dict[str, SmartcarError] = {}
        timings: dict[str, float] = {}

        async def read(name: str) -> None:
            method: Callable[[], Awaitable[Any]] = getattr(vehicle, name)
            began = perf_counter()
            try:
                values[name] = await method()
            except SmartcarError as exc:
                errors[name] = exc
            timings[name] = perf_counter() - began

        started_at = dt.datetime.now(dt.UTC)
        began = perf_counter()
        scope = (
            anyio.move_on_after(self._timeout) if self._timeout is not None else anyio.CancelScope()
        )
        with scope:
            # Started in the same event-loop turn, the reads land in one
            # coalescer window: one batch request per vehicle and round.
            async with anyio.create_task_group() as tg:
                for name in reads:
                    tg.start_soon(read, name)
        latency = perf_counter() - began
        if scope.cancelled_caught:
            for name in reads:
                if name not in values and name not in errors:
                    errors[name] = APITimeoutError(
                        f"{name} got no answer within the poller's timeout of {self._timeout:g} s"
                    )
        backoff = self._note_outcome(state, errors)
        self._note_parks(state, vehicle, errors)
        return PollResult(
            vehicle_id=vehicle.vehicle_id,
            round=round_,
            started_at=started_at,
            latency=latency,
            values={n: values[n] for n in self._reads if n in values},
            errors={n: errors[n] for n in self._reads if n in errors},
            timings={n: timings[n] for n in self._reads if n in timings},
            backoff=backoff,
            parked={n: parked[n] for n in self._reads if n in parked},
        )

    async def _spend(
        self,
        quotas: Quotas,
        state: _VehicleState,
        round_: int,
        reads: tuple[str, ...],
        parked: Mapping[str, str],
    ) -> PollResult:
        """A poll under the spending rules: read, or skip without sending anything."""
        verdict = await quotas.before(state.vehicle, reads)
        if verdict.skip is not None:
            return PollResult(
                vehicle_id=state.vehicle.vehicle_id,
                round=round_,
                started_at=dt.datetime.now(dt.UTC),
                latency=0.0,
                skipped=verdict.skip,
                backoff=max(0.0, state.blocked_until - anyio.current_time()),
                fresh=verdict.fresh,
            )
        result = await self._read(state, round_, verdict.reads, parked)
        await quotas.after(state.vehicle)
        return attrs.evolve(result, fresh=verdict.fresh) if verdict.fresh else result

    def _note_outcome(self, state: _VehicleState, errors: Mapping[str, SmartcarError]) -> float:
        """Update the vehicle's back-off from this poll's errors; return the delay set."""
        delay, changed = hold_back(state, errors, self._backoff, self._max_backoff)
        if changed:
            self._saver.mark(state)
        return delay

    # ------------------------------------------------------------- parking

    def _split_reads(self, state: _VehicleState) -> tuple[tuple[str, ...], dict[str, str]]:
        """The reads to request this poll, and the parked ones with their reasons."""
        if lift_parks(state, anyio.current_time()):
            self._saver.mark(state)
        parked = parked_reads(state, self._reads)
        return tuple(name for name in self._reads if name not in parked), parked

    def _note_parks(
        self, state: _VehicleState, vehicle: Vehicle, errors: Mapping[str, SmartcarError]
    ) -> None:
        """Park the reads (or the vehicle) whose answer will not change by asking again."""
        if errors and note_parks(
            state, vehicle, errors, self._reads, anyio.current_time() + self._recheck
        ):
            self._saver.mark(state)

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


def shard_of(vehicle_id: str, shards: int) -> int:
    """The shard of ``shards`` that ``vehicle_id`` belongs to (stable across processes)."""
    check_int("shards", shards, minimum=1)
    digest = hashlib.blake2b(vehicle_id.encode(), digest_size=8, person=b"sc-shard").digest()
    return int.from_bytes(digest, "big") % shards


def check_reads(reads: Iterable[str]) -> tuple[str, ...]:
    if isinstance(reads, str):
        raise TypeError('reads must be an iterable of read names, e.g. ("odometer", "location")')
    names = tuple(dict.fromkeys(reads))
    if not names:
        raise ValueError("reads must name at least one read")
    unknown = [name for name in names if name not in READ_NAMES]
    if unknown:
        raise ValueError(
            f"unknown read{'s' if len(unknown) > 1 else ''} {', '.join(map(repr, unknown))}; "
            f"valid reads: {', '.join(READ_NAMES)}"
        )
    return names


def _check_shard(shard: tuple[int, int] | None) -> tuple[int, int] | None:
    if shard is None:
        return None
    try:
        index, count = shard
    except (TypeError, ValueError):
        raise TypeError("shard must be a pair (index, count)") from None
    check_int("shard count", count, minimum=1)
    check_int("shard index", index, minimum=0)
    if index >= count:
        raise ValueError(f"shard index must be below the shard count, got {index} of {count}")
    return (index, count)
