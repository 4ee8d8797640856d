"""The batch wire format, and the executor that speaks it for the coalescer.

A flight of the coalescer goes out as one request (`execute_reads`): a plain
GET for one path, else ``POST /vehicles/{id}/batch`` with the body
`batch_bytes` encodes; `parse_batch_envelope` keys the answer's items by
path, as `RawItem`s in an `Answer`, for the coalescer to route.
"""

from __future__ import annotations

import functools
from collections.abc import Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

import attrs

from . import _endpoints as e
from . import _json
from . import _models as m
from ._endpoints import normalize_path
from ._exceptions import InvalidResponseError, SmartcarError
from ._observability import logger

if TYPE_CHECKING:
    from ._coalescer import QueueKey
    from ._policy import SendPolicy

T = TypeVar("T")

__all__ = [
    "Answer",
    "BatchResponse",
    "RawItem",
    "batch_body",
    "batch_bytes",
    "execute_reads",
    "parse_batch_envelope",
]


# RawItem and Answer are built on every read and only read afterwards; not
# frozen because a frozen attrs class sets each field through
# object.__setattr__, which made building one cost about 2.5 times as much.
@attrs.define
class RawItem:
    """One path's answer, before it becomes a model or an error.

    ``error`` is set (and ``code`` is 0) when the answer's envelope item was
    unreadable: its callers get that error as it is.
    """

    code: int
    body: Any
    headers: Mapping[str, Any]
    error: SmartcarError | None = None


@attrs.define
class Answer:
    """What the executor got back for a flight: items keyed by normalised path."""

    items: Mapping[str, RawItem]
    request_id: str | None


async def execute_reads(
    policy: SendPolicy, key: QueueKey, paths: tuple[str, ...], spent: int = 0
) -> Answer:
    """The coalescer's executor: a plain GET for one path, a batch POST for more.

    Bind ``policy`` (``functools.partial``) to get the coalescer's `Executor`.
    """
    params = {"flags": key.flags} if key.flags else None
    if len(paths) == 1:
        resp = await policy.send(
            "GET",
            key,
            paths[0],
            params=params,
            unit_system=key.unit_system,
            retry=True,
            kind="get",
            spent=spent,
        )
        return Answer({paths[0]: RawItem(resp.status, resp.body, resp.headers)}, resp.request_id)
    logger.debug("batch for vehicle %s: %s", key.vehicle_id, ", ".join(paths))
    resp = await policy.send(
        "POST",
        key,
        "/batch",
        params=params,
        json_body=batch_bytes(paths),
        unit_system=key.unit_system,
        retry=True,
        kind="batch",
        cost=len(paths),
        spent=spent,
    )
    return parse_batch_envelope(resp.body, resp.request_id)


def batch_body(paths: Sequence[str]) -> dict[str, list[dict[str, str]]]:
    return {"requests": [{"path": path} for path in paths]}


@functools.lru_cache(maxsize=1024)
def _path_json(path: str) -> bytes:
    return _json.dumps({"path": path})


def batch_bytes(paths: Sequence[str]) -> bytes:
    """`batch_body` already encoded, from cached per-path fragments."""
    return b'{"requests":[' + b",".join([_path_json(p) for p in paths]) + b"]}"


def parse_batch_envelope(body: Any, request_id: str | None) -> Answer:
    """Check the 200 envelope's shape and key its items by normalised path.

    Items are matched by ``path`` and never by position: Smartcar does not
    document the order. An envelope without a ``responses`` list fails every
    path. Otherwise each item stands alone, so one broken item costs only
    its own path: an item that is not an object or has no string ``path``
    cannot be routed and is skipped (its callers then learn that the answer
    has no item for their path); an item whose ``code`` is not an HTTP status
    (an int in 100..599, not a bool) fails its path with an
    `InvalidResponseError` naming ``responses[i].code``. Items for paths
    nobody asked for are ignored by the router. When a path is answered
    twice, the first readable answer wins.
    """
    responses = body.get("responses") if isinstance(body, dict) else None
    if not isinstance(responses, list):
        raise InvalidResponseError(
            "The batch response has no 'responses' list", field="responses", request_id=request_id
        )
    items: dict[str, RawItem] = {}
    for index, raw in enumerate(responses):
        path = raw.get("path") if isinstance(raw, dict) else None
        if not isinstance(path, str):
            continue
        key = normalize_path(path)
        seen = items.get(key)
        if seen is not None and seen.error is None:
            continue
        code = raw.get("code")
        if type(code) is int and 100 <= code <= 599:
            headers = raw.get("headers")
            if not isinstance(headers, dict):
                headers = {}
            items[key] = RawItem(code, raw.get("body"), headers)
        elif seen is None:
            where = f"responses[{index}].code"
            items[key] = RawItem(
                0,
                None,
                {},
                InvalidResponseError(
                    f"Batch item {where} is not an HTTP status code",
                    field=where,
                    request_id=request_id,
                ),
            )
    return Answer(items, request_id)


class BatchResponse:
    """The result of an explicit :meth:`Vehicle.batch`: one outcome per requested path.

    ``response["/odometer"]`` returns that path's model or raises its error, as
    the official SDK's batch result does. That is why this is not a
    ``Mapping``: a mapping's ``get``, ``values`` and ``items`` never raise.
    Without raising, ``response.outcomes`` maps every path to its model or its
    :class:`SmartcarError`, ``response.models`` the paths that succeeded and
    ``response.errors`` those that failed. ``path in response``, ``len`` and
    iteration (over the paths, in request order) work as on a dict. Paths are
    normalised (leading slash), so ``"odometer"`` and ``"/odometer"`` are the same.

    Typed: ``response.odometer()``, ``response.lock_status()`` and one method per
    read, named as the official SDK's batch result names them (as `Vehicle`'s
    reads, but ``battery_nominal_capacity`` for ``/battery/nominal_capacity``),
    return that path's model with its type, or raise its error, or ``KeyError``
    when the batch did not ask for it, as ``response[path]`` does.

    Added in 0.1.0. The typed methods: 0.2.0.
    """

    __slots__ = ("_outcomes",)

    def __init__(self, outcomes: Mapping[str, Any]) -> None:
        self._outcomes = dict(outcomes)

    def __getitem__(self, path: str) -> Any:
        """The path's model; raises its :class:`SmartcarError`, or ``KeyError`` if not asked."""
        outcome = self._outcomes[normalize_path(path)]
        if isinstance(outcome, SmartcarError):
            raise outcome
        return outcome

    def __contains__(self, path: object) -> bool:
        return isinstance(path, str) and normalize_path(path) in self._outcomes

    def __iter__(self) -> Iterator[str]:
        return iter(self._outcomes)

    def __len__(self) -> int:
        return len(self._outcomes)

    @property
    def outcomes(self) -> dict[str, Any]:
        """Every path with its model or its :class:`SmartcarError` (a fresh dict; never raises)."""
        return dict(self._outcomes)

    @property
    def models(self) -> dict[str, Any]:
        """The paths that succeeded, with their models."""
        return {p: o for p, o in self._outcomes.items() if not isinstance(o, SmartcarError)}

    @property
    def errors(self) -> dict[str, SmartcarError]:
        """The paths that failed, with their typed errors."""
        return {p: o for p, o in self._outcomes.items() if isinstance(o, SmartcarError)}

    def __repr__(self) -> str:
        ok = len(self._outcomes) - len(self.errors)
        return f"<BatchResponse paths={list(self._outcomes)} ok={ok} errors={len(self.errors)}>"

    def _typed(self, read: e.Read[T]) -> T:
        outcome = self._outcomes[read.path]
        if isinstance(outcome, SmartcarError):
            raise outcome
        if not isinstance(outcome, read.model):
            # Only a BatchResponse built by hand: `Vehicle.batch` builds every
            # outcome from this same table (`model_for_path`).
            raise TypeError(
                f"{read.path} holds a {type(outcome).__name__}, not a {read.model.__name__}"
            )
        return outcome

    # One typed method per read of the endpoint table (a test keeps them in step).

    def attributes(self) -> m.Attributes:
        return self._typed(e.ATTRIBUTES)

    def vin(self) -> m.Vin:
        return self._typed(e.VIN)

    def permissions(self) -> m.Permissions:
        return self._typed(e.PERMISSIONS)

    def odometer(self) -> m.Odometer:
        return self._typed(e.ODOMETER)

    def location(self) -> m.Location:
        return self._typed(e.LOCATION)

    def fuel(self) -> m.Fuel:
        return self._typed(e.FUEL)

    def battery(self) -> m.Battery:
        return self._typed(e.BATTERY)

    def battery_capacity(self) -> m.BatteryCapacity:
        return self._typed(e.BATTERY_CAPACITY)

    def battery_nominal_capacity(self) -> m.NominalCapacity:
        # The SDK's batch name for it; `Vehicle.nominal_capacity` is its read.
        return self._typed(e.NOMINAL_CAPACITY)

    def charge(self) -> m.Charge:
        return self._typed(e.CHARGE)

    def get_charge_limit(self) -> m.ChargeLimit:
        return self._typed(e.CHARGE_LIMIT)

    def tire_pressure(self) -> m.TirePressure:
        return self._typed(e.TIRE_PRESSURE)

    def engine_oil(self) -> m.EngineOil:
        return self._typed(e.ENGINE_OIL)

    def lock_status(self) -> m.LockStatus:
        return self._typed(e.LOCK_STATUS)

    def diagnostic_system_status(self) -> m.DiagnosticSystemStatus:
        return self._typed(e.SYSTEM_STATUS)

    def diagnostic_trouble_codes(self) -> m.DiagnosticTroubleCodes:
        return self._typed(e.TROUBLE_CODES)

    def service_history(self) -> m.ServiceHistory:
        return self._typed(e.SERVICE_HISTORY)
