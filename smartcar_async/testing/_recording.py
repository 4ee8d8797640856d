"""The request log and the error tally: what clients sent and which errors they got, for tests."""

from __future__ import annotations

import threading
from collections import Counter, deque
from collections.abc import Iterable
from typing import Any

import attrs


class CaseInsensitiveDict(dict[str, str]):
    """A snapshot of request headers: a plain dict whose lookups ignore case."""

    __slots__ = ("_lower",)

    def __init__(self, items: Iterable[tuple[str, str]] = ()) -> None:
        super().__init__(items)
        self._lower = {key.lower(): key for key in self}

    def __getitem__(self, key: str) -> str:
        return super().__getitem__(self._lower.get(key.lower(), key))

    def __contains__(self, key: object) -> bool:
        return isinstance(key, str) and key.lower() in self._lower

    def get(self, key: str, default: Any = None) -> Any:
        original = self._lower.get(key.lower())
        return default if original is None else super().__getitem__(original)


@attrs.frozen
class RecordedRequest:
    """One HTTP request as the emulator received it.

    ``path`` has no query string (that is in ``query``); ``headers`` looks up
    case-insensitively; ``body`` is the parsed JSON (or form fields for the
    OAuth endpoint), None when absent or unparseable; ``raw_body`` is the bytes.

    Added in 0.1.0.
    """

    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: Any
    raw_body: bytes


class RequestLog:
    """Bounded FIFO of recorded requests (oldest dropped first)."""

    def __init__(self, maxlen: int) -> None:
        if maxlen < 0:
            raise ValueError("max_recorded must be >= 0")
        self._items: deque[RecordedRequest] = deque(maxlen=maxlen)

    def append(self, item: RecordedRequest) -> None:
        self._items.append(item)

    def snapshot(self) -> list[RecordedRequest]:
        # list(deque) runs in C under the GIL, so it is safe against the server thread.
        return list(self._items)

    def clear(self) -> None:
        self._items.clear()

    @property
    def enabled(self) -> bool:
        return self._items.maxlen != 0


class ErrorTally:
    """Error responses by status and code ("429 RATE_LIMIT:SMARTCAR_API"), unbounded.

    Unlike the request log it never drops an entry, so a test can assert "none of
    these" over a long run; readable from a test thread while serving.
    """

    def __init__(self) -> None:
        self._counts: Counter[str] = Counter()
        self._lock = threading.Lock()

    def count(self, status: int, payload: Any) -> None:
        key = f"{status} {_error_code(payload)}".rstrip()
        with self._lock:
            self._counts[key] += 1

    def snapshot(self) -> dict[str, int]:
        with self._lock:
            return dict(self._counts)

    def clear(self) -> None:
        with self._lock:
            self._counts.clear()


def _error_code(payload: Any) -> str:
    """``TYPE:CODE`` of a v2 or v3 error body, an OAuth ``error``, or "" for anything else."""
    if isinstance(payload, dict):
        errors = payload.get("errors")
        if isinstance(errors, list) and errors and isinstance(errors[0], dict):
            payload = errors[0]
        kind, code = payload.get("type"), payload.get("code")
        if isinstance(kind, str):
            return kind if code is None else f"{kind}:{code}"
        error = payload.get("error")
        if isinstance(error, str):
            return error
    return ""
