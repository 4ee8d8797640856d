"""FleetPoller's polling under a shared schedule: claim due vehicles by lease, poll, repeat.

A mixin rather than a helper object so that the claimed vehicles go through
the poller's own machinery (its concurrency slots, parking, results stream)
with no second copy of it; the annotations below are what this half uses of
the poller beyond the step (``_poll_step``), and ``FleetPoller`` defines them. How a shared run
behaves, for callers, is told in ``_poller``'s docstring; the leases
themselves (batched reschedules, renewal, giving back) are ``_poll_leases``'.
"""

from __future__ import annotations

import logging
import math
from typing import Final, Literal

import anyio
from anyio.abc import TaskGroup
from anyio.streams.memory import MemoryObjectReceiveStream

from ._exceptions import StateUnavailableError
from ._poll_leases import RETRY_FIRST, RETRY_MAX, _Leases, idle_wait
from ._poll_result import PollResult
from ._poll_state import _VehicleState
from ._poll_step import _PollStep
from ._shared_schedule import ClaimedBatch, SharedSchedule
from ._state import StateStore

logger = logging.getLogger("smartcar_async")

#: Vehicles one claim takes at most (fewer when fewer concurrency slots are free).
_CLAIM_MAX: Final = 100
#: The longest a worker with nothing to claim sleeps before asking the schedule again.
_IDLE_MAX: Final = 5.0


class _SharedPolling(_PollStep):
    """The shared-schedule half of :class:`FleetPoller` (see the module)."""

    _states: dict[str, _VehicleState]
    _store: StateStore | None
    _worker_id: str
    _interval: float
    _lease: float
    _rounds: int | None
    _max_concurrent: int
    _phase: Literal["new", "running", "finished", "closed"]
    _scope: anyio.CancelScope
    _wakeup: anyio.Event | None
    _receive: MemoryObjectReceiveStream[PollResult] | None

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
