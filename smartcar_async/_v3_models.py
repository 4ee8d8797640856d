"""Smartcar API v3 models: `Signal`, `Signals`, `SignalsMeta`, `CommandResult`, and their readers.

A v3 signal is a JSON:API resource::

    {"id": "odometer-traveleddistance", "type": "signal",
     "attributes": {"code", "name", "group", "status": {"value", "error"?}, "body"?},
     "meta": {"oemUpdatedAt"?, "retrievedAt"?, "ingestedAt"?}, "links": {...}}

Bodies differ from signal to signal (``{"value": 53, "unit": "km/h"}``,
``{"values": [...], "activeLimit": 80, "unit": "percent"}``, ``{"isOpen":
false}``), so `Signal.body` keeps the body as a read-only mapping (a
`FrozenMap`; nested objects read-only too, arrays as tuples) and lifts ``value`` and ``unit``
when the body has them. Timestamps may be ISO-8601 text (what recorded REST
answers carry) or epoch numbers (what the SDK fixtures and webhooks carry);
both come out timezone-aware.

Strict where the meaning is unclear: a body holding NaN or Infinity, a
status that is not ``SUCCESS`` or ``ERROR``, a timestamp that cannot be
read, a missing code: each is a `Mismatch` naming its wire path, which the
converter turns into an `InvalidResponseError` (``field`` e.g.
``attributes.body.value``). Liberal where it is clear: a missing ``name``,
``group``, ``meta`` or ``body`` reads as None.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from datetime import datetime
from typing import Any, Final

import attrs

from ._exceptions import SmartcarError, error_from_v3_item
from ._json_checks import TIMESTAMP, Mismatch, Path, check_json
from ._models import EMPTY_META, Action, Attributes, Meta, parse_timestamp

__all__ = [
    "BUILDERS",
    "CommandResult",
    "FrozenMap",
    "Signal",
    "Signals",
    "SignalsMeta",
    "freeze",
    "read_signal",
]

_STATUSES: Final = frozenset({"SUCCESS", "ERROR"})


class FrozenMap(Mapping[str, Any]):
    """A read-only JSON object: a signal's body, a command's parameters.

    Unlike `types.MappingProxyType` it pickles (models travel between
    worker processes) and hashes, like the frozen models that hold it.

    Added in 0.1.0.
    """

    __slots__ = ("_items",)

    def __init__(self, items: Mapping[str, Any]) -> None:
        self._items = dict(items)

    def __getitem__(self, key: str) -> Any:
        return self._items[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._items)

    def __len__(self) -> int:
        return len(self._items)

    def __hash__(self) -> int:
        return hash(frozenset(self._items.items()))

    def __reduce__(self) -> tuple[Any, ...]:
        return (FrozenMap, (self._items,))

    def __repr__(self) -> str:
        return f"FrozenMap({self._items!r})"


def freeze(value: Any) -> Any:
    """JSON made read-only: objects as `FrozenMap`, arrays as tuples."""
    if type(value) is dict:
        return FrozenMap({k: freeze(v) for k, v in value.items()})
    if type(value) is list:
        return tuple(freeze(v) for v in value)
    return value


@attrs.frozen
class Signal:
    """One v3 signal of one vehicle (``GET /vehicles/{id}/signals[/{code}]``).

    ``status`` is ``SUCCESS`` or ``ERROR``; for ``ERROR``, ``error`` is the
    typed :class:`SmartcarError` (a :class:`CompatibilityError` for
    ``COMPATIBILITY``...) and ``body`` may still hold the last known value.
    ``value`` and ``unit`` are the body's, when it has them. ``reused`` and
    ``age`` are as in `Meta`: True and its age in seconds when a read with
    ``max_age`` was answered without a request. Added in 0.2.0.
    """

    code: str
    name: str | None = None
    group: str | None = None
    status: str = "SUCCESS"
    body: Mapping[str, Any] | None = None
    value: Any = None
    unit: str | None = None
    error: SmartcarError | None = attrs.field(default=None, eq=False)
    oem_updated_at: datetime | None = None
    retrieved_at: datetime | None = None
    ingested_at: datetime | None = None
    reused: bool = attrs.field(default=False, kw_only=True)
    age: float | None = attrs.field(default=None, kw_only=True)

    @property
    def ok(self) -> bool:
        """True when the signal's status is SUCCESS."""
        return self.status == "SUCCESS"


@attrs.frozen
class SignalsMeta:
    """About one `Signals` answer: request id, when it arrived, and its paging.

    ``total_count`` is the server's ``meta.totalCount``; ``pages`` how many
    pages were fetched to gather every signal (1 unless the answer was paged).
    ``reused`` and ``age`` are as in `Meta` (a read with ``max_age``).

    Added in 0.1.0.
    """

    request_id: str | None = None
    fetched_at: datetime | None = None
    total_count: int | None = None
    page_size: int | None = None
    pages: int = 1
    reused: bool = attrs.field(default=False, kw_only=True)
    age: float | None = attrs.field(default=None, kw_only=True)


class Signals(Mapping[str, Signal]):
    """Every signal of a vehicle, by code: a read-only mapping (``signals["vin"]``...).

    Failed signals are in it too, with ``status == "ERROR"`` and their
    ``error``; `errors` lists them. ``meta`` is a `SignalsMeta`; ``vehicle``
    the ``included.vehicle`` attributes when the answer had them. Added in 0.2.0.
    """

    __slots__ = ("_signals", "meta", "vehicle")

    def __init__(
        self,
        signals: Mapping[str, Signal],
        meta: SignalsMeta | None = None,
        vehicle: Attributes | None = None,
    ) -> None:
        self._signals = dict(signals)
        self.meta = meta if meta is not None else SignalsMeta()
        self.vehicle = vehicle

    def __getitem__(self, code: str) -> Signal:
        return self._signals[code]

    def __iter__(self) -> Iterator[str]:
        return iter(self._signals)

    def __len__(self) -> int:
        return len(self._signals)

    @property
    def errors(self) -> dict[str, SmartcarError]:
        """The failed signals' typed errors, by code."""
        return {c: s.error for c, s in self._signals.items() if s.error is not None}

    def __repr__(self) -> str:
        return f"<Signals count={len(self._signals)} errors={len(self.errors)}>"


_FINAL: Final = frozenset({"SUCCESS", "FAILURE", "FAILED", "ERROR"})


@attrs.frozen
class CommandResult(Action):
    """The answer to a v3 command (``POST /vehicles/{id}/commands/...``); an `Action`.

    ``http_status`` is 200 when the command finished, 202 when Smartcar held
    the connection for a long command. A held answer normally ends with the
    final result as its body; when it carries none (or a status such as
    ``PENDING``), ``running`` is True and ``id`` names the execution (v3
    documents no route to look one up yet: read the signals it changes).
    ``status`` is the body's ``status.value`` (``SUCCESS``...), ``PENDING``
    for a 202 without one. Added in 0.2.0.
    """

    http_status: int = 200
    id: str | None = None
    command_type: str | None = None
    execution_mode: str | None = None
    parameters: Mapping[str, Any] | None = None
    executed_at: datetime | None = None
    completed_at: datetime | None = None
    duration_seconds: float | None = None

    @property
    def running(self) -> bool:
        """True while the command is still running: no final status has arrived."""
        return self.status.upper() not in _FINAL


# --- readers -------------------------------------------------------------


def _obj(value: object, at: Path) -> dict[str, Any] | None:
    if value is None or type(value) is dict:
        return value
    raise Mismatch("an object", value, at)


def _opt_str(obj: Mapping[str, Any], key: str, at: Path) -> str | None:
    value = obj.get(key)
    if value is None or type(value) is str:
        return value
    raise Mismatch("a string", value, (*at, ("attr", key)))


def _when(obj: Mapping[str, Any], key: str, at: Path) -> datetime | None:
    value = obj.get(key)
    if value is None:
        return None
    try:
        return parse_timestamp(value)
    except ValueError:
        raise Mismatch(TIMESTAMP, value, (*at, ("attr", key))) from None


def _opt_number(obj: Mapping[str, Any], key: str, at: Path) -> float | None:
    value = obj.get(key)
    if value is None:
        return None
    if type(value) is int or type(value) is float:
        try:
            return float(value)
        except OverflowError:  # raw JSON may hold an int of up to 4,000 digits
            raise Mismatch("a number in float range", value, (*at, ("attr", key))) from None
    raise Mismatch("a number", value, (*at, ("attr", key)))


def read_signal(raw: object, request_id: str | None = None, at: Path = ()) -> Signal:
    """One signal resource (or the bare attributes object) as a `Signal`."""
    if type(raw) is not dict:
        raise Mismatch("an object", raw, at)
    try:
        check_json(raw)
    except Mismatch as exc:
        exc.path = (*at, *exc.path)
        raise
    attributes = raw.get("attributes")
    if attributes is None:
        # The docs' unwrapped form puts the attributes at the top level.
        attributes, attr_at = raw, at
    else:
        attr_at = (*at, ("attr", "attributes"))
        attributes = _obj(attributes, attr_at)
        assert attributes is not None
    code = attributes.get("code", raw.get("id"))
    if type(code) is not str or not code:
        raise Mismatch("a signal code string", code, (*attr_at, ("attr", "code")))
    status_at = (*attr_at, ("attr", "status"))
    status_obj = _obj(attributes.get("status"), status_at) or {}
    status = status_obj.get("value", "SUCCESS")
    if status not in _STATUSES:
        raise Mismatch('"SUCCESS" or "ERROR"', status, (*status_at, ("attr", "value")))
    error = None
    if status == "ERROR":
        item = _obj(status_obj.get("error"), (*status_at, ("attr", "error"))) or {}
        error = error_from_v3_item(item, None, request_id=request_id, signal=code)
    body_at = (*attr_at, ("attr", "body"))
    body = _obj(attributes.get("body"), body_at)
    unit = _opt_str(body, "unit", body_at) if body is not None else None
    meta_at = (*at, ("attr", "meta"))
    meta = _obj(raw.get("meta"), meta_at) or {}
    return Signal(
        code=code,
        name=_opt_str(attributes, "name", attr_at),
        group=_opt_str(attributes, "group", attr_at),
        status=status,
        body=freeze(body) if body is not None else None,
        value=freeze(body.get("value")) if body is not None else None,
        unit=unit,
        error=error,
        oem_updated_at=_when(meta, "oemUpdatedAt", meta_at),
        retrieved_at=_when(meta, "retrievedAt", meta_at),
        ingested_at=_when(meta, "ingestedAt", meta_at),
    )


def read_vehicle(raw: object, at: Path = ()) -> Attributes:
    """A v3 vehicle resource (``{"id", "attributes": {make, model, year...}}``) as `Attributes`."""
    if not isinstance(raw, dict):
        raise Mismatch("an object", raw, at)
    data = raw.get("data")
    if isinstance(data, dict):  # GET /vehicles/{id} wraps it
        raw, at = data, (*at, ("attr", "data"))
    attr_at = (*at, ("attr", "attributes"))
    attributes = _obj(raw.get("attributes"), attr_at) or {}
    vehicle_id = raw.get("id")
    if type(vehicle_id) is not str:
        raise Mismatch("a string", vehicle_id, (*at, ("attr", "id")))
    year = attributes.get("year")
    if type(year) is not int:
        raise Mismatch("an integer", year, (*attr_at, ("attr", "year")))
    make = _opt_str(attributes, "make", attr_at)
    model = _opt_str(attributes, "model", attr_at)
    if make is None or model is None:
        missing = "make" if make is None else "model"
        raise Mismatch("a string", None, (*attr_at, ("attr", missing)))
    return Attributes(id=vehicle_id, make=make, model=model, year=year)


def read_command(status: int, body: object, meta: Meta = EMPTY_META) -> CommandResult:
    """A command execution document (``{"data": {"id", "attributes", "meta"}}``)."""
    pending = "PENDING" if status == 202 else "SUCCESS"
    if body is None or body == "" or body == {}:
        return CommandResult(status=pending, http_status=status, meta=meta)
    if type(body) is not dict:
        raise Mismatch("an object", body)
    check_json(body)
    at: Path = (("attr", "data"),)
    data = _obj(body.get("data"), at) or {}
    attr_at = (*at, ("attr", "attributes"))
    attributes = _obj(data.get("attributes"), attr_at) or {}
    status_at = (*attr_at, ("attr", "status"))
    status_obj = attributes.get("status")
    state = (
        _opt_str(status_obj, "value", status_at)
        if isinstance(status_obj, dict)
        else _opt_str(attributes, "status", attr_at)
    )
    params = _obj(attributes.get("parameters"), (*attr_at, ("attr", "parameters")))
    meta_at = (*at, ("attr", "meta"))
    times = _obj(data.get("meta"), meta_at) or {}
    return CommandResult(
        http_status=status,
        status=state or pending,
        id=_opt_str(data, "id", at),
        command_type=_opt_str(attributes, "commandType", attr_at),
        execution_mode=_opt_str(attributes, "executionMode", attr_at),
        parameters=freeze(params) if params is not None else None,
        executed_at=_when(times, "executedAt", meta_at),
        completed_at=_when(times, "completedAt", meta_at),
        duration_seconds=_opt_number(times, "durationInSeconds", meta_at),
        meta=meta,
    )


def _pass_signal(body: object, _: Any = None) -> Signal:
    # The v3 executor hands over signals it already read; anything else is a resource.
    return body if type(body) is Signal else read_signal(body)


def _pass_signals(body: object, _: Any = None) -> Signals:
    if type(body) is Signals:
        return body
    raise Mismatch("a signals answer", body)


#: Hand-written builders for `_converter.structure` (the coalescer builds models through it).
BUILDERS: Final[dict[type, Any]] = {Signal: _pass_signal, Signals: _pass_signals}
