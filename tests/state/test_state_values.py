"""The store's value types and the lineage key: validation, immutability, no secret in a repr."""

from __future__ import annotations

import datetime as dt
import hashlib
import math
import re
from typing import Any

import pytest
from state_support import EXPIRY, NOW, SECRET, pair, record

from smartcar_async import (
    Access,
    ParkedRead,
    SQLiteState,
    StateStore,
    StoredTokens,
    VehicleRecord,
    token_lineage,
)

# ------------------------------------------------------------------- lineage


def test_lineage_is_a_stable_digest_that_hides_the_token() -> None:
    lineage = token_lineage(SECRET)
    assert re.fullmatch(r"[0-9a-f]{64}", lineage)
    assert token_lineage(SECRET) == lineage
    assert token_lineage(SECRET + "x") != lineage
    assert SECRET not in lineage
    # Domain-separated: not the plain digest another tool may have stored.
    assert lineage != hashlib.sha256(SECRET.encode()).hexdigest()


@pytest.mark.parametrize(
    ("value", "error"), [("", ValueError), (None, TypeError), (b"t", TypeError)]
)
def test_lineage_refuses_what_is_not_a_token(value: Any, error: type[Exception]) -> None:
    with pytest.raises(error):
        token_lineage(value)


# ---------------------------------------------------------------- StoredTokens


def test_stored_tokens_repr_and_str_hide_both_tokens() -> None:
    tokens = pair(1, refresh_expiry=EXPIRY)
    for text in (repr(tokens), str(tokens), f"{tokens}", repr([tokens])):
        assert SECRET not in text
        assert "<redacted>" in text
        assert "2030" in text  # the expiries are not secret and help an operator


def test_stored_tokens_from_access() -> None:
    access = Access(
        access_token=f"{SECRET}-a",
        token_type="Bearer",
        expires_in=7200,
        expiration=EXPIRY,
        refresh_token=f"{SECRET}-r",
        refresh_expiration=EXPIRY + dt.timedelta(days=60),
    )
    tokens = StoredTokens.from_access(access)
    assert tokens == StoredTokens(
        access_token=f"{SECRET}-a",
        refresh_token=f"{SECRET}-r",
        access_expires_at=EXPIRY,
        refresh_expires_at=EXPIRY + dt.timedelta(days=60),
    )


@pytest.mark.parametrize(
    ("change", "error"),
    [
        ({"access_token": ""}, ValueError),
        ({"refresh_token": ""}, ValueError),
        ({"access_token": None}, TypeError),
        ({"refresh_token": 42}, TypeError),
        ({"access_expires_at": dt.datetime(2030, 1, 1)}, ValueError),  # naive
        ({"access_expires_at": "2030-01-01T00:00:00Z"}, TypeError),
        ({"access_expires_at": None}, TypeError),
        ({"refresh_expires_at": dt.datetime(2030, 1, 1)}, ValueError),
        ({"refresh_expires_at": 1_800_000_000}, TypeError),
    ],
)
def test_stored_tokens_refuse_bad_values_without_quoting_them(
    change: dict[str, Any], error: type[Exception]
) -> None:
    fields: dict[str, Any] = {
        "access_token": SECRET,
        "refresh_token": SECRET,
        "access_expires_at": EXPIRY,
        **change,
    }
    with pytest.raises(error) as caught:
        StoredTokens(**fields)
    assert SECRET not in str(caught.value)


def test_stored_tokens_are_frozen() -> None:
    tokens = pair(1)
    with pytest.raises(AttributeError):
        tokens.access_token = "x"  # type: ignore[misc]


# ------------------------------------------------------ VehicleRecord / ParkedRead


def test_vehicle_record_defaults_and_ints_as_epoch_seconds() -> None:
    assert VehicleRecord() == VehicleRecord(
        next_due=None, blocked_until=None, failures=0, parked={}
    )
    rec = VehicleRecord(next_due=1_800_000_000, blocked_until=5)
    assert (rec.next_due, rec.blocked_until) == (1_800_000_000.0, 5.0)
    assert isinstance(rec.next_due, float)
    assert ParkedRead(reason="PERMISSION", until=7).until == 7.0


@pytest.mark.parametrize(
    ("fields", "error"),
    [
        ({"next_due": math.nan}, ValueError),
        ({"next_due": math.inf}, ValueError),
        ({"blocked_until": -math.inf}, ValueError),
        ({"next_due": "soon"}, TypeError),
        ({"next_due": True}, TypeError),
        ({"blocked_until": 10**400}, ValueError),
        ({"failures": -1}, ValueError),
        ({"failures": 1.0}, TypeError),
        ({"failures": True}, TypeError),
        ({"parked": [("odometer", None)]}, TypeError),
        ({"parked": {"odometer": "PERMISSION"}}, TypeError),
        ({"parked": {"": ParkedRead(reason="PERMISSION", until=NOW)}}, ValueError),
        ({"parked": {7: ParkedRead(reason="PERMISSION", until=NOW)}}, TypeError),
    ],
)
def test_vehicle_record_refuses_bad_values(fields: dict[str, Any], error: type[Exception]) -> None:
    with pytest.raises(error):
        VehicleRecord(**fields)


@pytest.mark.parametrize(
    ("fields", "error"),
    [
        ({"reason": "", "until": NOW}, ValueError),
        ({"reason": None, "until": NOW}, TypeError),
        ({"reason": "PERMISSION", "until": math.nan}, ValueError),
        ({"reason": "PERMISSION", "until": None}, TypeError),
        ({"reason": "PERMISSION", "until": NOW, "fingerprint": ""}, ValueError),
        ({"reason": "PERMISSION", "until": NOW, "fingerprint": 3}, TypeError),
    ],
)
def test_parked_read_refuses_bad_values(fields: dict[str, Any], error: type[Exception]) -> None:
    with pytest.raises(error):
        ParkedRead(**fields)


def test_parked_reads_are_read_only_and_changed_by_copy() -> None:
    source = {"odometer": ParkedRead(reason="PERMISSION", until=NOW)}
    rec = VehicleRecord(parked=source)
    source.clear()  # the record took a copy
    assert list(rec.parked) == ["odometer"]
    with pytest.raises(TypeError):
        rec.parked["location"] = ParkedRead(reason="COMPATIBILITY", until=NOW)  # type: ignore[index]

    more = rec.with_parked("location", ParkedRead(reason="COMPATIBILITY", until=NOW + 1))
    assert set(more.parked) == {"odometer", "location"}
    assert set(rec.parked) == {"odometer"}
    replaced = more.with_parked("odometer", ParkedRead(reason="COMPATIBILITY", until=NOW + 2))
    assert replaced.parked["odometer"].reason == "COMPATIBILITY"
    assert replaced.without_parked("odometer", "unknown").parked == {
        "location": ParkedRead(reason="COMPATIBILITY", until=NOW + 1)
    }


def test_vehicle_record_repr_is_plain() -> None:
    text = repr(record(3, parked=True))
    assert text.startswith("VehicleRecord(next_due=1800000003.0, blocked_until=1800000006.0")
    assert "mappingproxy" not in text
    assert "'odometer': ParkedRead(reason='PERMISSION'" in text


def test_values_are_hashable() -> None:
    assert len({record(1, parked=True), record(1, parked=True), record(1)}) == 2
    assert len({pair(1), pair(1)}) == 1


# ------------------------------------------------------------------ protocol


def test_sqlite_state_is_a_state_store(tmp_path: Any) -> None:
    assert isinstance(SQLiteState(tmp_path / "s.db"), StateStore)
    assert not isinstance(object(), StateStore)
