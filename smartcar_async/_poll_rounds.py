"""FleetPoller's own schedule: every vehicle once per round, on a heap, in one task.

The timing (rounds, jitter, skips) is told for callers in ``_poller``'s docstring.

One scheduler task holds a heap with at most one entry per vehicle, and
starts at most ``max_concurrent_vehicles`` poll tasks: no task per vehicle,
no growth with rounds, and a bounded result stream, so a slow consumer slows
polling down instead of filling memory. A mixin, like ``_poll_step``; the
annotations below are what it uses of the poller beyond the step.
"""

from __future__ import annotations

import hashlib
import heapq
import math
from typing import Literal

import anyio
from anyio.abc import TaskGroup

from ._poll_result import SkipReason
from ._poll_state import _VehicleState
from ._poll_step import _PollStep
from ._state import StateStore

# (due, sequence, state, round, skip reason); the unique sequence number keeps
# heapq from ever comparing two states.
_Entry = tuple[float, int, _VehicleState, int, SkipReason | None]


class _RoundSchedule(_PollStep):
    """The local, round-by-round schedule of :class:`FleetPoller` (see the module)."""

    _states: dict[str, _VehicleState]
    _store: StateStore | None
    _interval: float
    _jitter: float
    _rounds: int | None
    _t0: float
    _heap: list[_Entry]
    _sequence: int
    _phase: Literal["new", "running", "finished", "closed"]
    _scope: anyio.CancelScope
    _wakeup: anyio.Event | None

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
