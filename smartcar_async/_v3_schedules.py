"""Smartcar API v3 charge schedules: `ChargeWindow`, `ScheduleResult`, the bodies and the reader.

The routes (``https://vehicle.api.smartcar.com/v3/vehicles/{id}/...``; not
under ``/commands``):

* ``POST charge-schedules/daily``: documented with an example
  (smartcar.com/docs/api-reference/charge-schedules/set-daily-charge-schedule):
  ``{"data": {"attributes": {"location": {"latitude", "longitude"},
  "startTime": "08:00", "stopTime": "10:00"}}}``.
* ``POST charge-schedules/weekly`` and ``charge-schedules/workweek``: a reading
  of the 3.0.0 spec gives only the field names (``location`` plus ``days``
  keyed by weekday name; ``location``, ``weekdays``, ``weekends``). The inner
  shapes are ASSUMED to reuse the daily window: ``"days": {"monday":
  {"startTime", "stopTime"}, ...}`` (lower-case English names, Monday first)
  and ``"weekdays"``/``"weekends": {"startTime", "stopTime"}``.
* ``DELETE charge-schedules/{scheduleId}``: no body; the answer is not
  documented, so a ``charge-schedule-execution`` document, an empty body and
  a 204 are all read.

Answers are ``charge-schedule-execution`` documents: the command-execution
fields plus ``attributes.action`` (``create``), ``scheduleType``,
``scheduleId`` and ``links.schedule`` (``/vehicles/{vid}/charge-schedules/{sid}``).
Times are the vehicle's local wall-clock time in whole minutes (the docs give
``HH:MM`` and no zone), so an aware `datetime.time` is refused.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Mapping
from typing import Any, Final, TypeAlias

import attrs

from ._json_checks import Mismatch
from ._models import EMPTY_META, Meta
from ._v3_models import CommandResult, read_command

__all__ = [
    "WEEKDAYS",
    "ChargeWindow",
    "ScheduleResult",
    "WindowLike",
    "check_schedule_id",
    "daily_attributes",
    "read_schedule",
    "weekly_attributes",
    "workweek_attributes",
]

#: Weekday names as the wire keys them, Monday first (`datetime.date.weekday` order).
WEEKDAYS: Final = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
_HHMM: Final = re.compile(r"([01]\d|2[0-3]):([0-5]\d)")
_SCHEDULE_ID: Final = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.:~-]{0,255}")


def _to_time(value: object) -> dt.time:
    """``"HH:MM"`` or a naive `datetime.time` in whole minutes, as a `datetime.time`."""
    if isinstance(value, dt.time):
        if value.tzinfo is not None:
            raise ValueError("a charge schedule time is the vehicle's local time: give a naive one")
        if value.second or value.microsecond:
            raise ValueError(f"a charge schedule time is whole minutes, not {value.isoformat()}")
        return value
    if isinstance(value, str):
        match = _HHMM.fullmatch(value)
        if match is None:
            raise ValueError(f'a charge schedule time must be "HH:MM" (00:00..23:59): {value!r}')
        return dt.time(int(match[1]), int(match[2]))
    kind = type(value).__name__
    raise TypeError(f"a charge schedule time must be a datetime.time or str, not {kind}")


def _hhmm(value: dt.time) -> str:
    return f"{value.hour:02d}:{value.minute:02d}"


@attrs.frozen
class ChargeWindow:
    """When charging may run: from ``start`` to ``stop``, the vehicle's local time.

    Either may be a naive `datetime.time` in whole minutes or ``"HH:MM"``;
    both are kept as `datetime.time`. A window that ends before it starts
    runs overnight (``ChargeWindow("22:00", "06:00")``); an empty one
    (``start == stop``) is refused. Raises `ValueError` or `TypeError` at
    construction, before any request. Added in 0.2.0.
    """

    start: dt.time = attrs.field(converter=_to_time)
    stop: dt.time = attrs.field(converter=_to_time)

    def __attrs_post_init__(self) -> None:
        if self.start == self.stop:
            raise ValueError("a charge window must not start and stop at the same minute")

    def to_wire(self) -> dict[str, str]:
        """``{"startTime": "HH:MM", "stopTime": "HH:MM"}``."""
        return {"startTime": _hhmm(self.start), "stopTime": _hhmm(self.stop)}


#: A `ChargeWindow`, or a ``(start, stop)`` pair of times or ``"HH:MM"`` strings.
WindowLike: TypeAlias = ChargeWindow | tuple[dt.time | str, dt.time | str]


def _window(value: object, name: str) -> ChargeWindow:
    if isinstance(value, ChargeWindow):
        return value
    if isinstance(value, tuple) and len(value) == 2:
        return ChargeWindow(value[0], value[1])
    raise TypeError(f"{name} must be a ChargeWindow or a (start, stop) pair, not {value!r}")


def _weekday(key: object) -> str:
    if isinstance(key, str):
        name = key.lower()
        if name in WEEKDAYS:
            return name
        raise ValueError(f"a weekday must be an English day name such as 'monday', not {key!r}")
    if isinstance(key, int) and not isinstance(key, bool):
        if 0 <= key <= 6:
            return WEEKDAYS[key]
        raise ValueError(f"a weekday number must be 0 (Monday) to 6 (Sunday), not {key!r}")
    raise TypeError(f"a weekday must be a day name or 0..6, not {type(key).__name__}")


def _location(latitude: float, longitude: float) -> dict[str, Any]:
    return {"location": {"latitude": latitude, "longitude": longitude}}


def daily_attributes(window: ChargeWindow, latitude: float, longitude: float) -> dict[str, Any]:
    """The ``data.attributes`` of ``POST charge-schedules/daily`` (documented)."""
    return {**_location(latitude, longitude), **window.to_wire()}


def weekly_attributes(days: object, latitude: float, longitude: float) -> dict[str, Any]:
    """``data.attributes`` of ``POST charge-schedules/weekly`` (inner shape assumed)."""
    if not isinstance(days, Mapping):
        raise TypeError(f"days must be a mapping of weekday to window, not {type(days).__name__}")
    if not days:
        raise ValueError("days must name at least one weekday")
    chosen: dict[str, ChargeWindow] = {}
    for key, value in days.items():
        name = _weekday(key)
        if name in chosen:
            raise ValueError(f"days names {name!r} twice")
        chosen[name] = _window(value, f"days[{key!r}]")
    wire = {name: chosen[name].to_wire() for name in WEEKDAYS if name in chosen}
    return {**_location(latitude, longitude), "days": wire}


def workweek_attributes(
    weekdays: object, weekends: object, latitude: float, longitude: float
) -> dict[str, Any]:
    """``data.attributes`` of ``POST charge-schedules/workweek`` (inner shape assumed)."""
    if weekdays is None and weekends is None:
        raise ValueError("give weekdays, weekends or both")
    attributes = _location(latitude, longitude)
    if weekdays is not None:
        attributes["weekdays"] = _window(weekdays, "weekdays").to_wire()
    if weekends is not None:
        attributes["weekends"] = _window(weekends, "weekends").to_wire()
    return attributes


def check_schedule_id(schedule_id: object) -> str:
    """An id safe as one path segment: 1..256 of ``A-Za-z0-9_.:~-``, led by a letter or digit."""
    if not isinstance(schedule_id, str):
        raise TypeError(f"schedule_id must be a str, not {type(schedule_id).__name__}")
    if not _SCHEDULE_ID.fullmatch(schedule_id):
        raise ValueError("schedule_id must be a charge schedule id such as 'sched_abc123'")
    return schedule_id


@attrs.frozen
class ScheduleResult(CommandResult):
    """The answer to a v3 charge-schedule command; a `CommandResult` (so an `Action`).

    ``schedule_id`` is the schedule created (``attributes.scheduleId``, else
    the last segment of ``links.schedule``) or deleted; ``schedule_type`` is
    ``daily``, ``weekly`` or ``workweek`` when the answer says; ``action`` is
    ``create`` or ``delete``. Added in 0.2.0.
    """

    schedule_id: str | None = None
    schedule_type: str | None = None
    action: str | None = None


def _str_or_none(value: object) -> str | None:
    return value if type(value) is str and value else None


def read_schedule(
    status: int,
    body: object,
    meta: Meta = EMPTY_META,
    *,
    action: str,
    schedule_id: str | None = None,
) -> ScheduleResult:
    """A ``charge-schedule-execution`` document (or an empty answer) as a `ScheduleResult`.

    ``schedule_id`` and ``action`` fill in what the answer leaves out (a
    delete names the id it was sent).
    """
    base = read_command(status, body, meta)
    data = body.get("data") if type(body) is dict else None
    attributes = data.get("attributes") if type(data) is dict else None
    attributes = attributes if type(attributes) is dict else {}
    links = data.get("links") if type(data) is dict else None
    for key in ("scheduleId", "scheduleType", "action"):
        value = attributes.get(key)
        if value is not None and type(value) is not str:
            at = (("attr", "data"), ("attr", "attributes"), ("attr", key))
            raise Mismatch("a string", value, at)
    found = _str_or_none(attributes.get("scheduleId"))
    if found is None and type(links) is dict:
        link = _str_or_none(links.get("schedule"))
        if link is not None:
            found = _str_or_none(link.rstrip("/").rpartition("/")[2])
    fields = attrs.asdict(base, recurse=False)
    return ScheduleResult(
        **fields,
        schedule_id=found or schedule_id,
        schedule_type=_str_or_none(attributes.get("scheduleType")),
        action=_str_or_none(attributes.get("action")) or action,
    )
