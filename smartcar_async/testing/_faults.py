"""Fault injection: random faults drawn from a seeded RNG, and scripted one-shot faults.

Semantics (documented for users of `Faults` and `Emulator.inject`):

* Random HTTP faults (``drop``, ``slow``, ``server_error``, ``malformed``)
  apply to Vehicle API requests only (``/vehicles``, ``/user`` and every
  vehicle endpoint), never to OAuth, Management or Compatibility calls. At most
  one fires per request, tried in that order, each an independent draw.
* ``drop`` closes the connection without a response and ``server_error``
  answers 500 SERVER:INTERNAL; neither runs the endpoint (no state change, no
  rate-limit charge). ``slow`` holds the request for ``slow_seconds`` and then
  serves it normally. ``malformed`` serves it (state changes stick) and then
  sends status 200 with the body cut in half.
* Scripted injections are checked before the random faults and apply to any
  request whose path matches; each match consumes one of ``times``.
* Latency is added to every response, errors included.
"""

from __future__ import annotations

import random
import threading
from typing import Literal

import attrs

from ._errors import ApiError

FaultKind = Literal["drop", "malformed", "slow"]


def _fraction(_inst: object, attribute: attrs.Attribute[float], value: float) -> None:
    if not 0.0 <= value <= 1.0:
        raise ValueError(f"{attribute.name} must be within 0..1, got {value!r}")


@attrs.define
class Faults:
    """Random faults, as fractions 0..1 of Vehicle API HTTP requests. Mutable mid-test.

    Draws come from ``random.Random(seed)``, so the same requests in the same
    order meet the same faults. Changing ``seed`` (or assigning a new `Faults`
    to ``Emulator.faults``) restarts the sequence.

    ``asleep`` and ``unreachable`` hold vehicle ids whose data reads and actions
    answer 409 VEHICLE_STATE:ASLEEP / UNREACHABLE (per item inside a batch).
    Reads Smartcar serves from its own records (attributes, VIN, permissions)
    and disconnect/webhook calls are unaffected.

    Added in 0.1.0.
    """

    seed: int = 0
    latency: float | tuple[float, float] = 0.0
    server_error_rate: float = attrs.field(default=0.0, validator=_fraction)
    item_error_rate: float = attrs.field(default=0.0, validator=_fraction)
    drop_rate: float = attrs.field(default=0.0, validator=_fraction)
    slow_rate: float = attrs.field(default=0.0, validator=_fraction)
    slow_seconds: float = 30.0
    malformed_rate: float = attrs.field(default=0.0, validator=_fraction)
    asleep: set[str] = attrs.field(factory=set)
    unreachable: set[str] = attrs.field(factory=set)


def normalize_path(path: str) -> str:
    """Leading slash, no query string, no trailing slash (except the root)."""
    path = path.split("?", 1)[0]
    if not path.startswith("/"):
        path = "/" + path
    if len(path) > 1 and path.endswith("/"):
        path = path[:-1]
    return path


@attrs.define(eq=False)
class Injection:
    """One scripted fault; ``remaining`` None means "until cleared"."""

    error: ApiError | None
    fault: FaultKind | None
    seconds: float | None
    remaining: int | None
    path: str | None
    vehicle_id: str | None
    in_batch: bool

    def matches(self, path: str, vehicle_id: str | None, in_batch: bool) -> bool:
        return (
            self.in_batch == in_batch
            and (self.path is None or self.path == path)
            and (self.vehicle_id is None or self.vehicle_id == vehicle_id)
        )


@attrs.frozen
class HttpFault:
    """What to do to one HTTP request before (or after) serving it."""

    drop: bool = False
    slow: float = 0.0
    malformed: bool = False
    error: ApiError | None = None


_SERVER_ERROR = ApiError("SERVER", "INTERNAL")


class FaultEngine:
    """Holds the injections and the RNG; reads the current `Faults` on every call."""

    def __init__(self) -> None:
        self._rng = random.Random(0)
        self._rng_key: tuple[int, int] | None = None
        self._injections: list[Injection] = []
        self._lock = threading.Lock()

    def add(self, injection: Injection) -> None:
        with self._lock:
            self._injections.append(injection)

    def clear(self) -> None:
        with self._lock:
            self._injections.clear()

    @property
    def pending(self) -> list[Injection]:
        with self._lock:
            return list(self._injections)

    def _take(self, path: str, vehicle_id: str | None, in_batch: bool) -> Injection | None:
        if not self._injections:
            return None
        with self._lock:
            for injection in self._injections:
                if injection.matches(path, vehicle_id, in_batch):
                    if injection.remaining is not None:
                        injection.remaining -= 1
                        if injection.remaining <= 0:
                            self._injections.remove(injection)
                    return injection
        return None

    def restart(self) -> None:
        """Start the random sequence again from the seed on next use."""
        self._rng_key = None

    def _random(self, faults: Faults) -> random.Random:
        key = (id(faults), faults.seed)
        if key != self._rng_key:
            self._rng = random.Random(faults.seed)
            self._rng_key = key
        return self._rng

    def latency(self, *values: float | tuple[float, float], faults: Faults) -> float:
        total = 0.0
        for value in values:
            if isinstance(value, tuple):
                low, high = value
                total += self._random(faults).uniform(low, high)
            else:
                total += value
        return total

    def http_fault(
        self, faults: Faults, path: str, vehicle_id: str | None, vehicle_api: bool
    ) -> HttpFault | None:
        injection = self._take(path, vehicle_id, in_batch=False)
        if injection is not None:
            if injection.fault == "drop":
                return HttpFault(drop=True)
            if injection.fault == "slow":
                seconds = (
                    injection.seconds if injection.seconds is not None else faults.slow_seconds
                )
                return HttpFault(slow=seconds)
            if injection.fault == "malformed":
                return HttpFault(malformed=True)
            return HttpFault(error=injection.error)
        if not vehicle_api:
            return None
        if faults.drop_rate and self._random(faults).random() < faults.drop_rate:
            return HttpFault(drop=True)
        if faults.slow_rate and self._random(faults).random() < faults.slow_rate:
            return HttpFault(slow=faults.slow_seconds)
        if faults.server_error_rate and self._random(faults).random() < faults.server_error_rate:
            return HttpFault(error=_SERVER_ERROR)
        if faults.malformed_rate and self._random(faults).random() < faults.malformed_rate:
            return HttpFault(malformed=True)
        return None

    def item_error(self, faults: Faults, path: str, vehicle_id: str) -> ApiError | None:
        injection = self._take(path, vehicle_id, in_batch=True)
        if injection is not None:
            return injection.error
        if faults.item_error_rate and self._random(faults).random() < faults.item_error_rate:
            return _SERVER_ERROR
        return None
