"""Batch request validation (reference §4).

A batch is rejected whole (400 VALIDATION with Joi-style ``detail``) when its
body is malformed or any path is unknown or not a GET endpoint; otherwise
every item is served on its own and fails on its own. Duplicate paths are
served (and counted) once per occurrence. There is no maximum batch size,
since Smartcar documents none.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from types import MappingProxyType
from typing import Any, Final
from urllib.parse import parse_qsl

import attrs

from ._endpoint import Endpoint
from ._errors import ApiError
from ._faults import normalize_path
from ._routes import resolve, resolve_miscased_make


@attrs.frozen
class BatchItem:
    path: str
    """As echoed back: the requested path with a leading slash (query string kept)."""
    key: str
    """Normalised path without query string, used to match injected faults."""
    endpoint: Endpoint
    param: str | None
    query: Mapping[str, str]
    """Read-only: one parsed item serves every batch that asks for the same path."""
    miscased_make: bool


def _detail(field: list[str | int], message: str) -> dict[str, Any]:
    return {"field": field, "message": message}


def _invalid(details: list[dict[str, Any]]) -> ApiError:
    return ApiError("VALIDATION", detail=details)


def parse_batch(body: Any, valid_json: bool) -> list[BatchItem]:
    """The batch's items in request order, or a 400 VALIDATION ApiError."""
    if not valid_json:
        raise _invalid([_detail([], "Request body must be valid JSON")])
    if not isinstance(body, dict):
        raise _invalid([_detail([], '"value" must be of type object')])
    details = [_detail([key], f'"{key}" is not allowed') for key in body if key != "requests"]
    if "requests" not in body:
        raise _invalid([_detail(["requests"], '"requests" is required'), *details])
    if details:
        raise _invalid(details)
    requests = body["requests"]
    if not isinstance(requests, list):
        raise _invalid([_detail(["requests"], '"requests" must be an array')])
    if not requests:
        raise _invalid([_detail(["requests"], '"requests" must contain at least 1 items')])
    items: list[BatchItem] = []
    for index, entry in enumerate(requests):
        name = f"requests[{index}]"
        if not isinstance(entry, dict):
            raise _invalid([_detail(["requests", index], f'"{name}" must be of type object')])
        extra = [k for k in entry if k != "path"]
        if extra:
            raise _invalid(
                [_detail(["requests", index, k], f'"{name}.{k}" is not allowed') for k in extra]
            )
        raw = entry.get("path")
        where: list[str | int] = ["requests", index, "path"]
        if raw is None:
            raise _invalid([_detail(where, f'"{name}.path" is required')])
        if not isinstance(raw, str):
            raise _invalid([_detail(where, f'"{name}.path" must be a string')])
        items.append(_item(raw, where, name))
    return items


def _item(raw: str, where: list[str | int], name: str) -> BatchItem:
    parsed = _parse_item(raw)
    if isinstance(parsed, BatchItem):
        return parsed
    raise _invalid([_detail(where, f'"{name}.path" {parsed}')])


_EMPTY_QUERY: Final[Mapping[str, str]] = MappingProxyType({})


@functools.lru_cache(maxsize=1024)
def _parse_item(raw: str) -> BatchItem | str:
    """The item for a requested path, or why it is refused (the message after the field).

    Cached by the path as sent: a fleet asks for the same handful of paths in
    every batch, and parsing them was a fifth of serving one.
    """
    echoed = raw if raw.startswith("/") else "/" + raw
    bare, _, query = echoed.partition("?")
    key = normalize_path(bare)
    endpoint, param = resolve("GET", key)
    miscased = False
    if endpoint is None:
        endpoint = resolve_miscased_make("GET", key)
        miscased = endpoint is not None
    if endpoint is None:
        if any(resolve(m, key)[0] is not None for m in ("POST", "PUT", "DELETE")):
            return f'must be a GET endpoint: "{key}" cannot be batched'
        return f'must be a valid Smartcar API path: "{key}" is unknown'
    return BatchItem(
        path=echoed,
        key=key,
        endpoint=endpoint,
        param=param,
        query=MappingProxyType(dict(parse_qsl(query, keep_blank_values=True)))
        if query
        else _EMPTY_QUERY,
        miscased_make=miscased,
    )
