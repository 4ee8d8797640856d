"""Values another writer left in Redis: a StateError naming the problem, never a raw
ValueError, OverflowError or UnicodeDecodeError out of a worker's call."""

from __future__ import annotations

from typing import Any

import pytest
from redis_support import require_redis_py

from smartcar_async import StateError, token_lineage

require_redis_py()

HUGE = 10**400
SECRET_BYTES = b"tok-SECRET-\xff-3f9a7c1e"  # not UTF-8


@pytest.mark.parametrize("stored", ["many", "1e5", "\xff", "-5"])
async def test_a_billed_count_that_is_not_an_int_is_a_state_error(store: Any, stored: str) -> None:
    # HINCRBY refuses such a value, but billed() read it with int(): a raw ValueError
    # the poller (which handles StateError) did not expect.
    await store._client.hset(store._key("billed", "2025-03"), "v1", stored)
    with pytest.raises(StateError, match="not a count"):
        await store.billed("v1", "2025-03")


async def test_a_stored_quota_past_a_float_is_a_state_error(store: Any) -> None:
    await store._client.hset(store._key("quotas"), "v1", f'{{"make":"KIA","polls":[{HUGE}]}}')
    with pytest.raises(StateError, match="quota is malformed"):  # was an OverflowError
        await store.load_quotas(["v1"])


async def test_a_billed_increment_past_64_bits_is_refused_before_any_io(store: Any) -> None:
    with pytest.raises(ValueError, match="n must be at most"):
        await store.add_billed("v1", "2025-03", 2**63)
    assert await store._client.exists(store._key("billed", "2025-03")) == 0


async def test_a_gate_closed_until_infinity_is_a_state_error(store: Any) -> None:
    # The script hands back fmt(inf) = "inf", which int() refused with a raw ValueError,
    # and a client sharing the store failed every read with "Unexpected error".
    await store._client.hset(store._key("gate", "app"), "until", "inf")
    with pytest.raises(StateError, match="cannot admit a request"):
        await store.admit(1, "v1")
    with pytest.raises(StateError, match="cannot read the gates"):
        await store.blocked_for("v1")


async def test_a_clock_at_infinity_is_a_state_error(store: Any) -> None:
    await store._client.set(store._key("clock"), "inf")
    with pytest.raises(StateError, match="cannot read the clock"):
        await store.now()
    with pytest.raises(StateError, match="cannot read the bucket"):
        await store.available()


async def test_a_token_pair_that_is_not_utf8_is_a_state_error_without_the_bytes(
    store: Any,
) -> None:
    lineage = token_lineage("refresh")
    await store._client.hset(
        store._key("tokens", lineage),
        mapping={
            "access": SECRET_BYTES,
            "refresh": "r",
            "access_expires_at": "2025-01-01T00:00:00+00:00",
        },
    )
    # Was a UnicodeDecodeError, whose repr holds the stored bytes (a token) whole.
    with pytest.raises(StateError, match="malformed") as caught:
        await store.load_tokens(lineage)
    assert caught.value.__cause__ is None
    assert caught.value.__context__ is None
    assert "SECRET" not in repr(caught.value)
