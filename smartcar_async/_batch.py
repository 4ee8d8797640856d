"""The batch wire format: the request body we send and the envelope we read back."""

from __future__ import annotations

import functools
import json
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from ._coalescer import Answer, RawItem
from ._endpoints import normalize_path
from ._exceptions import InvalidResponseError, SmartcarError

__all__ = ["BatchResponse", "batch_body", "parse_batch_envelope"]


def batch_body(paths: Sequence[str]) -> dict[str, list[dict[str, str]]]:
    return {"requests": [{"path": path} for path in paths]}


@functools.lru_cache(maxsize=1024)
def _path_json(path: str) -> bytes:
    return json.dumps({"path": path}, separators=(",", ":")).encode()


def batch_bytes(paths: Sequence[str]) -> bytes:
    """`batch_body` already encoded, from cached per-path fragments."""
    return b'{"requests":[' + b",".join([_path_json(p) for p in paths]) + b"]}"


def parse_batch_envelope(body: Any, request_id: str | None) -> Answer:
    """Check the 200 envelope's shape and key its items by normalised path.

    Items are matched by ``path`` and never by position: Smartcar does not
    document the order. When a path is answered twice, the first answer wins.
    """
    if not isinstance(body, dict) or not isinstance(body.get("responses"), list):
        raise InvalidResponseError(
            "The batch response has no 'responses' list", field="responses", request_id=request_id
        )
    items: dict[str, RawItem] = {}
    for index, raw in enumerate(body["responses"]):
        where = f"responses[{index}]"
        if not isinstance(raw, dict):
            raise InvalidResponseError(
                f"Batch item {where} is not an object", field=where, request_id=request_id
            )
        path, code = raw.get("path"), raw.get("code")
        if not isinstance(path, str):
            raise InvalidResponseError(
                f"Batch item {where} has no string 'path'",
                field=f"{where}.path",
                request_id=request_id,
            )
        if not isinstance(code, int) or isinstance(code, bool):
            raise InvalidResponseError(
                f"Batch item {where} has no integer 'code'",
                field=f"{where}.code",
                request_id=request_id,
            )
        headers = raw.get("headers")
        items.setdefault(
            normalize_path(path),
            RawItem(code, raw.get("body"), headers if isinstance(headers, dict) else {}),
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

    Added in 0.1.0.
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
