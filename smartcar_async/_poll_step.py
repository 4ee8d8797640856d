"""FleetPoller's poll step: one vehicle's reads for one round, and what their answers mean.

Both schedules (``_poll_rounds``, ``_poll_shared``) hand a due vehicle to
``_poll``, which reads it (through the spending rules when there are any),
updates its back-off and parks, and sends the result. A mixin so that the
step works on the poller's own state; the annotations below are exactly what
it uses of the poller, and ``FleetPoller`` defines them all.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Awaitable, Callable, Mapping
from time import perf_counter
from typing import TYPE_CHECKING, Any, Final

import anyio
import attrs
from anyio.streams.memory import MemoryObjectSendStream

from ._exceptions import APITimeoutError, SmartcarError
from ._poll_leases import _Leases
from ._poll_quota import Quotas
from ._poll_result import PollResult, SkipReason
from ._poll_state import _Saver, _VehicleState, hold_back, lift_parks, note_parks, parked_reads
from ._vehicle import Vehicle

#: How long a stopping poll may take to count what it was billed.
_SETTLE_TIMEOUT: Final = 10.0


class _PollStep:
    """Polling one vehicle once, for :class:`FleetPoller` (see the module)."""

    _reads: tuple[str, ...]
    _timeout: float | None
    _backoff: float
    _max_backoff: float
    _recheck: float
    _quotas: Quotas | None
    _saver: _Saver
    _leases: _Leases | None
    _slots: anyio.Semaphore
    _inflight: int
    _send: MemoryObjectSendStream[PollResult] | None

    if TYPE_CHECKING:

        def _plan(self, state: _VehicleState, round_: int) -> None: ...

        def _wake(self) -> None: ...

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
        try:
            result = await self._read(state, round_, verdict.reads, parked)
        finally:
            # A poll cancelled by a stop has already been billed for what it sent (a
            # batch whose failed path waits to be retried): count it now, or the
            # month's count in the store forgets it and a restart overspends.
            with anyio.move_on_after(_SETTLE_TIMEOUT, shield=True):
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
