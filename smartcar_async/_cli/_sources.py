"""The polled vehicles and their tokens: a token source per refresh token of the vehicles file."""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, cast

from .._account import AuthClient
from .._client import Client
from .._names import UnitSystem
from .._state import StateStore, StoredTokens
from .._stored_tokens import StoredTokenSource
from .._vehicle import Vehicle
from ._logs import CLI_LOGGER
from ._metrics import RunMetrics
from ._vehicles_file import VehicleRow

if TYPE_CHECKING:
    from ._config import _Config


async def _token_sources(
    stack: contextlib.AsyncExitStack,
    cfg: _Config,
    rows: Sequence[VehicleRow],
    store: StateStore | None,
    metrics: RunMetrics,
) -> dict[str, StoredTokenSource]:
    """One source per distinct refresh token of the file: one user's vehicles share it.

    Each source saves a refreshed pair in the store before using it, under the
    lineage of the file's refresh token, so a restart with the same file
    carries on from the newest pair.
    """
    if cfg.refreshing is None or store is None:
        return {}
    creds = cfg.refreshing
    auth = await stack.enter_async_context(
        AuthClient(creds.client_id, creds.client_secret, auth_origin=creds.token_url)
    )
    sources: dict[str, StoredTokenSource] = {}
    for row in rows:
        if row.refresh_token is not None and row.refresh_token not in sources:
            sources[row.refresh_token] = StoredTokenSource(
                auth,
                store,
                _initial_tokens(row),
                on_refresh=lambda ok: metrics.token_refreshed(ok=ok),
            )

    async def drain() -> None:
        # Before the auth client and the store close: a refresh that a stopping
        # poll left in flight still gets its new pair saved.
        for source in sources.values():
            await source.drain()

    stack.push_async_callback(drain)
    return sources


def _initial_tokens(row: VehicleRow) -> StoredTokens | str:
    """The file's pair (an unknown expiry counts as expired), or its refresh token alone."""
    assert row.refresh_token is not None
    if row.access_token is None:
        return row.refresh_token
    return StoredTokens(
        access_token=row.access_token,
        refresh_token=row.refresh_token,
        access_expires_at=row.expires_at or dt.datetime.now(dt.UTC),
    )


def _handle(
    client: Client,
    row: VehicleRow,
    units: str,
    sources: dict[str, StoredTokenSource],
    **options: Any,
) -> Vehicle:
    units_checked = cast("UnitSystem", units)  # a choice of --units, or checked with the file
    unit_system = row.unit_system or units_checked
    if row.refresh_token is not None:
        source = sources[row.refresh_token]
        handle = client.vehicle(
            row.vehicle_id, access_token=source, unit_system=unit_system, **options
        )
        return cast("Vehicle", handle)
    # Rows with neither token were given --token's.
    assert row.access_token is not None
    handle = client.vehicle(
        row.vehicle_id, access_token=row.access_token, unit_system=unit_system, **options
    )
    return cast("Vehicle", handle)


def _warn_expired(rows: Sequence[VehicleRow]) -> None:
    now = dt.datetime.now(dt.UTC)
    lines = [
        row.line
        for row in rows
        # A refresh token renews an expired access token: nothing to warn about.
        if row.refresh_token is None and row.expires_at is not None and row.expires_at <= now
    ]
    if lines:
        shown = ", ".join(map(str, lines[:10])) + (", ..." if len(lines) > 10 else "")
        logging.getLogger(CLI_LOGGER).warning(
            "%d access token(s) of the vehicles file expired already (expires_at, line %s): "
            "their reads will fail with AuthenticationError",
            len(lines),
            shown,
            extra={"event": "tokens_expired", "lines": lines},
        )
