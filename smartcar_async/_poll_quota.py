"""The poller's spending rules: monthly budgets, per-make limits, and reads webhooks answered.

Before each poll, `Quotas.before` decides, in this order:

1. **fresh**: reads a `FreshnessOracle` says were answered within the poll
   interval are not requested (all of them: the poll is skipped as ``"fresh"``);
2. **make_limit**: the vehicle's make (asked once with ``attributes()`` and
   kept in the store) has a limit (:class:`MakeLimit`) that this poll would
   break: skipped as ``"make_limit"``;
3. **budget**: with ``monthly_budget=N``, a poll that could take the month's
   billed requests past N is skipped as ``"budget"`` (never sent), and so is one
   that comes sooner than the vehicle's fair share allows: the requests left
   this month, spread evenly over the time left, give the shortest gap between
   two polls, which stretches the vehicle's interval just enough to last the
   month. A WARNING is logged once per vehicle and month at 80%.

After each poll, `Quotas.after` adds what the client billed for the vehicle
since the last look (its polls, and anything else sent for it on the same
client) to the store's count of the month, and records the poll's time.

Time here is the wall clock the poller was given (``clock``, ``time.time`` by
default), in epoch seconds: months and brand windows are calendar facts, and
a test passes a compressed clock to live a month in seconds.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable, Mapping
from typing import Final, Literal

import attrs

from ._endpoints import READS
from ._exceptions import SmartcarError, StateError
from ._quota import (
    BillingMeter,
    FreshnessOracle,
    MakeLimit,
    MemoryQuotas,
    VehicleQuota,
    check_count,
    make_key,
    month_bounds,
    month_of,
    resolve_make_limits,
)
from ._state import StateStore
from ._vehicle import Vehicle

logger = logging.getLogger("smartcar_async")

#: The share of the budget at which a vehicle's WARNING is logged.
WARN_AT: Final = 0.8
_PATHS: Final = {read.name: read.path for read in READS}

QuotaSkip = Literal["fresh", "make_limit", "budget"]


@attrs.frozen
class Verdict:
    """What a poll may ask: ``reads`` to request, ``fresh`` ones answered already; or a skip."""

    reads: tuple[str, ...]
    fresh: tuple[str, ...] = ()
    skip: QuotaSkip | None = None


class _Track:
    """One vehicle's spending, as far as this poller knows it."""

    __slots__ = ("asked_at", "loaded", "make", "month", "month_billed", "polls", "warned")

    def __init__(self) -> None:
        self.loaded = False
        self.make: str | None = None
        # When the make was last asked for and not learned (a failed attributes()).
        self.asked_at = -math.inf
        self.polls: tuple[float, ...] = ()
        self.month = ""
        self.month_billed: int | None = None
        self.warned = ""


class Quotas:
    """The spending rules of one poller (see the module); one `_Track` per vehicle."""

    def __init__(
        self,
        *,
        store: StateStore | None,
        monthly_budget: int | None,
        make_limits: Mapping[str, MakeLimit] | None,
        freshness: FreshnessOracle | None,
        clock: Callable[[], float],
        interval: float,
        recheck: float,
    ) -> None:
        self._store: StateStore | MemoryQuotas = store if store is not None else MemoryQuotas()
        self.budget = monthly_budget
        self.limits = make_limits
        self.freshness = freshness
        self.clock = clock
        self._interval = interval
        self._recheck = recheck
        self._tracks: dict[str, _Track] = {}
        self._keep = max((limit.keep for limit in (make_limits or {}).values()), default=1)
        #: Reads not requested because a webhook (the oracle) answered them.
        self.fresh_reads = 0
        #: Vehicles at or past WARN_AT of their budget this month.
        self.near_budget: set[str] = set()

    # ------------------------------------------------------------ before

    async def before(self, vehicle: Vehicle, reads: tuple[str, ...]) -> Verdict:
        track = await self._track(vehicle)
        fresh: tuple[str, ...] = ()
        if self.freshness is not None:
            fresh = tuple(
                name
                for name in reads
                if self.freshness.is_fresh(vehicle, _PATHS[name], max_age=self._interval)
            )
            if fresh:
                self.fresh_reads += len(fresh)
                reads = tuple(name for name in reads if name not in fresh)
                if not reads:
                    return Verdict((), fresh, "fresh")
        now = self.clock()
        limit = self._limit(track)
        if limit is not None and limit.wait(track.polls, now) > 0:
            return Verdict((), fresh, "make_limit")
        asking = self._must_ask_make(track, now)
        if self.budget is not None and not await self._affordable(
            vehicle, track, now, len(reads) + asking
        ):
            return Verdict((), fresh, "budget")
        if asking:
            await self._ask_make(vehicle, track, now)
            limit = self._limit(track)
            if limit is not None and limit.wait(track.polls, now) > 0:
                return Verdict((), fresh, "make_limit")
        return Verdict(reads, fresh)

    def _limit(self, track: _Track) -> MakeLimit | None:
        if self.limits is None or track.make is None:
            return None
        return self.limits.get(track.make)

    def _must_ask_make(self, track: _Track, now: float) -> int:
        if self.limits is None or track.make is not None:
            return 0
        return 1 if now - track.asked_at >= self._recheck else 0

    async def _ask_make(self, vehicle: Vehicle, track: _Track, now: float) -> None:
        try:
            attributes = await vehicle.attributes()
        except SmartcarError as exc:
            track.asked_at = now
            logger.warning(
                "Could not learn the make of vehicle %s (%s); its make limit waits until "
                "it is asked again",
                vehicle.vehicle_id,
                type(exc).__name__,
                extra={"event": "make_unknown", "vehicle_id": vehicle.vehicle_id},
            )
            return
        track.make = make_key(attributes.make) or None
        await self._save(vehicle.vehicle_id, track)

    async def _affordable(self, vehicle: Vehicle, track: _Track, now: float, cost: int) -> bool:
        assert self.budget is not None
        billed = await self._month_billed(vehicle, track, now)
        self._warn(vehicle.vehicle_id, track, billed)
        left = self.budget - billed
        if cost > left:
            return False
        start, end = month_bounds(now)
        if not track.polls or track.polls[-1] < start or cost == 0:
            return True  # a month's first poll goes at once
        # The fair share: the polls the month's rest can pay for, spread evenly.
        gap = (end - now) / (left // cost)
        return now - track.polls[-1] >= gap

    async def _month_billed(self, vehicle: Vehicle, track: _Track, now: float) -> int:
        month = month_of(now)
        pending = _meter(vehicle).take(vehicle.vehicle_id)
        if pending or track.month != month or track.month_billed is None:
            known = track.month_billed if track.month == month else None
            try:
                if pending:
                    total = await self._store.add_billed(vehicle.vehicle_id, month, pending)
                else:
                    total = await self._store.billed(vehicle.vehicle_id, month)
            except StateError as exc:
                # Counted again at the next look; meanwhile the local figure stands in
                # (a fresh month's is what this client alone billed).
                _meter(vehicle).add(vehicle.vehicle_id, pending)
                logger.warning(
                    "Could not count the billed requests of vehicle %s: %s",
                    vehicle.vehicle_id,
                    exc,
                    extra={"event": "state_save_failed"},
                )
                total = (known or 0) + pending
                track.month, track.month_billed = month, known
                return total
            track.month, track.month_billed = month, total
        return track.month_billed

    def _warn(self, vid: str, track: _Track, billed: int) -> None:
        assert self.budget is not None
        if billed < WARN_AT * self.budget:
            self.near_budget.discard(vid)
            return
        self.near_budget.add(vid)
        if track.warned == track.month:
            return
        track.warned = track.month
        logger.warning(
            "Vehicle %s has used %d of its %d billed requests this month (%s); "
            "its polls are spread out to last the month, and stop at the budget",
            vid,
            billed,
            self.budget,
            track.month,
            extra={"event": "budget_warning", "vehicle_id": vid, "billed": billed},
        )

    # ------------------------------------------------------------- after

    async def after(self, vehicle: Vehicle) -> None:
        """Count what the client billed for the vehicle; record the poll's time."""
        vid = vehicle.vehicle_id
        track = await self._track(vehicle)
        now = self.clock()
        if self.budget is not None:
            await self._month_billed(vehicle, track, now)
            self._warn(vid, track, track.month_billed or 0)
        track.polls = (*track.polls, now)[-self._keep :]
        if self.limits is not None or self.budget is not None:
            await self._save(vid, track)

    # ------------------------------------------------------------- store

    async def _track(self, vehicle: Vehicle) -> _Track:
        vid = vehicle.vehicle_id
        track = self._tracks.get(vid)
        if track is None:
            track = self._tracks[vid] = _Track()
            _meter(vehicle).watch(vid)
        if not track.loaded:
            try:
                stored = (await self._store.load_quotas([vid])).get(vid)
            except StateError as exc:
                logger.warning(
                    "Could not load the quota of vehicle %s: %s",
                    vid,
                    exc,
                    extra={"event": "state_load_failed"},
                )
                stored = None
            track.loaded = True
            if stored is not None:
                track.make = track.make or stored.make
                track.polls = tuple(sorted({*stored.polls, *track.polls}))[-self._keep :]
        return track

    async def _save(self, vid: str, track: _Track) -> None:
        try:
            await self._store.save_quotas({vid: VehicleQuota(make=track.make, polls=track.polls)})
        except StateError as exc:
            logger.warning(
                "Could not save the quota of vehicle %s: %s",
                vid,
                exc,
                extra={"event": "state_save_failed"},
            )


def build_quotas(
    state: StateStore | None,
    monthly_budget: int | None,
    make_limits: bool | Mapping[str, MakeLimit | None],
    freshness: FreshnessOracle | None,
    clock: Callable[[], float] | None,
    interval: float,
    recheck: float,
) -> Quotas | None:
    """The poller's spending rules, or None when it has none (the checks of their arguments)."""
    if monthly_budget is not None:
        # check_count: past a count a store can keep, a budget means nothing (and
        # past a float's range it broke the share arithmetic).
        check_count("monthly_budget", monthly_budget, minimum=1)
    limits = resolve_make_limits(make_limits)
    if freshness is not None and not isinstance(freshness, FreshnessOracle):
        raise TypeError(
            "freshness must have is_fresh(vehicle, path, *, max_age) -> bool "
            "(client.readings has), "
            f"not {type(freshness).__name__}"
        )
    if clock is not None and not callable(clock):
        raise TypeError("clock must be a callable returning epoch seconds")
    if monthly_budget is None and limits is None and freshness is None:
        return None
    return Quotas(
        store=state,
        monthly_budget=monthly_budget,
        make_limits=limits,
        freshness=freshness,
        clock=clock or time.time,
        interval=interval,
        recheck=recheck,
    )


_FALLBACK: Final = BillingMeter()


def _meter(vehicle: Vehicle) -> BillingMeter:
    """The client's meter behind a handle (a stand-in for handles without one)."""
    meter = getattr(vehicle._io, "billing", None)
    return meter if isinstance(meter, BillingMeter) else _FALLBACK
