"""The :class:`~smartcar_async.StateStore` half of a Redis store: token pairs and vehicle records.

:class:`RedisRecords` is the part of :class:`~smartcar_async.redis.RedisState`
that :class:`~smartcar_async.SQLiteState` also has (see the "token refresh"
section of :mod:`smartcar_async.redis` for the compare-and-swap).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from ._exceptions import StateError
from ._redis_core import RedisCore
from ._redis_helpers import _parse_record, _parse_time, _record_text, _text, _time_text
from ._state import StoredTokens, VehicleRecord, check_lineage, check_records, check_vehicle_ids

__all__ = ["RedisRecords"]


class RedisRecords(RedisCore):
    """Token pairs (with a compare-and-swap) and vehicle records of
    :class:`~smartcar_async.redis.RedisState`."""

    async def load_tokens(self, lineage: str) -> StoredTokens | None:
        """The stored pair of ``lineage`` (see :func:`~smartcar_async.token_lineage`), or None."""
        key = self._key("tokens", check_lineage(lineage))
        found = await self._call("load tokens", self._client.hgetall(key))
        if not found:
            return None
        try:
            # Inside the try: bytes that are not UTF-8 are malformed too, and a
            # UnicodeDecodeError carries them (a token, perhaps) whole.
            fields = {_text(k): _text(v) for k, v in found.items()}
            refresh_expiry = fields.get("refresh_expires_at")
            return StoredTokens(
                access_token=fields["access"],
                refresh_token=fields["refresh"],
                access_expires_at=_parse_time(fields["access_expires_at"]),
                refresh_expires_at=None if refresh_expiry is None else _parse_time(refresh_expiry),
            )
        except (KeyError, TypeError, ValueError):
            pass
        # Out here, with no detail: a corrupt hash may hold a token where a date belongs.
        raise StateError(f"redis {self._where}: a stored token pair is malformed")

    async def save_tokens(
        self, lineage: str, tokens: StoredTokens, *, replacing: str | None
    ) -> bool:
        """Store ``tokens`` if the stored refresh token is ``replacing`` (None: nothing stored).

        One Lua script, so the compare and the write are atomic across every
        worker. True once Redis has applied it; False, with the stored pair
        unchanged, if another writer got there first.
        """
        key = self._key("tokens", check_lineage(lineage))
        if not isinstance(tokens, StoredTokens):
            raise TypeError(f"tokens must be StoredTokens, not {type(tokens).__name__}")
        if replacing is not None and not isinstance(replacing, str):
            raise TypeError(f"replacing must be a str or None, not {type(replacing).__name__}")
        args = [
            "" if replacing is None else "=" + replacing,
            tokens.access_token,
            tokens.refresh_token,
            _time_text(tokens.access_expires_at),
            "" if tokens.refresh_expires_at is None else _time_text(tokens.refresh_expires_at),
        ]
        done = await self._call("save tokens", self._scripts["SAVE_TOKENS"](keys=[key], args=args))
        return int(done) == 1

    # -------------------------------------------------------------- vehicles

    async def load_vehicles(self, vehicle_ids: Iterable[str]) -> dict[str, VehicleRecord]:
        """The stored records of ``vehicle_ids``, in that order; ids with none are absent."""
        ids = check_vehicle_ids(vehicle_ids)
        found = await self._hmget_all("load vehicles", self._key("vehicles"), ids)
        return {vid: self._record(vid, value) for vid, value in found.items()}

    async def save_vehicles(self, records: Mapping[str, VehicleRecord]) -> None:
        """Replace these vehicles' records in one MULTI/EXEC: all of them or none."""
        items = [(vid, _record_text(record)) for vid, record in check_records(records).items()]
        await self._hset_all("save vehicles", self._key("vehicles"), items)

    def _record(self, vid: str, value: object) -> VehicleRecord:
        try:
            return _parse_record(_text(value))
        except (TypeError, ValueError, KeyError, RecursionError) as exc:
            raise StateError(
                f"redis {self._where}: the record of vehicle {vid!r} is malformed: {exc}"
            ) from None
