"""Parked reads: a COMPATIBILITY, PERMISSION or AUTHENTICATION "no" is not paid for twice."""

from __future__ import annotations

import math
from typing import Any

import anyio
import pytest
from poller_support import assert_every_round, by_vehicle, collect, requested
from support import TOKEN

from smartcar_async import Client, ReadName
from smartcar_async._exceptions import (
    AuthenticationError,
    CompatibilityError,
    PermissionDeniedError,
)
from smartcar_async._poller import FleetPoller, PollResult
from smartcar_async.testing import Emulator

READS: tuple[ReadName, ...] = ("odometer", "location")


def rounds_of(results: list[PollResult], vehicle_id: str) -> dict[int, PollResult]:
    return {r.round: r for r in by_vehicle(results)[vehicle_id]}


async def test_an_incompatible_read_is_asked_once_and_reported_parked_after(
    emu: Emulator, client: Client
) -> None:
    ids = emu.fleet.ids[:3]
    car = ids[0]
    emu.fleet.get(car).capabilities.discard("/odometer")  # type: ignore[union-attr]
    handles = [client.vehicle(vid, access_token=TOKEN) for vid in ids]
    async with FleetPoller(
        reads=READS, interval=0.2, jitter=0.0, rounds=4, vehicles=handles
    ) as poller:
        results = await collect(poller)
        assert poller.reads_parked == 1
        assert poller.vehicles_gated == 0
    assert_every_round(results, ids, 4)
    assert requested(emu, car, "/odometer") == 1
    assert requested(emu, car, "/location") == 4
    mine = rounds_of(results, car)
    assert isinstance(mine[1].errors["odometer"], CompatibilityError)
    assert mine[1].parked == {}
    for n in (2, 3, 4):
        assert mine[n].parked == {"odometer": "COMPATIBILITY"}
        assert set(mine[n].values) == {"location"}
        assert not mine[n].errors
        assert mine[n].ok
        assert mine[n].outcome == "ok"
        line = mine[n].to_dict()
        assert line["parked"] == {"odometer": "COMPATIBILITY"}
        assert "odometer" not in line["errors"]
        assert "odometer" not in line["values"]
    # The others are untouched: both reads every round.
    for other in ids[1:]:
        assert requested(emu, other, "/odometer") == 4
        assert all(r.parked == {} and r.ok for r in by_vehicle(results)[other])


async def test_an_unpermitted_read_is_parked_and_a_new_token_asks_again(
    emu: Emulator, client: Client
) -> None:
    car = emu.fleet.ids[0]
    emu.register_token("narrow-token", scopes=["read_location"])
    poller = FleetPoller(
        reads=READS,
        interval=0.25,
        jitter=0.0,
        rounds=5,
        vehicles=[client.vehicle(car, access_token="narrow-token")],
    )
    results: list[PollResult] = []
    async with poller:
        with anyio.fail_after(20):
            async for result in poller.results():
                results.append(result)
                if result.round == 3:
                    # The user consented again: a new token lifts the PERMISSION park.
                    poller.add(client.vehicle(car, access_token=TOKEN))
    mine = rounds_of(results, car)
    assert isinstance(mine[1].errors["odometer"], PermissionDeniedError)
    assert mine[2].parked == mine[3].parked == {"odometer": "PERMISSION"}
    assert "odometer" in mine[4].values
    assert "odometer" in mine[5].values
    assert requested(emu, car, "/odometer") == 3  # rounds 1, 4 and 5
    assert requested(emu, car, "/location") == 5


async def test_a_parked_read_is_asked_again_once_recheck_has_passed(
    emu: Emulator, client: Client
) -> None:
    car = emu.fleet.ids[0]
    emu.fleet.get(car).capabilities.discard("/odometer")  # type: ignore[union-attr]
    # Rounds at 0, 0.5, 1.0, 1.5, 2.0 s: the park of round 1 (until ~1.2 s)
    # runs out between rounds 3 and 4; round 4 parks it again.
    async with FleetPoller(
        reads=READS,
        interval=0.5,
        jitter=0.0,
        rounds=5,
        recheck=1.2,
        vehicles=[client.vehicle(car, access_token=TOKEN)],
    ) as poller:
        results = await collect(poller)
    mine = rounds_of(results, car)
    assert requested(emu, car, "/odometer") == 2
    assert [n for n in mine if "odometer" in mine[n].errors] == [1, 4]
    assert [n for n in mine if mine[n].parked] == [2, 3, 5]


async def test_a_refused_plain_token_parks_the_vehicle_until_the_token_changes(
    emu: Emulator, client: Client
) -> None:
    car, other = emu.fleet.ids[:2]
    emu.revoke_token("revoked-token")
    poller = FleetPoller(
        reads=READS,
        interval=0.25,
        jitter=0.0,
        rounds=5,
        vehicles=[
            client.vehicle(car, access_token="revoked-token"),
            client.vehicle(other, access_token=TOKEN),
        ],
    )
    results: list[PollResult] = []
    gated: list[tuple[int, int]] = []
    async with poller:
        with anyio.fail_after(20):
            async for result in poller.results():
                results.append(result)
                if result.vehicle_id != car:
                    continue
                gated.append((poller.vehicles_gated, poller.reads_parked))
                if result.round == 1:
                    # The same token again (a vehicles file read anew) lifts nothing.
                    poller.add(client.vehicle(car, access_token="revoked-token"))
                if result.round == 3:
                    poller.add(client.vehicle(car, access_token=TOKEN))
    assert_every_round(results, [car, other], 5)
    mine = rounds_of(results, car)
    assert all(isinstance(e, AuthenticationError) for e in mine[1].errors.values())
    assert set(mine[1].errors) == set(READS)
    for n in (2, 3):
        assert mine[n].outcome == "parked"
        assert not mine[n].ok
        assert mine[n].parked == {"odometer": "AUTHENTICATION", "location": "AUTHENTICATION"}
        assert mine[n].latency == 0.0
        assert not mine[n].values
        assert not mine[n].errors
    assert mine[4].ok
    assert mine[5].ok
    assert not mine[4].parked
    # Nothing was sent for the vehicle while it was parked: rounds 1, 4 and 5.
    assert requested(emu, car, "/odometer") == requested(emu, car, "/location") == 3
    assert requested(emu, other, "/odometer") == 5
    assert gated[:3] == [(1, 2), (1, 2), (1, 2)]
    assert gated[3] == (0, 0)

    metrics = pytest.importorskip("smartcar_async.metrics")
    assert metrics.poll_outcome(mine[2]) == "parked"
    assert metrics.poll_outcome(mine[4]) == "ok"


async def test_a_token_source_is_not_parked_on_authentication(
    emu: Emulator, client: Client
) -> None:
    """A refreshable token may work next time: the vehicle stays in the rounds."""
    car = emu.fleet.ids[0]
    emu.revoke_token("revoked-token")

    async def token() -> str:
        return "revoked-token"

    async with FleetPoller(
        reads=READS,
        interval=0.2,
        jitter=0.0,
        rounds=3,
        vehicles=[client.vehicle(car, access_token=token)],
    ) as poller:
        results = await collect(poller)
    assert all(r.outcome == "error" and not r.parked for r in results)
    # Asked every round (the client also tries a token source once more after a 401).
    assert requested(emu, car, "/odometer") >= 3


async def test_every_read_parked_still_accounts_for_every_round(
    emu: Emulator, client: Client
) -> None:
    ids = emu.fleet.ids[:4]
    for vid in ids[:2]:
        vehicle = emu.fleet.get(vid)
        assert vehicle is not None
        vehicle.capabilities.difference_update({"/odometer", "/location"})
    handles = [client.vehicle(vid, access_token=TOKEN) for vid in ids]
    async with FleetPoller(
        reads=READS, interval=0.15, rounds=4, max_concurrent_vehicles=1, vehicles=handles
    ) as poller:
        results = await collect(poller)
    assert_every_round(results, ids, 4)
    for vid in ids[:2]:
        outcomes = [r.outcome for r in sorted(by_vehicle(results)[vid], key=lambda r: r.round)]
        assert outcomes[0] == "error"
        assert all(o in ("parked", "skipped") for o in outcomes[1:])
        assert "parked" in outcomes[1:]
        assert requested(emu, vid, "/odometer") == 1
    # Every polled result names each read exactly once: a value, an error or a park.
    for result in results:
        if result.skipped is None:
            names = [*result.values, *result.errors, *result.parked]
            assert sorted(names) == sorted(READS)


@pytest.mark.parametrize(
    ("value", "error"),
    [
        (0, ValueError),
        (-1.0, ValueError),
        (math.nan, ValueError),
        (math.inf, ValueError),
        ("60", TypeError),
        (None, TypeError),
        (True, TypeError),
    ],
)
def test_recheck_is_a_bounded_duration(value: Any, error: type[Exception]) -> None:
    with pytest.raises(error, match="recheck"):
        FleetPoller(reads=READS, interval=1.0, recheck=value)


def test_state_must_be_a_store() -> None:
    with pytest.raises(TypeError, match="StateStore"):
        FleetPoller(reads=READS, interval=1.0, state=object())  # type: ignore[arg-type]
