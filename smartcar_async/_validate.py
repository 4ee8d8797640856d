"""Argument checks that run before any request: bad input fails fast, with a clear message.

Messages never echo a token: they name the argument and what was wrong.
"""

from __future__ import annotations

import datetime as dt
import math
import re
from collections.abc import Mapping

__all__ = [
    "check_bound",
    "check_charge_limit",
    "check_coordinates",
    "check_int",
    "check_method",
    "check_request_path",
    "check_segment",
    "check_text",
    "check_token",
    "check_unit_system",
    "check_vehicle_id",
    "format_date",
    "format_flags",
]

UNIT_SYSTEMS = ("metric", "imperial")
METHODS = frozenset({"GET", "POST", "PUT", "PATCH", "DELETE"})
_FLAG_NAME = re.compile(r"^[A-Za-z0-9_.\-]+$")
# Percent-encoded dots or slashes would let a path climb out of the vehicle
# after the server decodes it.
_ENCODED_ESCAPE = re.compile(r"%(2e|2f|5c)", re.IGNORECASE)


def check_segment(name: str, value: object) -> str:
    """An id that is sent quoted as one URL path segment.

    Quoting keeps slashes and the like inside the segment, but ``.`` and
    ``..`` survive it and the URL resolves them away: ``/vehicles/../batch``
    is ``/batch``, so they are refused.
    """
    if not isinstance(value, str):
        raise TypeError(f"{name} must be a str, got {type(value).__name__}")
    if not value.strip():
        raise ValueError(f"{name} must not be empty")
    if value in (".", ".."):
        raise ValueError(f"{name} must not be '.' or '..': the URL would leave the vehicle")
    return value


def check_vehicle_id(vehicle_id: object) -> str:
    return check_segment("vehicle_id", vehicle_id)


def check_token(token: object, name: str = "access_token") -> str:
    if not isinstance(token, str):
        raise TypeError(f"{name} must be a str, got {type(token).__name__}")
    if not token.strip():
        raise ValueError(f"{name} must not be empty")
    # It goes into a header: a line break would split it, and aiohttp refuses
    # other control characters with a bare ValueError mid-request.
    if not token.isprintable():
        raise ValueError(f"{name} must not contain line breaks or control characters")
    return token


def check_text(value: object, name: str) -> str:
    """A non-empty line of text used as data, not sent as it is (an HMAC key, say)."""
    if not isinstance(value, str):
        raise TypeError(f"{name} must be a str, got {type(value).__name__}")
    if not value.strip():
        raise ValueError(f"{name} must not be empty")
    if "\r" in value or "\n" in value:
        raise ValueError(f"{name} must not contain line breaks")
    return value


def check_bound(name: str, value: object, *, optional: bool = True) -> float | None:
    """A time bound (``timeout``, ``deadline`` and the like): seconds > 0, or None for none.

    The one rule for every bound the package takes: 0, negatives, NaN and
    infinity are a ValueError (0 does not mean "no limit": say None), a
    non-number a TypeError. ``optional=False`` is for durations that must be
    given (a poll interval): None is a TypeError there.
    """
    none = " or None" if optional else ""
    if value is None and optional:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TypeError(f"{name} must be a number of seconds{none}, got {type(value).__name__}")
    try:
        seconds = float(value)
    except OverflowError:  # an int too large for a float
        raise ValueError(f"{name} is too large") from None
    if not math.isfinite(seconds) or seconds <= 0:
        raise ValueError(f"{name} must be a finite number of seconds > 0{none}, got {value!r}")
    return seconds


def check_unit_system(unit_system: object) -> str:
    if unit_system not in UNIT_SYSTEMS:
        raise ValueError(f"unit_system must be 'metric' or 'imperial', got {unit_system!r}")
    assert isinstance(unit_system, str)
    return unit_system


def format_flags(flags: Mapping[str, str | bool | int | float] | None) -> str | None:
    """Smartcar's flag syntax: ``name:value`` pairs, space separated, booleans lower-cased."""
    if not flags:
        return None
    parts = []
    for name, value in flags.items():
        if not isinstance(name, str) or not _FLAG_NAME.match(name):
            raise ValueError(f"invalid flag name {name!r}")
        text = str(value).lower() if isinstance(value, bool) else str(value)
        if not text or any(ch.isspace() or ch == ":" for ch in text):
            raise ValueError(f"invalid value for flag {name!r}: {value!r}")
        parts.append(f"{name}:{text}")
    return " ".join(parts)


def _number(name: str, value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TypeError(f"{name} must be a number, got {type(value).__name__}")
    try:
        number = float(value)
    except OverflowError:  # an int past a float's range
        raise ValueError(f"{name} must be finite, got an int too large for a float") from None
    if not math.isfinite(number):
        raise ValueError(f"{name} must be finite, got {value!r}")
    return number


def check_int(name: str, value: object, *, minimum: int = 0) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be an int, got {type(value).__name__}")
    if value < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {value}")
    return value


def check_charge_limit(limit: object) -> float:
    number = _number("limit", limit)
    if not 0.5 <= number <= 1.0:
        raise ValueError(f"charge limit must be between 0.5 and 1.0 (a fraction), got {limit!r}")
    return number


def check_coordinates(latitude: object, longitude: object) -> tuple[float, float]:
    lat = _number("latitude", latitude)
    lon = _number("longitude", longitude)
    if not -90.0 <= lat <= 90.0:
        raise ValueError(f"latitude must be between -90 and 90, got {latitude!r}")
    if not -180.0 <= lon <= 180.0:
        raise ValueError(f"longitude must be between -180 and 180, got {longitude!r}")
    return lat, lon


def check_method(method: object) -> str:
    if not isinstance(method, str) or method.upper() not in METHODS:
        raise ValueError(f"method must be one of {sorted(METHODS)}, got {method!r}")
    return method.upper()


def check_request_path(path: object) -> str:
    """A path relative to ``/vehicles/{id}``; returns it with one leading slash.

    Rejected: absolute URLs, a query or fragment (use ``params=``), ``.`` or
    ``..`` segments (also percent-encoded), backslashes, whitespace and
    control characters: anything that could make the request leave the vehicle.
    """
    if not isinstance(path, str):
        raise TypeError(f"path must be a str, got {type(path).__name__}")
    if "://" in path or path.startswith("//"):
        raise ValueError("path must be relative to the vehicle, not an absolute URL")
    if "?" in path or "#" in path:
        raise ValueError("path must not contain a query or fragment; pass params= instead")
    if "\\" in path or any(ch.isspace() or ord(ch) < 0x20 or ord(ch) == 0x7F for ch in path):
        raise ValueError("path must not contain backslashes, whitespace or control characters")
    if _ENCODED_ESCAPE.search(path):
        raise ValueError("path must not contain percent-encoded dots or slashes")
    segments = path.strip("/").split("/")
    if any(seg in (".", "..") for seg in segments):
        raise ValueError("path must not contain '.' or '..' segments")
    if any(seg == "" for seg in segments[1:]) or (segments[0] == "" and len(segments) > 1):
        raise ValueError("path must not contain empty segments")
    return "/" + "/".join(segments) if segments != [""] else "/"


def format_date(name: str, value: dt.date | dt.datetime | str | None) -> str | None:
    """ISO-8601 for the service-history filters; datetimes become UTC."""
    if value is None:
        return None
    if isinstance(value, dt.datetime):
        if value.tzinfo is not None:
            value = value.astimezone(dt.UTC)
        return value.replace(tzinfo=None).isoformat(timespec="milliseconds") + "Z"
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, str):
        try:
            dt.date.fromisoformat(value[:10])
        except ValueError:
            raise ValueError(f"{name} must be an ISO-8601 date, got {value!r}") from None
        return value
    raise TypeError(f"{name} must be a date, datetime or ISO-8601 string")
