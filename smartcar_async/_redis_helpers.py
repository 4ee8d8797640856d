"""Small pure helpers of the Redis store: argument checks, reply decoding, record JSON.

Private to :mod:`smartcar_async.redis`; nothing here talks to Redis.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import urllib.parse
from typing import TYPE_CHECKING, Final

from ._state import ParkedRead, VehicleRecord

if TYPE_CHECKING:
    import redis.asyncio as aioredis

_US: Final = 1_000_000
#: Gates and leases longer than this are refused: a day, as MAX_RETRY_AFTER.
_MAX_SECONDS: Final = 86_400.0


def _spilled_credentials(url: str) -> bool:
    """Whether credentials run past the netloc: an unencoded "/", "?" or "#" in a password.

    The URL parser then ends the netloc inside the password, taking its start
    for the port and its rest for the path, query or fragment; no part of the
    URL can be shown, nor trusted as the host to connect to.
    """
    try:
        parts = urllib.parse.urlsplit(url)
    except ValueError:
        return False
    return "@" in parts.path or "@" in parts.query or "@" in parts.fragment


def _describe_url(url: str) -> str:
    """The URL without its credentials or query (a password may be in either)."""
    try:
        parts = urllib.parse.urlsplit(url)
    except ValueError:
        return "<a malformed URL>"
    if _spilled_credentials(url):
        return f"{parts.scheme}://<credentials not shown>"
    host = parts.hostname or ""
    try:
        port = f":{parts.port}" if parts.port is not None else ""
    except ValueError:
        port = ""
    return f"{parts.scheme}://{host}{port}{parts.path}"


def _describe_client(client: aioredis.Redis) -> str:
    kwargs = client.connection_pool.connection_kwargs
    if kwargs.get("path"):
        return f"unix://{kwargs['path']}"
    host, port, db = kwargs.get("host", "localhost"), kwargs.get("port", 6379), kwargs.get("db", 0)
    return f"redis://{host}:{port}/{db}"


def _reason(exc: BaseException) -> str:
    text = str(exc).strip()
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def _text(value: object) -> str:
    if isinstance(value, bytes):
        return value.decode("utf-8")
    if isinstance(value, str):
        return value
    raise TypeError(f"expected text from Redis, got {type(value).__name__}")


def _seconds(value: object) -> float:
    """Microseconds from a script (a string, or an integer reply) as seconds."""
    if isinstance(value, int) and not isinstance(value, bool):
        return value / _US
    return int(_text(value)) / _US


def _nonempty(name: str, value: object) -> str:
    if not isinstance(value, str):
        raise TypeError(f"{name} must be a str, not {type(value).__name__}")
    if not value:
        raise ValueError(f"{name} must not be empty")
    return value


def _finite(name: str, value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TypeError(f"{name} must be a number of seconds, not {type(value).__name__}")
    try:
        seconds = float(value)
    except OverflowError:
        raise ValueError(f"{name} must be finite") from None
    if not math.isfinite(seconds):
        raise ValueError(f"{name} must be finite, not {seconds}")
    return seconds


def _duration_us(name: str, value: object, *, allow_zero: bool = False) -> int:
    seconds = _finite(name, value)
    if seconds < 0 or (seconds == 0 and not allow_zero):
        raise ValueError(f"{name} must be {'>= 0' if allow_zero else '> 0'}, not {seconds}")
    if seconds > _MAX_SECONDS:
        raise ValueError(f"{name} must be at most {_MAX_SECONDS:g} s (a day), not {seconds}")
    return math.ceil(seconds * _US)


def _epoch_us(name: str, value: object) -> int:
    seconds = _finite(name, value)
    if not 0 <= seconds < 2**53 / _US:
        raise ValueError(f"{name} must be epoch seconds, not {seconds}")
    return round(seconds * _US)


def _time_text(value: dt.datetime) -> str:
    return value.astimezone(dt.UTC).isoformat()


def _parse_time(value: str) -> dt.datetime:
    parsed = dt.datetime.fromisoformat(value)
    if parsed.utcoffset() is None:
        raise ValueError("a stored time has no time zone")
    return parsed


def _record_text(record: VehicleRecord) -> str:
    return json.dumps(
        {
            "next_due": record.next_due,
            "blocked_until": record.blocked_until,
            "failures": record.failures,
            "parked": {
                read: [p.reason, p.until, p.fingerprint] for read, p in record.parked.items()
            },
        },
        separators=(",", ":"),
        allow_nan=False,
    )


def _refuse_constant(name: str) -> object:
    raise ValueError(f"{name} is not a valid number")


_DECODER: Final = json.JSONDecoder(parse_constant=_refuse_constant)


def _parse_record(text: str) -> VehicleRecord:
    data = _DECODER.decode(text)
    if not isinstance(data, dict):
        raise TypeError("not a JSON object")
    parked = data["parked"]
    if not isinstance(parked, dict):
        raise TypeError("parked reads are not a JSON object")
    reads: dict[str, ParkedRead] = {}
    for read, entry in parked.items():
        if not isinstance(entry, list) or len(entry) != 3:
            raise TypeError(f"parked read {read!r} is not [reason, until, fingerprint]")
        reason, until, fingerprint = entry
        reads[read] = ParkedRead(reason=reason, until=until, fingerprint=fingerprint)
    return VehicleRecord(
        next_due=data["next_due"],
        blocked_until=data["blocked_until"],
        failures=data["failures"],
        parked=reads,
    )
