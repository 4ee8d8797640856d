"""What a poller knows about each vehicle between polls, and how it outlives a run.

Back-off: after a rate limit or a vehicle-state error a vehicle is held back,
doubling with each consecutive one up to a cap; a ``Retry-After`` wins.

Parking: a read answered COMPATIBILITY (501) or PERMISSION (403) is not asked
again for ``recheck`` seconds; an AUTHENTICATION (401) answer to a plain
token parks the whole vehicle. A park decided under a token (PERMISSION,
AUTHENTICATION) lifts when the handle's token changes.

Persistence: with a `StateStore`, back-offs and parks are loaded when a
vehicle is first polled, saved in batches a moment after they change, and
saved once more, shielded from cancellation, when the poller stops. The
store keeps epoch seconds; the poller's clock is anyio's, so times are
shifted on the way in and out.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Mapping
from typing import Final, NamedTuple

import anyio

from ._exceptions import (
    AuthenticationError,
    CompatibilityError,
    PermissionDeniedError,
    RateLimitError,
    SmartcarError,
    StateError,
    VehicleStateError,
)
from ._state import ParkedRead, StateStore, VehicleRecord, token_lineage
from ._vehicle import Vehicle

logger = logging.getLogger("smartcar_async")

#: Changed records wait this long to be saved together: one durable write
#: per burst of parks and back-offs rather than one per poll.
_FLUSH_DELAY: Final = 1.0
#: How long stopping waits for the last records to be saved.
_FLUSH_TIMEOUT: Final = 30.0

#: The answers that park a read, and the reason each is reported with.
_PARKING: Final[tuple[tuple[type[SmartcarError], str], ...]] = (
    (CompatibilityError, "COMPATIBILITY"),
    (PermissionDeniedError, "PERMISSION"),
)
AUTHENTICATION: Final = "AUTHENTICATION"


class _Park(NamedTuple):
    """A parked read, in the poller's clock (a :class:`ParkedRead` is in epoch seconds)."""

    reason: str
    until: float
    #: The token fingerprint the park was decided under; None: not tied to a token.
    fingerprint: str | None


class _VehicleState:
    """What the poller knows about one vehicle between its polls."""

    __slots__ = (
        "blocked_until",
        "failures",
        "last_round",
        "loaded",
        "next_due",
        "not_before",
        "parked",
        "removed",
        "vehicle",
    )

    def __init__(self, vehicle: Vehicle, former: _VehicleState | None = None) -> None:
        self.vehicle = vehicle
        self.blocked_until: float = -math.inf if former is None else former.blocked_until
        self.failures: int = 0 if former is None else former.failures
        # Read name -> park. Reads of other pollers (or of an earlier run with
        # other reads) that a store gave back are kept, and saved again.
        self.parked: dict[str, _Park] = {} if former is None else former.parked
        # Whether the store's record (if any) has been applied.
        self.loaded: bool = False if former is None else former.loaded
        # The last round dispatched (polled or skipped): a vehicle removed and
        # added again (a token rotation) must not be polled twice in a round.
        self.last_round: int = 0 if former is None else former.last_round
        # When its next poll is planned (our clock), saved so that a restart
        # does not poll at once a vehicle polled a moment before it.
        self.next_due: float = -math.inf if former is None else former.next_due
        # A stored next_due, holding back the first poll after a restart.
        self.not_before: float = -math.inf if former is None else former.not_before
        # Heap entries are dropped lazily: a removed vehicle's entry is
        # skipped when it comes due, rather than searched for in the heap.
        self.removed = False


# ----------------------------------------------------------------- back-off


def hold_back(
    state: _VehicleState, errors: Mapping[str, SmartcarError], backoff: float, max_backoff: float
) -> tuple[float, bool]:
    """Update the vehicle's back-off from a poll's errors.

    Returns the delay set (0.0 for none) and whether the record changed.
    """
    retry_afters = [e.retry_after for e in errors.values() if isinstance(e, RateLimitError)]
    state_error = any(isinstance(e, VehicleStateError) for e in errors.values())
    if not retry_afters and not state_error:
        if state.failures:
            state.failures = 0
            return 0.0, True
        return 0.0, False
    state.failures += 1
    # The power stops growing at 2**63: a vehicle asleep for a thousand
    # rounds must not overflow it.
    growth = 2.0 ** min(state.failures - 1, 63)
    exponential = min(max_backoff, backoff * growth)
    told = [seconds for seconds in retry_afters if seconds is not None]
    delay = exponential if state_error or not told else 0.0
    if told:
        # The server's Retry-After wins over our guess, even past max_backoff.
        delay = max(delay, *told)
    state.blocked_until = anyio.current_time() + delay
    return delay, True


# ------------------------------------------------------------------ parking


def fingerprint(vehicle: Vehicle) -> str | None:
    """A digest naming the handle's plain token (never the token); None for a token source.

    Only a plain token cannot be refreshed, and only a plain token can be
    compared after a restart.
    """
    auth = vehicle._key.auth
    return token_lineage(auth) if isinstance(auth, str) else None


def parked_whole(state: _VehicleState) -> bool:
    """Whether the vehicle's token was refused and nothing can refresh it."""
    return any(park.reason == AUTHENTICATION for park in state.parked.values())


def parked_reads(state: _VehicleState, reads: tuple[str, ...]) -> dict[str, str]:
    """Which of ``reads`` are parked for this vehicle, with their reasons."""
    if parked_whole(state):
        return dict.fromkeys(reads, AUTHENTICATION)
    return {name: state.parked[name].reason for name in reads if name in state.parked}


def lift_parks(state: _VehicleState, now: float | None) -> bool:
    """Drop the parks that ran out (``now``) or were decided under another token.

    Returns whether any was dropped (the record changed).
    """
    if not state.parked:
        return False
    token = fingerprint(state.vehicle)
    stale = [
        name
        for name, park in state.parked.items()
        if (now is not None and park.until <= now)
        or (park.fingerprint is not None and park.fingerprint != token)
    ]
    for name in stale:
        del state.parked[name]
    return bool(stale)


def note_parks(
    state: _VehicleState,
    vehicle: Vehicle,
    errors: Mapping[str, SmartcarError],
    reads: tuple[str, ...],
    until: float,
) -> bool:
    """Park the reads (or the vehicle) whose answer will not change by asking again.

    Returns whether anything was parked (the record changed).
    """
    token = fingerprint(vehicle)
    if token is not None and any(isinstance(e, AuthenticationError) for e in errors.values()):
        for name in reads:
            state.parked[name] = _Park(AUTHENTICATION, until, token)
        return True
    changed = False
    for name, error in errors.items():
        for kind, reason in _PARKING:
            if isinstance(error, kind):
                # A PERMISSION answer is about the token's grant: a new
                # token (the user consented again) deserves a new try.
                tied = token if reason == "PERMISSION" else None
                state.parked[name] = _Park(reason, until, tied)
                changed = True
                break
    return changed


# -------------------------------------------------------------- persistence


def _restore(state: _VehicleState, record: VehicleRecord, shift: float) -> None:
    """Take a stored record's back-off and parks (epoch seconds + ``shift`` = our clock)."""
    if record.blocked_until is not None:
        state.blocked_until = max(state.blocked_until, record.blocked_until + shift)
    state.failures = max(state.failures, record.failures)
    for name, stored in record.parked.items():
        state.parked.setdefault(
            name, _Park(stored.reason, stored.until + shift, stored.fingerprint)
        )
    if record.next_due is not None:
        # The poll planned before the restart: the first one of this run waits for it.
        state.not_before = max(state.not_before, record.next_due + shift)


def _record(state: _VehicleState, shift: float) -> VehicleRecord:
    """The state as a store keeps it (our clock + ``shift`` = epoch seconds)."""
    now = anyio.current_time()
    return VehicleRecord(
        next_due=state.next_due + shift if state.next_due > now else None,
        blocked_until=state.blocked_until + shift if state.blocked_until > now else None,
        failures=state.failures,
        parked={
            name: ParkedRead(
                reason=park.reason, until=park.until + shift, fingerprint=park.fingerprint
            )
            for name, park in state.parked.items()
        },
    )


class _Saver:
    """Loads vehicle records from a store and saves the changed ones, batched.

    Without a store every method is a no-op, so the poller never asks.
    """

    __slots__ = ("_dirty", "_event", "_scope", "store")

    def __init__(self, store: StateStore | None) -> None:
        self.store = store
        # Vehicles whose record changed since the last save, by id.
        self._dirty: dict[str, _VehicleState] = {}
        self._event: anyio.Event | None = None
        self._scope = anyio.CancelScope()

    def mark(self, state: _VehicleState) -> None:
        """Note that the vehicle's record changed: it is saved with the next batch."""
        if self.store is None:
            return
        self._dirty[state.vehicle.vehicle_id] = state
        if self._event is not None:
            self._event.set()

    async def load(self, states: list[_VehicleState], *, strict: bool) -> None:
        """Apply the store's records to ``states`` (one call for all of them).

        ``strict``: a store that fails raises; otherwise it is logged and the
        states go on without their records.
        """
        assert self.store is not None
        if not states:
            return
        ids = [state.vehicle.vehicle_id for state in states]
        if strict:
            records = await self.store.load_vehicles(ids)
        else:
            try:
                records = await self.store.load_vehicles(ids)
            except StateError as exc:
                # Polling goes on without the record: at worst, a parked
                # read is asked once more.
                logger.warning(
                    "Could not load the poll state of %d vehicle(s): %s",
                    len(ids),
                    exc,
                    extra={"event": "state_load_failed"},
                )
                records = {}
        wall, now = time.time(), anyio.current_time()
        for state in states:
            state.loaded = True
            record = records.get(state.vehicle.vehicle_id)
            if record is not None:
                _restore(state, record, now - wall)
                if lift_parks(state, anyio.current_time()):
                    self.mark(state)

    async def flush(self) -> None:
        """Save every changed record in one call; on failure they stay marked for the next."""
        if not self._dirty or self.store is None:
            return
        batch, self._dirty = self._dirty, {}
        shift = time.time() - anyio.current_time()
        records = {vid: _record(state, shift) for vid, state in batch.items()}
        try:
            await self.store.save_vehicles(records)
        except BaseException:
            # Newer changes (marked meanwhile) win; records are written whole.
            self._dirty = {**batch, **self._dirty}
            raise

    async def run(self) -> None:
        """Save changed records a moment after they change, batched, until `stop`."""
        self._event = anyio.Event()
        if self._dirty:
            self._event.set()
        with self._scope:
            while True:
                await self._event.wait()
                await anyio.sleep(_FLUSH_DELAY)
                self._event = anyio.Event()
                try:
                    await self.flush()
                except StateError as exc:
                    logger.warning(
                        "Could not save the poll state of %d vehicle(s); trying again later: %s",
                        len(self._dirty),
                        exc,
                        extra={"event": "state_save_failed"},
                    )

    def stop(self) -> None:
        self._scope.cancel()

    async def final_flush(self, *, failing: bool) -> None:
        """The last save, shielded from the cancellation that may be stopping us."""
        if self.store is None:
            return
        with anyio.move_on_after(_FLUSH_TIMEOUT, shield=True) as scope:
            try:
                await self.flush()
            except StateError as exc:
                if not failing:
                    raise
                logger.error(
                    "Could not save the poll state of %d vehicle(s) at exit: %s",
                    len(self._dirty),
                    exc,
                    extra={"event": "state_save_failed"},
                )
        if scope.cancelled_caught:
            message = f"the state store did not save within {_FLUSH_TIMEOUT:g} s of stopping"
            if not failing:
                raise StateError(message)
            logger.error(message, extra={"event": "state_save_failed"})
