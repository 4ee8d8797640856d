"""Argument checks that run before any request: bad input fails fast, with a clear message.

Every check of a caller's argument lives here, so one kind of value follows
one rule and one wording wherever the package takes it:

* an int (`check_int`): a bool is not one; a ValueError says the bounds;
* a duration: a *bound* (``timeout``, ``deadline``) is seconds > 0, or None
  for none (`check_bound`); one that must be given (a poll interval) is the
  same without None (`check_interval`); a *wait* where 0 means none
  (``batch_window``, ``retry_backoff``) is seconds >= 0 (`check_seconds`).
  All of them refuse NaN, infinity and ints too large for a float;
* text: a non-empty str (`check_str`), one of a few words (`check_choice`),
  a clock time (`check_hhmm`), a token that goes in a header (`check_token`).

A wrong type is a TypeError, a wrong value a ValueError. Messages name the
argument and what was wrong, and never echo a token.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import re
from collections.abc import Mapping, Sequence
from typing import Any, Final
from urllib.parse import quote

__all__ = [
    "check_bool",
    "check_bound",
    "check_charge_limit",
    "check_choice",
    "check_coordinates",
    "check_encodable",
    "check_hhmm",
    "check_int",
    "check_interval",
    "check_method",
    "check_request_path",
    "check_seconds",
    "check_segment",
    "check_str",
    "check_text",
    "check_token",
    "check_unit_system",
    "check_user_agent",
    "check_vehicle_id",
    "encode_body",
    "format_date",
    "format_flags",
    "format_segment",
]

UNIT_SYSTEMS = ("metric", "imperial")
_HHMM = "HH:mm"
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
    text = check_str(name, value)
    if text in (".", ".."):
        raise ValueError(f"{name} must not be '.' or '..': the URL would leave the vehicle")
    return check_encodable(name, text)


def check_encodable(name: str, text: str) -> str:
    """``text`` if it encodes as UTF-8, as every URL, header, HMAC key and store needs.

    A lone surrogate does not: encoding it later would fail mid-request, with
    an error that quotes the whole value (a token, say). This message does not.
    """
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError(f"{name} must be valid Unicode (it holds a lone surrogate)") from None
    return text


def check_vehicle_id(vehicle_id: object) -> str:
    return check_segment("vehicle_id", vehicle_id)


def format_segment(name: str, value: object) -> str:
    """An id that must be exactly one path segment (a webhook id), quoted for the URL."""
    text = check_segment(name, value)
    if "/" in text or any(ch.isspace() for ch in text):
        raise ValueError(f"{name} must be a single non-empty path segment")
    return quote(text, safe="")


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


def check_str(name: str, value: object, *, allow_empty: bool = False) -> str:
    """A str; unless ``allow_empty``, one with more than whitespace in it."""
    if not isinstance(value, str):
        raise TypeError(f"{name} must be a str, got {type(value).__name__}")
    if not allow_empty and not value.strip():
        raise ValueError(f"{name} must not be empty")
    return value


def check_text(value: object, name: str) -> str:
    """A non-empty line of text used as data, not sent as it is (an HMAC key, say)."""
    text = check_str(name, value)
    if "\r" in text or "\n" in text:
        raise ValueError(f"{name} must not contain line breaks")
    return check_encodable(name, text)


def check_choice(name: str, value: object, choices: Sequence[str], *, upper: bool) -> str:
    """One of ``choices`` in any case; returned upper- or lower-cased as the API wants it."""
    text = check_str(name, value, allow_empty=True)
    normal = text.upper() if upper else text.lower()
    if normal not in choices:
        raise ValueError(f"{name} must be one of {', '.join(choices)}; got {value!r}")
    return normal


def check_bool(name: str, value: object) -> bool:
    if not isinstance(value, bool):
        raise TypeError(f"{name} must be a bool, got {type(value).__name__}")
    return value


def check_hhmm(name: str, value: object) -> str:
    """A clock time as ``"HH:mm"``, the form Smartcar's charge schedules use."""
    if not isinstance(value, str):
        raise TypeError(f"{name} must be a {_HHMM} string")
    try:
        dt.time.fromisoformat(value)
    except ValueError:
        raise ValueError(f"{name} must be a {_HHMM} time, got {value!r}") from None
    if len(value) != 5:
        raise ValueError(f"{name} must be a {_HHMM} time, got {value!r}")
    return value


def check_user_agent(value: object) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise TypeError(f"user_agent must be a str, got {type(value).__name__}")
    if not value.isprintable():  # CR, LF, NUL, other controls: header injection
        raise ValueError("user_agent must not contain line breaks or control characters")
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
    seconds = _seconds(name, value, none)
    if not math.isfinite(seconds) or seconds <= 0:
        raise ValueError(f"{name} must be a finite number of seconds > 0{none}, got {value!r}")
    return seconds


def check_interval(name: str, value: object) -> float:
    """A duration that must be given: the rule of `check_bound`, without None."""
    seconds = check_bound(name, value, optional=False)
    assert seconds is not None
    return seconds


def check_seconds(name: str, value: object) -> float:
    """A wait where 0 means none: a finite number of seconds >= 0."""
    seconds = _seconds(name, value)
    if not math.isfinite(seconds) or seconds < 0:
        raise ValueError(f"{name} must be a finite number >= 0, got {value!r}")
    return seconds


def _seconds(name: str, value: object, none: str = "") -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TypeError(f"{name} must be a number of seconds{none}, got {type(value).__name__}")
    try:
        return float(value)
    except OverflowError:  # an int too large for a float
        raise ValueError(f"{name} is too large") from None


def check_unit_system(unit_system: object) -> str:
    if unit_system not in UNIT_SYSTEMS:
        raise ValueError(f"unit_system must be 'metric' or 'imperial', got {unit_system!r}")
    assert isinstance(unit_system, str)
    return unit_system


def format_flags(flags: Mapping[str, str | bool | int | float] | None) -> str | None:
    """Smartcar's flag syntax: ``name:value`` pairs, space separated, booleans lower-cased."""
    if flags is None:
        return None
    if not isinstance(flags, Mapping):
        raise TypeError(f"flags must be a mapping of name to value, got {type(flags).__name__}")
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


def check_int(name: str, value: object, *, minimum: int = 0, maximum: int | None = None) -> int:
    """An int (not a bool) within ``minimum`` and ``maximum`` (None: no upper bound)."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be an int, got {type(value).__name__}")
    if value < minimum or (maximum is not None and value > maximum):
        bounds = f"between {minimum} and {maximum}" if maximum is not None else f">= {minimum}"
        raise ValueError(f"{name} must be {bounds}, got {value}")
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


# Segments of letters, digits, "_" and "-", with at most one slash each end.
_PLAIN_PATH: Final = re.compile(r"/?[A-Za-z0-9_-]+(?:/[A-Za-z0-9_-]+)*/?")


def check_request_path(path: object) -> str:
    """A path relative to ``/vehicles/{id}``; returns it with one leading slash.

    Rejected: absolute URLs, a query or fragment (use ``params=``), ``.`` or
    ``..`` segments (also percent-encoded), backslashes, whitespace and
    control characters: anything that could make the request leave the vehicle.
    """
    if not isinstance(path, str):
        raise TypeError(f"path must be a str, got {type(path).__name__}")
    if _PLAIN_PATH.fullmatch(path):
        # Every endpoint's path: nothing below can refuse it (no dot, no
        # escape, no empty segment), and a batch checks five of them.
        return "/" + path.strip("/")
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


def encode_body(body: Any) -> Any:
    """A request body as the JSON bytes to send (bytes pass as they are; None is none).

    Encoded here, before anything is queued, so that what cannot be JSON fails
    in the caller: NaN and infinity (which would go out as the invalid
    ``NaN``), nesting too deep to encode, and values JSON has no form for.
    """
    if body is None or isinstance(body, bytes):
        return body
    try:
        return json.dumps(body, separators=(",", ":"), allow_nan=False).encode()
    except RecursionError:
        raise ValueError("body nests too deeply to be sent as JSON") from None
    except ValueError as exc:  # NaN or infinity, or a circular reference
        raise ValueError(f"body cannot be sent as JSON: {exc}") from None


def format_date(name: str, value: dt.date | dt.datetime | str | None) -> str | None:
    """ISO-8601 for the service-history filters; datetimes become UTC."""
    if value is None:
        return None
    if isinstance(value, dt.datetime):
        if value.tzinfo is not None:
            try:
                value = value.astimezone(dt.UTC)
            except OverflowError:  # within a day of datetime.min or max, shifted past it
                raise ValueError(f"{name} is out of range once converted to UTC") from None
        return value.replace(tzinfo=None).isoformat(timespec="milliseconds") + "Z"
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, str):
        try:
            # All of it: it is sent as given.
            if len(value) == 10:
                dt.date.fromisoformat(value)
            else:
                dt.datetime.fromisoformat(value)
        except ValueError:
            raise ValueError(f"{name} must be an ISO-8601 date, got {value!r}") from None
        return value
    raise TypeError(f"{name} must be a date, datetime or ISO-8601 string")
