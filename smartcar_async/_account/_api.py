"""Account-level calls that need no `Client`: user, vehicle list, compatibility, connections.

Named as in the official SDK (``get_user``, ``get_vehicles``,
``get_compatibility``, ``get_connections``, ``delete_connections``) but
async, typed, and with keyword arguments instead of option dicts. Each call
makes its own short-lived connection unless given ``session=``; the
``iter_*`` helpers walk every page, holding one connection for the walk.

Arguments are checked before any request. Origins come from the argument,
else the official SDK's environment variable (read at call time), else the
public default (see `_origins`).
"""

from __future__ import annotations

import os
from collections.abc import AsyncGenerator, Mapping, Sequence
from typing import Final, TypeVar

import aiohttp

from .. import _origins
from .._converter import structure
from .._endpoints import API_VERSION
from .._exceptions import InvalidResponseError
from .._models import Meta
from .._models_account import (
    Compatibility,
    CompatibilityMatrix,
    Connection,
    Connections,
    DeleteConnections,
    User,
    Vehicles,
)
from .._validate import check_bound, check_choice, check_int, check_str, check_token, format_flags
from .._vehicle import Vehicle
from ._http import DEFAULT_TIMEOUT, basic_auth, open_session, send

__all__ = [
    "check_scopes",
    "check_vin",
    "client_credentials",
    "delete_connections",
    "get_compatibility",
    "get_compatibility_matrix",
    "get_connections",
    "get_user",
    "get_vehicles",
    "iter_connections",
    "iter_permissions",
    "iter_vehicles",
]

T = TypeVar("T")
Flags = Mapping[str, str | bool | int | float]

#: Documented page-size ceilings: ``/vehicles`` "Max: 50", connections "max 100".
MAX_VEHICLES_PAGE: Final = 50
MAX_CONNECTIONS_PAGE: Final = 100
REGIONS: Final = ("US", "CA", "EUROPE")
POWERTRAINS: Final = ("ICE", "HEV", "PHEV", "BEV")
CONNECTION_MODES: Final = ("live", "simulated", "test")


# ---------------------------------------------------------------- checks


def check_vin(vin: object, name: str = "vin") -> str:
    """A 17-character alphanumeric VIN (ISO 3779), returned as given."""
    if not isinstance(vin, str):
        raise TypeError(f"{name} must be a str, got {type(vin).__name__}")
    if len(vin) != 17 or not (vin.isascii() and vin.isalnum()):
        raise ValueError(f"{name} must be 17 letters and digits, got {vin!r}")
    return vin


def check_scopes(scope: object, *, required: bool) -> list[str]:
    """Permission names as a list; a lone str is refused, as joining it would split letters."""
    if scope is None:
        if required:
            raise ValueError("scope must list at least one permission")
        return []
    if isinstance(scope, str):
        raise TypeError("scope must be a list of permission names, not a single str")
    if not isinstance(scope, Sequence | set | frozenset):
        raise TypeError(f"scope must be a list of permission names, got {type(scope).__name__}")
    scopes = list(scope)
    for item in scopes:
        if not isinstance(item, str):
            raise TypeError(f"each scope must be a str, got {type(item).__name__}")
        if not item or any(ch.isspace() for ch in item):
            raise ValueError(f"invalid scope {item!r}: a permission name has no spaces")
    if required and not scopes:
        raise ValueError("scope must list at least one permission")
    return scopes


def client_credentials(
    client_id: str | None, client_secret: str | None, who: str
) -> tuple[str, str]:
    """The application's credentials, from the arguments or the official SDK's env vars."""
    client_id = client_id or os.environ.get("SMARTCAR_CLIENT_ID")
    client_secret = client_secret or os.environ.get("SMARTCAR_CLIENT_SECRET")
    if not client_id or not client_secret:
        raise ValueError(
            f"{who} needs a client_id and a client_secret: pass them, or set "
            "SMARTCAR_CLIENT_ID and SMARTCAR_CLIENT_SECRET"
        )
    client_id = check_token(client_id, "client_id")
    if ":" in client_id:
        # Basic credentials are "id:secret"; a colon in the id would split wrongly.
        raise ValueError("client_id must not contain ':'")
    return client_id, check_token(client_secret, "client_secret")


def _connection_filters(
    user_id: str | None, vehicle_id: str | None, mode: str | None = None
) -> dict[str, str]:
    params: dict[str, str] = {}
    if user_id is not None:
        params["user_id"] = check_str("user_id", user_id)
    if vehicle_id is not None:
        params["vehicle_id"] = check_str("vehicle_id", vehicle_id)
    if mode is not None:
        params["mode"] = check_choice("mode", mode, CONNECTION_MODES, upper=False)
    return params


# -------------------------------------------------------------- plumbing


async def _fetch(
    model: type[T],
    method: str,
    url: str,
    *,
    session: aiohttp.ClientSession | None,
    timeout: float | None,
    authorization: str,
    secret: str,
    params: Mapping[str, str] | None = None,
) -> T:
    resp = await send(
        method,
        url,
        session=session,
        timeout=timeout,
        authorization=authorization,
        params=params,
        redact=(secret,),
    )
    return structure(model, resp.body, Meta.from_headers(resp.headers))


def _api_url(origin: str, path: str) -> str:
    return f"{origin}/v{API_VERSION}{path}"


def _management_url(origin: str) -> str:
    return f"{origin}/v{API_VERSION}/management/connections"


# ------------------------------------------------------------- Vehicle API


async def get_user(
    access_token: str,
    *,
    api_origin: str | None = None,
    session: aiohttp.ClientSession | None = None,
    timeout: float | None = DEFAULT_TIMEOUT,
) -> User:
    """The Smartcar user id behind *access_token* (``GET /user``).

    Added in 0.1.0.
    """
    token = check_token(access_token)
    url = _api_url(_origins.api_origin(api_origin), "/user")
    return await _fetch(
        User,
        "GET",
        url,
        session=session,
        timeout=check_bound("timeout", timeout),
        authorization=f"Bearer {token}",
        secret=token,
    )


async def _vehicles_page(
    token: str,
    limit: int | None,
    offset: int | None,
    origin: str,
    session: aiohttp.ClientSession | None,
    timeout: float | None,
) -> Vehicles:
    params: dict[str, str] = {}
    if limit is not None:
        params["limit"] = str(limit)
    if offset is not None:
        params["offset"] = str(offset)
    return await _fetch(
        Vehicles,
        "GET",
        _api_url(origin, "/vehicles"),
        session=session,
        timeout=timeout,
        authorization=f"Bearer {token}",
        secret=token,
        params=params,
    )


async def get_vehicles(
    access_token: str,
    *,
    limit: int | None = None,
    offset: int | None = None,
    api_origin: str | None = None,
    session: aiohttp.ClientSession | None = None,
    timeout: float | None = DEFAULT_TIMEOUT,
) -> Vehicles:
    """One page of the vehicle ids *access_token* may access (``GET /vehicles``).

    ``limit`` is 1 to 50 (the server's default is 10); ``offset`` the index to
    start at. :func:`iter_vehicles` walks every page.

    Added in 0.1.0.
    """
    token = check_token(access_token)
    return await _vehicles_page(
        token,
        None if limit is None else check_int("limit", limit, minimum=1, maximum=MAX_VEHICLES_PAGE),
        None if offset is None else check_int("offset", offset, minimum=0),
        _origins.api_origin(api_origin),
        session,
        check_bound("timeout", timeout),
    )


def iter_vehicles(
    access_token: str,
    *,
    page_size: int = MAX_VEHICLES_PAGE,
    api_origin: str | None = None,
    session: aiohttp.ClientSession | None = None,
    timeout: float | None = DEFAULT_TIMEOUT,
) -> AsyncGenerator[str, None]:
    """Every vehicle id *access_token* may access, fetching ``page_size`` per request.

    Arguments are checked when this is called; requests start on the first
    ``async for`` step. Without ``session=`` one connection is held for the
    walk: if you stop early, close the iterator (``contextlib.aclosing``) to
    release it at once.

    Added in 0.1.0.
    """
    token = check_token(access_token)
    size = check_int("page_size", page_size, minimum=1, maximum=MAX_VEHICLES_PAGE)
    origin = _origins.api_origin(api_origin)
    seconds = check_bound("timeout", timeout)

    async def walk() -> AsyncGenerator[str, None]:
        async with open_session(session) as live:
            offset = 0
            while True:
                page = await _vehicles_page(token, size, offset, origin, live, seconds)
                _check_offset(page.vehicles, page.paging.offset, offset, page.meta)
                for vehicle_id in page.vehicles:
                    yield vehicle_id
                offset += len(page.vehicles)
                if not page.vehicles or offset >= page.paging.count:
                    return

    return walk()


def iter_permissions(vehicle: Vehicle, *, page_size: int = 25) -> AsyncGenerator[str, None]:
    """Every permission the vehicle's token grants, ``page_size`` per request.

    Uses :meth:`Vehicle.permissions` with ``limit``/``offset``, so it runs on
    the vehicle's `Client`.

    Added in 0.1.0.
    """
    if not isinstance(vehicle, Vehicle):
        raise TypeError(f"vehicle must be a smartcar_async.Vehicle, got {type(vehicle).__name__}")
    size = check_int("page_size", page_size, minimum=1)

    async def walk() -> AsyncGenerator[str, None]:
        offset = 0
        while True:
            page = await vehicle.permissions(limit=size, offset=offset)
            _check_offset(page.permissions, page.paging.offset, offset, page.meta)
            for permission in page.permissions:
                yield permission
            offset += len(page.permissions)
            if not page.permissions or offset >= page.paging.count:
                return

    return walk()


def _check_offset(items: Sequence[str], got: int, asked: int, meta: Meta) -> None:
    # A server that ignores the offset sends the same page again and again,
    # up to a count it sets itself; that is its bug, as a repeated cursor is.
    if items and got != asked:
        raise InvalidResponseError(
            f"The Smartcar API answered offset {asked} with a page at offset {got}",
            field="paging.offset",
            request_id=meta.request_id,
        )


# -------------------------------------------------------- Compatibility API


async def get_compatibility(
    vin: str,
    scope: Sequence[str],
    country: str = "US",
    *,
    client_id: str | None = None,
    client_secret: str | None = None,
    flags: Flags | None = None,
    api_origin: str | None = None,
    session: aiohttp.ClientSession | None = None,
    timeout: float | None = DEFAULT_TIMEOUT,
) -> Compatibility:
    """Whether a VIN can use Smartcar with these permissions (``GET /compatibility``).

    ``country`` is an ISO 3166-1 alpha-2 code. ``client_id`` and
    ``client_secret`` default to ``SMARTCAR_CLIENT_ID`` and
    ``SMARTCAR_CLIENT_SECRET``. Smartcar documents this endpoint as an
    Enterprise feature, and newer docs as deprecated.

    Added in 0.1.0.
    """
    params = {
        "vin": check_vin(vin),
        "scope": " ".join(check_scopes(scope, required=True)),
        "country": _country(country),
    }
    formatted = format_flags(flags)
    if formatted:
        params["flags"] = formatted
    cid, secret = client_credentials(client_id, client_secret, "get_compatibility")
    return await _fetch(
        Compatibility,
        "GET",
        _api_url(_origins.api_origin(api_origin), "/compatibility"),
        session=session,
        timeout=check_bound("timeout", timeout),
        authorization=basic_auth(cid, secret),
        secret=secret,
        params=params,
    )


def _country(country: object) -> str:
    if not isinstance(country, str):
        raise TypeError(f"country must be a str, got {type(country).__name__}")
    if len(country) != 2 or not (country.isascii() and country.isalpha()):
        raise ValueError(f"country must be a two-letter ISO 3166-1 code, got {country!r}")
    return country.upper()


async def get_compatibility_matrix(
    region: str,
    *,
    make: str | None = None,
    type: str | None = None,  # shadows the builtin on purpose: it is the API's name
    scope: Sequence[str] | None = None,
    client_id: str | None = None,
    client_secret: str | None = None,
    api_origin: str | None = None,
    session: aiohttp.ClientSession | None = None,
    timeout: float | None = DEFAULT_TIMEOUT,
) -> CompatibilityMatrix:
    """Compatible models by make for a region (``GET /compatibility/matrix``).

    ``region`` is US, CA or EUROPE; ``make`` narrows to one brand; ``type`` to
    one powertrain (ICE, HEV, PHEV, BEV); ``scope`` to models supporting all
    those permissions. Client credentials as for :func:`get_compatibility`.
    For reference only: it does not promise that a given vehicle works.

    Added in 0.1.0.
    """
    params = {"region": check_choice("region", region, REGIONS, upper=True)}
    if make is not None:
        params["make"] = check_str("make", make)
    if type is not None:
        params["type"] = check_choice("type", type, POWERTRAINS, upper=True)
    scopes = check_scopes(scope, required=False)
    if scopes:
        params["scope"] = " ".join(scopes)
    cid, secret = client_credentials(client_id, client_secret, "get_compatibility_matrix")
    return await _fetch(
        CompatibilityMatrix,
        "GET",
        _api_url(_origins.api_origin(api_origin), "/compatibility/matrix"),
        session=session,
        timeout=check_bound("timeout", timeout),
        authorization=basic_auth(cid, secret),
        secret=secret,
        params=params,
    )


# ----------------------------------------------------------- Management API


async def _connections_page(
    amt: str,
    params: Mapping[str, str],
    origin: str,
    session: aiohttp.ClientSession | None,
    timeout: float | None,
) -> Connections:
    return await _fetch(
        Connections,
        "GET",
        _management_url(origin),
        session=session,
        timeout=timeout,
        authorization=basic_auth("default", amt),
        secret=amt,
        params=params,
    )


async def get_connections(
    amt: str,
    *,
    user_id: str | None = None,
    vehicle_id: str | None = None,
    mode: str | None = None,
    limit: int | None = None,
    cursor: str | None = None,
    management_origin: str | None = None,
    session: aiohttp.ClientSession | None = None,
    timeout: float | None = DEFAULT_TIMEOUT,
) -> Connections:
    """One page of the application's vehicle connections, newest first.

    *amt* is the Application Management Token. Filter by ``user_id``,
    ``vehicle_id`` or ``mode`` (live, simulated, test); ``limit`` is 1 to 100
    (the server's default is 10); pass the previous page's
    ``paging.cursor`` as ``cursor`` for the next. :func:`iter_connections`
    walks every page.

    Added in 0.1.0.
    """
    token = check_token(amt, "amt")
    params = _connection_filters(user_id, vehicle_id, mode)
    if limit is not None:
        params["limit"] = str(check_int("limit", limit, minimum=1, maximum=MAX_CONNECTIONS_PAGE))
    if cursor is not None:
        params["cursor"] = check_str("cursor", cursor)
    return await _connections_page(
        token,
        params,
        _origins.management_origin(management_origin),
        session,
        check_bound("timeout", timeout),
    )


def iter_connections(
    amt: str,
    *,
    page_size: int = MAX_CONNECTIONS_PAGE,
    user_id: str | None = None,
    vehicle_id: str | None = None,
    mode: str | None = None,
    management_origin: str | None = None,
    session: aiohttp.ClientSession | None = None,
    timeout: float | None = DEFAULT_TIMEOUT,
) -> AsyncGenerator[Connection, None]:
    """Every connection of the application, following the cursor from page to page.

    Filters as for :func:`get_connections`. Arguments are checked when this
    is called; the connection handling is as for :func:`iter_vehicles`.

    Added in 0.1.0.
    """
    token = check_token(amt, "amt")
    filters = _connection_filters(user_id, vehicle_id, mode)
    filters["limit"] = str(
        check_int("page_size", page_size, minimum=1, maximum=MAX_CONNECTIONS_PAGE)
    )
    origin = _origins.management_origin(management_origin)
    seconds = check_bound("timeout", timeout)

    async def walk() -> AsyncGenerator[Connection, None]:
        seen: set[str] = set()
        params = dict(filters)
        async with open_session(session) as live:
            while True:
                page = await _connections_page(token, params, origin, live, seconds)
                for connection in page.connections:
                    yield connection
                cursor = page.paging.cursor
                if not cursor or not page.connections:
                    return
                if cursor in seen:
                    # A cursor seen before would loop forever; that is the server's bug.
                    raise InvalidResponseError(
                        "The Management API returned a cursor it had already returned",
                        field="paging.cursor",
                        request_id=page.meta.request_id,
                    )
                seen.add(cursor)
                params["cursor"] = cursor

    return walk()


async def delete_connections(
    amt: str,
    *,
    user_id: str | None = None,
    vehicle_id: str | None = None,
    management_origin: str | None = None,
    session: aiohttp.ClientSession | None = None,
    timeout: float | None = DEFAULT_TIMEOUT,
) -> DeleteConnections:
    """Disconnect vehicles from the application; returns the connections removed.

    Needs ``user_id`` (all of that user's vehicles), ``vehicle_id`` (that
    vehicle for every user) or both (that vehicle for that user, as the
    current docs allow; the official SDK refuses both).

    Added in 0.1.0.
    """
    token = check_token(amt, "amt")
    params = _connection_filters(user_id, vehicle_id)
    if not params:
        raise ValueError("delete_connections needs user_id, vehicle_id or both")
    return await _fetch(
        DeleteConnections,
        "DELETE",
        _management_url(_origins.management_origin(management_origin)),
        session=session,
        timeout=check_bound("timeout", timeout),
        authorization=basic_auth("default", token),
        secret=token,
        params=params,
    )
