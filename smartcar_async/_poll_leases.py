"""One worker's leases on a shared schedule: finish them in batches, keep them alive, give back.

The poller claims due vehicles (:meth:`SharedSchedule.claim`, one call for
many) and hands each finished poll to :meth:`_Leases.complete`; this module
turns those into batched ``reschedule_many`` calls (next due = due + interval,
or a full interval from the claim if the vehicle fell more than an interval
behind), renews the leases still held every third of the lease, and, when the
worker stops, reschedules what it finished and gives back what it did not.

While the store is unreachable (:class:`StateUnavailableError`) nothing is
lost: finished polls wait here and are rescheduled once it answers (their
leases, if they expired meanwhile, are refused and logged: another worker may
poll those vehicles once more). An outage is logged once, and its end once.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from typing import Final

import anyio

from ._exceptions import StateError, StateUnavailableError
from ._shared_schedule import ClaimedBatch, SharedSchedule

logger = logging.getLogger("smartcar_async")

#: Finished polls wait this long (at most) to be rescheduled together.
_BATCH_DELAY: Final = 0.05
#: ... unless this many are waiting.
_BATCH_SIZE: Final = 200
#: Retries of a store that does not answer: from this pause, doubling, up to the cap.
RETRY_FIRST: Final = 0.1
RETRY_MAX: Final = 2.0
#: How long stopping waits for the last reschedules and releases.
_FINAL_TIMEOUT: Final = 10.0


class _Outage:
    """Logs a store outage once when it starts and once when it ends; counts them."""

    __slots__ = ("_down", "count")

    def __init__(self) -> None:
        self.count = 0
        self._down = False

    def failed(self, exc: StateUnavailableError, doing: str) -> None:
        if self._down:
            return
        self._down = True
        self.count += 1
        logger.warning(
            "The shared schedule is unreachable (%s); polling what this worker holds and "
            "retrying: %s",
            doing,
            exc,
            extra={"event": "state_unavailable"},
        )

    def recovered(self) -> None:
        if self._down:
            self._down = False
            logger.warning(
                "The shared schedule answers again; carrying on",
                extra={"event": "state_available"},
            )


class _Leases:
    """The vehicles this worker holds leases on, from claim to reschedule."""

    def __init__(
        self,
        schedule: SharedSchedule,
        *,
        worker_id: str,
        interval: float,
        lease: float,
        on_change: Callable[[], None],
    ) -> None:
        self.schedule = schedule
        self.worker_id = worker_id
        self._interval = interval
        self._lease = lease
        self._on_change = on_change
        #: Claimed, not finished: vehicle id -> (its next due time on the store's clock,
        #: the due time its lease was claimed at). The second names the lease, so a
        #: reschedule sent again after an outage cannot complete a newer one.
        self.held: dict[str, tuple[float, float]] = {}
        #: Finished, not yet rescheduled: as ``held``.
        self.done: dict[str, tuple[float, float]] = {}
        #: Leases the store refused at a reschedule or renewal (they had expired).
        self.lost = 0
        self.outage = _Outage()
        self._event = anyio.Event()

    @property
    def busy(self) -> bool:
        return bool(self.held or self.done)

    def take(self, claim: ClaimedBatch) -> None:
        for slot in claim.vehicles:
            following = slot.due + self._interval
            if following <= claim.now:
                # More than an interval behind (a long outage, a late start): restart the
                # vehicle's rate from now rather than poll it again at once to catch up.
                following = claim.now + self._interval
            self.held[slot.vehicle_id] = (following, slot.due)

    def complete(self, vehicle_id: str) -> None:
        """The vehicle's poll is done (its result delivered): reschedule it with the next batch."""
        lease = self.held.pop(vehicle_id, None)
        if lease is None:
            return
        self.done[vehicle_id] = lease
        self._event.set()

    async def run(self) -> None:
        """Reschedule finished polls in batches and renew held leases, until cancelled."""
        renew_every = self._lease / 3
        next_renewal = anyio.current_time() + renew_every
        pause = RETRY_FIRST
        while True:
            with anyio.move_on_at(next_renewal):
                await self._event.wait()
            if self._event.is_set():
                self._event = anyio.Event()
                if len(self.done) < _BATCH_SIZE:
                    await anyio.sleep(_BATCH_DELAY)
            ok = await self._flush()
            if ok and anyio.current_time() >= next_renewal:
                ok = await self._renew()
                next_renewal = anyio.current_time() + renew_every
            if ok:
                pause = RETRY_FIRST
            else:
                self._event.set()  # try again after the pause
                await anyio.sleep(pause)
                pause = min(pause * 2, RETRY_MAX)

    async def _flush(self) -> bool:
        """Reschedule what is done; False while the store is unreachable (kept for later)."""
        if not self.done:
            return True
        batch = dict(self.done)
        following = {vid: lease[0] for vid, lease in batch.items()}
        claimed = {vid: lease[1] for vid, lease in batch.items()}
        try:
            counts = await self.schedule.reschedule_many(self.worker_id, following, claimed=claimed)
        except StateUnavailableError as exc:
            self.outage.failed(exc, "rescheduling")
            return False
        self.outage.recovered()
        for vehicle_id in batch:
            if self.done.get(vehicle_id) == batch[vehicle_id]:
                del self.done[vehicle_id]
        refused = [vid for vid, polls in counts.items() if polls is None]
        if refused:
            self._note_lost(refused, "rescheduled")
        self._on_change()
        return True

    async def _renew(self) -> bool:
        ids = [*self.held, *self.done]
        if not ids:
            return True
        try:
            renewed = await self.schedule.renew(self.worker_id, ids, self._lease)
        except StateUnavailableError as exc:
            self.outage.failed(exc, "renewing leases")
            return False
        self.outage.recovered()
        if renewed < len(ids):
            self.lost += len(ids) - renewed
            logger.warning(
                "%d of this worker's leases expired before they were renewed: another worker "
                "may poll those vehicles again this round (raise the lease if polls run long)",
                len(ids) - renewed,
                extra={"event": "leases_lost"},
            )
        return True

    def _note_lost(self, refused: list[str], what: str) -> None:
        self.lost += len(refused)
        logger.warning(
            "%d vehicle(s) polled by this worker could not be %s: their leases had expired, "
            "so another worker may poll them again (at-least-once); e.g. %s",
            len(refused),
            what,
            refused[0],
            extra={"event": "leases_lost", "vehicle_id": refused[0]},
        )

    async def final(self) -> None:
        """Reschedule what is done and give back what is not (a worker leaving); shielded."""
        with anyio.move_on_after(_FINAL_TIMEOUT, shield=True) as scope:
            try:
                await self._flush()
                if self.held:
                    await self.schedule.release(self.worker_id, list(self.held))
                    self.held.clear()
            except StateError as exc:
                logger.warning(
                    "Could not hand back this worker's leases as it stops (they expire by "
                    "themselves): %s",
                    exc,
                    extra={"event": "leases_not_released"},
                )
        if scope.cancelled_caught:
            logger.warning(
                "The shared schedule did not answer within %g s of stopping; this worker's "
                "leases expire by themselves",
                _FINAL_TIMEOUT,
                extra={"event": "leases_not_released"},
            )


def idle_wait(next_due: float | None, now: float, cap: float) -> float:
    """How long a worker with nothing to claim sleeps: until ``next_due``, within ``cap``."""
    if next_due is None:
        return cap
    return min(max(next_due - now, 0.0) + 0.001, cap) if math.isfinite(next_due) else cap
