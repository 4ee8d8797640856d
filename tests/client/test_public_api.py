"""The public surface: exports, module names, and the transport error table."""

from __future__ import annotations
import __future__

import asyncio
import inspect
import re
import types
from typing import Any

import aiohttp
import pytest
from aiohttp.client_reqrep import ConnectionKey

import smartcar_async as sc
from smartcar_async._transport import map_transport_error


def _natural(name: str) -> list[Any]:
    return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", name)]


def _isort_style(name: str) -> tuple[int, list[Any]]:
    # ruff's RUF022 (selected by this project): SCREAMING_SNAKE_CASE first, then
    # CamelCase, then anything else; a natural sort within each group.
    if len(name) > 1 and name.isupper():
        return (0, _natural(name))
    if name[:1].isupper():
        return (1, _natural(name))
    return (2, _natural(name))


def test_all_is_sorted_and_complete() -> None:
    exported = list(sc.__all__)
    # Plain sorting, or the isort-style order the project's linter enforces.
    assert exported in (sorted(exported), sorted(exported, key=_isort_style))
    assert len(set(exported)) == len(exported)
    public = {
        name
        for name, value in vars(sc).items()
        if not name.startswith("_")
        and not isinstance(value, types.ModuleType)
        and not isinstance(value, __future__._Feature)
    }
    assert public == set(exported) - {"__version__"}
    for name in exported:
        assert hasattr(sc, name), name
    assert isinstance(sc.__version__, str)
    assert sc.__version__


def test_public_classes_live_in_the_package() -> None:
    wrong = [
        f"{name}: {value.__module__}"
        for name in sc.__all__
        if isinstance(value := getattr(sc, name), type) and value.__module__ != "smartcar_async"
    ]
    assert wrong == []


def test_sqlite_state_has_the_state_store_protocol_signatures() -> None:
    members = [
        name
        for name in vars(sc.StateStore)
        if not name.startswith("_") or name in ("__aenter__", "__aexit__")
    ]
    assert set(members) >= {"load_tokens", "save_tokens", "load_vehicles", "save_vehicles"}
    for name in members:
        if not callable(getattr(sc.StateStore, name)):
            continue
        protocol = inspect.signature(getattr(sc.StateStore, name))
        concrete = inspect.signature(getattr(sc.SQLiteState, name))
        assert list(concrete.parameters) == list(protocol.parameters), name
        assert [p.kind for p in concrete.parameters.values()] == [
            p.kind for p in protocol.parameters.values()
        ], name
        assert inspect.iscoroutinefunction(getattr(sc.SQLiteState, name)), name
    assert isinstance(sc.SQLiteState("unused.db"), sc.StateStore)


def test_every_error_is_a_smartcar_error() -> None:
    errors = [v for v in vars(sc).values() if isinstance(v, type) and issubclass(v, Exception)]
    assert len(errors) >= 18
    assert all(issubclass(e, sc.SmartcarError) for e in errors)


def _walk(cls: type[BaseException]) -> list[type[BaseException]]:
    found: list[type[BaseException]] = []
    for sub in cls.__subclasses__():
        if sub not in found:
            found.append(sub)
        found.extend(s for s in _walk(sub) if s not in found)
    return found


_KEY = ConnectionKey("api.example", 443, True, True, None, None, None)


def _instance(cls: type[BaseException]) -> Any:
    """A realistic instance of an aiohttp exception class (each has its own signature)."""
    params = list(inspect.signature(cls.__init__).parameters)[1:]
    os_error = ConnectionRefusedError(111, "Connection refused")
    factory: Any = cls
    if "request_info" in params:
        return factory(None, (), status=502, message="Bad Gateway")
    if params[:1] == ["path"]:
        return factory("/tmp/api.sock", _KEY, os_error)
    if "certificate_error" in params:
        return factory(_KEY, ValueError("self-signed certificate"))
    if "connection_key" in params:
        return factory(_KEY, os_error)
    if "expected" in params:
        return factory(b"\x00" * 32, b"\x01" * 32, "api.example", 443)
    if "url" in params:
        return factory("http:///nowhere", "no host")
    return factory("Connection lost")


TRANSPORT_FAILURES = [*_walk(aiohttp.ClientError), asyncio.TimeoutError, TimeoutError]


@pytest.mark.parametrize("cls", TRANSPORT_FAILURES, ids=lambda c: c.__name__)
def test_every_transport_failure_is_mapped(cls: type[BaseException]) -> None:
    exc = _instance(cls)
    assert isinstance(exc, cls)
    mapped = map_transport_error(exc)
    assert isinstance(mapped, sc.TransportError), (cls, mapped)
    assert type(mapped) is not sc.TransportError
    assert str(mapped)
    if isinstance(exc, TimeoutError):
        assert isinstance(mapped, sc.APITimeoutError)


def test_the_aiohttp_walk_found_the_usual_suspects() -> None:
    names = {c.__name__ for c in TRANSPORT_FAILURES}
    assert {
        "ClientConnectorError",
        "ServerDisconnectedError",
        "ServerTimeoutError",
        "ClientPayloadError",
        "ClientResponseError",
        "InvalidURL",
        "TimeoutError",
    } <= names
