"""The JSON codec of the hot path: orjson when it is importable, the standard library otherwise.

Both give the same results, byte for byte and exception for exception, because the
standard library is the reference and orjson only ever answers where it provably agrees:

- `loads`: orjson parses; on any failure the standard library parses the same input
  again and its value or exception is the answer. So NaN, Infinity and 1e400 (which
  orjson refuses) still come out as the floats `check_json` rejects, bad UTF-8 still
  raises UnicodeDecodeError, a BOM or UTF-16 body is read as before, and nesting
  past the parser's reach is still a RecursionError. Two inputs orjson would read
  differently go to the standard library first: a digit run of 19 or more (orjson
  turns an int past 64 bits into a float) and a body with more than
  `_DEEP_OPENERS` brackets (orjson reads 1,023 levels; the standard library's limit
  depends on the stack, so only it may decide near its edge).
- `dumps` returns exactly ``json.dumps(obj, separators=(",", ":")).encode()``: ASCII
  only, NaN as ``NaN``. orjson's output is kept only when it is printable ASCII (else a
  string held DEL or a non-ASCII character, which the standard library escapes), holds no ``null``
  (orjson writes NaN and Infinity so), and has no number that Python's repr could
  spell otherwise: an exponent, ``0.0000`` or 17 digits before a point. Anything orjson
  does not take as plain JSON (a subclass, a non-str key, an int past 64 bits, a
  datetime, a dataclass) fails there and goes to the standard library.

``SMARTCAR_ASYNC_JSON=stdlib`` (read at import) keeps orjson out even when it is
installed, ``=orjson`` insists on it; the benchmarks compare the two this way.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from types import ModuleType
from typing import Any, Final

__all__ = ["BACKEND", "dumps", "loads", "orjson_dumps", "orjson_loads", "stdlib_dumps"]

_DEEP_OPENERS: Final = 512
"""More ``[`` and ``{`` than this, and the standard library alone decides (see above)."""
# Digits all read as "0", so one find() spots a digit run or a digit before "e".
_DIGITS: Final = bytes.maketrans(b"123456789", b"000000000")
_BIG_INT: Final = b"0" * 19  # 2**63 has 19 digits: shorter ints are within orjson's reach
_LONG_NUMBER: Final = b"0" * 17 + b"."  # a float of 1e16 or more: repr writes an exponent

_stdlib_loads: Final = json.loads


def stdlib_dumps(obj: Any) -> bytes:
    """The reference: what every call site wrote before orjson was an option."""
    return json.dumps(obj, separators=(",", ":")).encode()


def _import_orjson() -> ModuleType | None:
    choice = os.environ.get("SMARTCAR_ASYNC_JSON", "").strip().lower()
    if choice == "stdlib":
        return None
    if choice not in ("", "auto", "orjson"):
        raise ValueError(f"SMARTCAR_ASYNC_JSON must be stdlib, orjson or auto, not {choice!r}")
    try:
        import orjson
    except ImportError:
        if choice == "orjson":
            raise ImportError(
                "SMARTCAR_ASYNC_JSON=orjson, but orjson is not installed: "
                "pip install 'smartcar-async[speedups]'"
            ) from None
        return None
    module: ModuleType = orjson  # typed even where mypy runs without orjson installed
    return module


_orjson: Final = _import_orjson()


def _make_orjson_codec(
    orjson: ModuleType,
) -> tuple[Callable[[bytes | str], Any], Callable[[Any], bytes]]:
    decode_error = orjson.JSONDecodeError
    encode_error = orjson.JSONEncodeError
    fast_loads = orjson.loads
    fast_dumps = orjson.dumps
    # Subclasses, datetimes and dataclasses fail in orjson, so the stdlib decides them.
    options = (
        orjson.OPT_PASSTHROUGH_SUBCLASS
        | orjson.OPT_PASSTHROUGH_DATETIME
        | orjson.OPT_PASSTHROUGH_DATACLASS
    )

    def loads(data: bytes | str) -> Any:
        raw = data
        if type(raw) is not bytes:
            if not isinstance(raw, str):
                return _stdlib_loads(data)
            try:
                raw = raw.encode()
            except UnicodeEncodeError:  # a lone surrogate: the stdlib reads it
                return _stdlib_loads(data)
        if _BIG_INT in raw.translate(_DIGITS) or (
            len(raw) > 2 * _DEEP_OPENERS and raw.count(b"[") + raw.count(b"{") > _DEEP_OPENERS
        ):
            return _stdlib_loads(data)
        try:
            return fast_loads(raw)
        except decode_error:
            return _stdlib_loads(data)

    def dumps(obj: Any) -> bytes:
        try:
            out: bytes = fast_dumps(obj, option=options)
        except encode_error:
            return stdlib_dumps(obj)
        if out.isascii() and b"null" not in out and b"\x7f" not in out:
            shape = out.translate(_DIGITS)
            if b"0e" not in shape and _LONG_NUMBER not in shape and b"0.0000" not in out:
                return out
        return stdlib_dumps(obj)

    return loads, dumps


orjson_loads: Callable[[bytes | str], Any] | None = None
orjson_dumps: Callable[[Any], bytes] | None = None
if _orjson is not None:
    orjson_loads, orjson_dumps = _make_orjson_codec(_orjson)

BACKEND: Final = "orjson" if _orjson is not None else "stdlib"
"""Which codec `loads` and `dumps` use in this process."""

loads: Callable[[bytes | str], Any] = orjson_loads or _stdlib_loads
"""``json.loads``: a value, or the exception the standard library raises."""
dumps: Callable[[Any], bytes] = orjson_dumps or stdlib_dumps
"""``json.dumps(obj, separators=(",", ":")).encode()``."""
