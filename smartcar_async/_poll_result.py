"""What a poller hands out: one vehicle's reads for one round, and the stream of them.

A `PollResult` is pure data (``to_dict`` makes it JSON-ready for a log line
or a JSONL file); `_Results` is the iterator ``FleetPoller.results()``
returns, which ends, never raises, when the poller stops.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping
from typing import Any, Literal, Self

import anyio
import attrs
from anyio.streams.memory import MemoryObjectReceiveStream

from ._converter import unstructure
from ._exceptions import SmartcarError

__all__ = ["PollOutcome", "PollResult", "SkipReason"]

SkipReason = Literal["backoff", "late", "budget", "make_limit", "fresh"]
#: How a round went for one vehicle (see :attr:`PollResult.outcome`).
PollOutcome = Literal["ok", "error", "parked", "skipped"]


@attrs.frozen(kw_only=True)
class PollResult:
    """One vehicle's reads for one round.

    ``values`` maps each read that succeeded (``"odometer"``...) to its model,
    ``errors`` each read that failed to its :class:`SmartcarError`;
    ``timings`` says how long each answered read took, in seconds.
    ``latency`` is the whole poll, from the first read issued to the last
    answer. ``backoff`` is how many seconds the poller now holds this vehicle
    back (after a rate limit or a vehicle-state error; 0.0 otherwise).
    ``parked`` maps each read that was not requested because it is parked
    to the reason (``"COMPATIBILITY"``, ``"PERMISSION"``,
    ``"AUTHENTICATION"``); a polled result's ``values``, ``errors`` and
    ``parked`` together name every read once. The round a read is parked in
    reports the answer that parked it in ``errors``; later rounds, in
    ``parked``. When every read is parked nothing is sent: the result has
    only ``parked`` (its :attr:`outcome` is ``"parked"``) and a latency of 0.

    A *skipped* result stands for a round in which the vehicle was not read:
    ``"backoff"``: it was backing off through the whole slot; ``"late"``: its
    previous poll (or the wait for a concurrency slot) ran past it;
    ``"budget"``: the poll could take the vehicle past the poller's
    ``monthly_budget``, or comes sooner than its share of the month allows;
    ``"make_limit"``: its make's limit (Hyundai and Kia: 20 polls a day...)
    does not allow a poll yet; ``"fresh"``: every read was answered by a
    webhook within the interval (see ``fresh``). It has no values, no errors
    and a latency of 0. Nothing is sent for a skipped round.

    ``fresh`` names the reads that were not requested because a webhook
    delivery answered them within the poll interval (``FleetPoller(freshness=...)``).

    Added in 0.1.0.
    """

    vehicle_id: str
    round: int
    started_at: dt.datetime
    latency: float
    values: Mapping[str, Any] = attrs.field(factory=dict)
    errors: Mapping[str, SmartcarError] = attrs.field(factory=dict)
    timings: Mapping[str, float] = attrs.field(factory=dict)
    skipped: SkipReason | None = None
    backoff: float = 0.0
    parked: Mapping[str, str] = attrs.field(factory=dict)
    fresh: tuple[str, ...] = ()

    @property
    def outcome(self) -> PollOutcome:
        """``"skipped"`` (not read), ``"error"`` (a read failed), ``"parked"``
        (nothing requested: every read is parked), else ``"ok"``."""
        if self.skipped is not None:
            return "skipped"
        if self.errors:
            return "error"
        if not self.values and self.parked:
            return "parked"
        return "ok"

    @property
    def ok(self) -> bool:
        """Whether the vehicle was read and every read requested succeeded (parked ones aside)."""
        return self.outcome == "ok"

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict: models as snake_case dicts, errors as their fields, ISO times."""
        return {
            "vehicle_id": self.vehicle_id,
            "round": self.round,
            "started_at": self.started_at.isoformat(),
            "latency": round(self.latency, 6),
            "skipped": self.skipped,
            "backoff": round(self.backoff, 6),
            "values": {name: unstructure(value) for name, value in self.values.items()},
            "errors": {name: error_dict(error) for name, error in self.errors.items()},
            "timings": {name: round(seconds, 6) for name, seconds in self.timings.items()},
            "parked": dict(self.parked),
            "fresh": list(self.fresh),
        }


def error_dict(error: SmartcarError) -> dict[str, Any]:
    """The fields of an error worth keeping in a log line."""
    return {
        "error": type(error).__name__,
        "type": error.type,
        "code": error.code,
        "status_code": error.status_code,
        "message": str(error),
        "request_id": error.request_id,
        "retry_after": error.retry_after,
    }


class _Results:
    """The async iterator ``results()`` hands out: ends, never raises, when the poller stops."""

    __slots__ = ("_on_receive", "_stream")

    def __init__(
        self,
        stream: MemoryObjectReceiveStream[PollResult],
        on_receive: Callable[[PollResult], None] | None = None,
    ) -> None:
        self._stream = stream
        # Told of each result as a consumer takes it (a shared schedule counts the poll then).
        self._on_receive = on_receive

    def __aiter__(self) -> Self:
        return self

    async def __anext__(self) -> PollResult:
        try:
            result = await self._stream.receive()
        except (anyio.EndOfStream, anyio.ClosedResourceError):
            raise StopAsyncIteration from None
        if self._on_receive is not None:
            self._on_receive(result)
        return result
