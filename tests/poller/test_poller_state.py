"""FleetPoller(state=...): parked reads and back-offs survive a restart, in a real SQLite file."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import anyio
import pytest
from poller_support import assert_every_round, by_vehicle, collect, requested
from support import TOKEN

from smartcar_async import (
    Client,
    ParkedRead,
    ReadName,
    SQLiteState,
    StateError,
    Vehicle,
    VehicleRecord,
)
from smartcar_async._poller import FleetPoller, PollResult
from smartcar_async._state import token_lineage
from smartcar_async.testing import Emulator

READS: tuple[ReadName, ...] = ("odometer", "location")


def incompatible(emu: Emulator, vehicle_id: str, path: str = "/odometer") -> None:
    vehicle = emu.fleet.get(vehicle_id)
    assert vehicle is not None
    vehicle.capabilities.discard(path)


def everything_in(folder: Path) -> bytes:
    return b"".join(f.read_bytes() for f in folder.iterdir())


async def test_parked_reads_are_not_asked_again_after_a_restart(
    emu: Emulator, client: Client, tmp_path: Path
) -> None:
    compat, narrow, refused, fine = emu.fleet.ids[:4]
    incompatible(emu, compat)
    emu.register_token("narrow-token", scopes=["read_location"])
    emu.revoke_token("revoked-token")
    tokens = {compat: TOKEN, narrow: "narrow-token", refused: "revoked-token", fine: TOKEN}

    def handles(**changed: str) -> list[Vehicle]:
        given = {**tokens, **changed}
        return [client.vehicle(vid, access_token=tok) for vid, tok in given.items()]

    path = tmp_path / "state.db"
    async with SQLiteState(path) as store:
        async with FleetPoller(
            reads=READS, interval=0.2, jitter=0.0, rounds=2, vehicles=handles(), state=store
        ) as poller:
            await collect(poller)
        stored = await store.load_vehicles(tokens)
    # The healthy car's record holds only when its next poll was due (no park, no back-off).
    assert {vid for vid, record in stored.items() if record.parked} == {compat, narrow, refused}
    assert not stored[fine].parked
    assert stored[fine].blocked_until is None
    assert {n: p.reason for n, p in stored[compat].parked.items()} == {"odometer": "COMPATIBILITY"}
    assert stored[compat].parked["odometer"].fingerprint is None
    assert stored[narrow].parked["odometer"].reason == "PERMISSION"
    assert {p.reason for p in stored[refused].parked.values()} == {"AUTHENTICATION"}
    assert stored[refused].parked["odometer"].fingerprint == token_lineage("revoked-token")
    assert all(p.until > time.time() + 3600 for r in stored.values() for p in r.parked.values())
    raw = everything_in(tmp_path)
    assert b"revoked-token" not in raw
    assert b"narrow-token" not in raw

    # A new process, the same file: nothing that was parked is asked for.
    emu.clear_requests()
    async with (
        SQLiteState(path) as store,
        FleetPoller(
            reads=READS, interval=0.2, jitter=0.0, rounds=2, vehicles=handles(), state=store
        ) as poller,
    ):
        results = await collect(poller)
    assert_every_round(results, tokens, 2)
    assert requested(emu, compat, "/odometer") == 0
    assert requested(emu, narrow, "/odometer") == 0
    assert requested(emu, refused, "/odometer") == requested(emu, refused, "/location") == 0
    assert requested(emu, fine, "/odometer") == 2
    got = by_vehicle(results)
    assert all(r.parked == {"odometer": "COMPATIBILITY"} for r in got[compat])
    assert all(r.parked == {"odometer": "PERMISSION"} for r in got[narrow])
    assert all(r.outcome == "parked" for r in got[refused])

    # The user reconnected: new tokens in the file lift the parks tied to the old ones.
    emu.clear_requests()
    async with SQLiteState(path) as store:
        async with FleetPoller(
            reads=READS,
            interval=0.2,
            jitter=0.0,
            rounds=1,
            vehicles=handles(**{narrow: TOKEN, refused: TOKEN}),
            state=store,
        ) as poller:
            results = await collect(poller)
        stored = await store.load_vehicles(tokens)
    assert requested(emu, compat, "/odometer") == 0  # about the car, not the token
    assert requested(emu, narrow, "/odometer") == requested(emu, refused, "/odometer") == 1
    assert all(r.ok for r in results)
    assert set(stored[compat].parked) == {"odometer"}
    assert stored[narrow].parked == {}
    assert stored[refused].parked == {}


async def test_the_last_changes_are_saved_when_the_poller_is_cancelled(
    emu: Emulator, client: Client, tmp_path: Path
) -> None:
    car = emu.fleet.ids[0]
    incompatible(emu, car)
    async with SQLiteState(tmp_path / "state.db") as store:
        with anyio.CancelScope() as scope:
            async with FleetPoller(
                reads=READS,
                interval=30.0,
                vehicles=[client.vehicle(car, access_token=TOKEN)],
                state=store,
            ) as poller:
                async for _ in poller.results():
                    # Well before the batched save would have run.
                    scope.cancel()
        assert scope.cancelled_caught
        stored = await store.load_vehicles([car])
    assert stored[car].parked["odometer"].reason == "COMPATIBILITY"


async def test_a_back_off_survives_a_restart(emu: Emulator, client: Client, tmp_path: Path) -> None:
    car = emu.fleet.ids[0]
    emu.faults.asleep.add(car)
    path = tmp_path / "state.db"
    options: dict[str, Any] = {"reads": READS, "interval": 0.2, "jitter": 0.0, "backoff": 60.0}
    async with SQLiteState(path) as store:
        async with FleetPoller(
            rounds=1, vehicles=[client.vehicle(car, access_token=TOKEN)], state=store, **options
        ) as poller:
            first = await collect(poller)
        stored = await store.load_vehicles([car])
    assert first[0].backoff == 60.0
    record = stored[car]
    assert record.failures == 1
    assert record.blocked_until is not None
    assert time.time() + 50 < record.blocked_until < time.time() + 61

    emu.clear_requests()
    async with (
        SQLiteState(path) as store,
        FleetPoller(
            rounds=2, vehicles=[client.vehicle(car, access_token=TOKEN)], state=store, **options
        ) as poller,
    ):
        results = await collect(poller)
    assert [r.skipped for r in results] == ["backoff", "backoff"]
    assert requested(emu, car, "/odometer") == 0


async def test_stored_parks_that_ran_out_or_belong_to_another_token_are_lifted(
    emu: Emulator, client: Client, tmp_path: Path
) -> None:
    kept, ran_out, other_token = emu.fleet.ids[:3]
    now = time.time()
    async with SQLiteState(tmp_path / "state.db") as store:
        await store.save_vehicles(
            {
                kept: VehicleRecord(
                    parked={"odometer": ParkedRead(reason="COMPATIBILITY", until=now + 3600)}
                ),
                ran_out: VehicleRecord(
                    parked={"odometer": ParkedRead(reason="COMPATIBILITY", until=now - 1)}
                ),
                other_token: VehicleRecord(
                    parked={
                        name: ParkedRead(
                            reason="AUTHENTICATION",
                            until=now + 3600,
                            fingerprint=token_lineage("an-old-token"),
                        )
                        for name in READS
                    }
                ),
            }
        )
        ids = (kept, ran_out, other_token)
        async with FleetPoller(
            reads=READS,
            interval=0.2,
            jitter=0.0,
            rounds=1,
            vehicles=[client.vehicle(vid, access_token=TOKEN) for vid in ids],
            state=store,
        ) as poller:
            results = await collect(poller)
        stored = await store.load_vehicles(ids)
    assert requested(emu, kept, "/odometer") == 0
    assert requested(emu, ran_out, "/odometer") == requested(emu, other_token, "/odometer") == 1
    got = {r.vehicle_id: r for r in results}
    assert got[kept].parked == {"odometer": "COMPATIBILITY"}
    assert got[ran_out].ok
    assert got[other_token].ok
    # The lifted parks are gone from the store too.
    assert stored[ran_out].parked == {}
    assert stored[other_token].parked == {}
    assert set(stored[kept].parked) == {"odometer"}


async def test_vehicles_added_while_running_get_their_records_before_their_first_poll(
    emu: Emulator, client: Client, tmp_path: Path
) -> None:
    first, late = emu.fleet.ids[:2]
    parked = ParkedRead(reason="PERMISSION", until=time.time() + 3600)
    async with SQLiteState(tmp_path / "state.db") as store:
        await store.save_vehicles({late: VehicleRecord(parked={"odometer": parked})})
        results: list[PollResult] = []
        async with FleetPoller(
            reads=READS,
            interval=0.2,
            jitter=0.0,
            rounds=3,
            vehicles=[client.vehicle(first, access_token=TOKEN)],
            state=store,
        ) as poller:
            with anyio.fail_after(20):
                async for result in poller.results():
                    results.append(result)
                    if result.vehicle_id == first and result.round == 1:
                        poller.add(client.vehicle(late, access_token=TOKEN))
    mine = sorted(by_vehicle(results)[late], key=lambda r: r.round)
    assert [r.round for r in mine] == [1, 2, 3] or [r.round for r in mine] == [2, 3]
    assert all(r.parked == {"odometer": "PERMISSION"} for r in mine)
    assert requested(emu, late, "/odometer") == 0
    assert requested(emu, late, "/location") == len(mine)


async def test_a_store_that_cannot_load_fails_the_entry_and_polls_nothing(
    emu: Emulator, client: Client, tmp_path: Path
) -> None:
    store = SQLiteState(tmp_path / "state.db")
    await store.aclose()
    poller = FleetPoller(
        reads=READS,
        interval=0.2,
        rounds=1,
        vehicles=[client.vehicle(emu.fleet.ids[0], access_token=TOKEN)],
        state=store,
    )
    with pytest.raises(StateError):
        async with poller:
            pass
    assert requested(emu, emu.fleet.ids[0], "/odometer") == 0


async def test_a_restart_waits_for_the_poll_that_was_due_next(
    emu: Emulator, client: Client, tmp_path: Path
) -> None:
    # A vehicle polled a moment before a restart is not polled again at once:
    # the store keeps when its next poll was due, and the new run waits for it.
    car = emu.fleet.ids[0]
    path = tmp_path / "state.db"
    options: dict[str, Any] = {"reads": READS, "interval": 1.5, "jitter": 0.0}
    handle = [client.vehicle(car, access_token=TOKEN)]
    async with SQLiteState(path) as store:
        async with FleetPoller(rounds=2, vehicles=handle, state=store, **options) as poller:
            with anyio.fail_after(10):
                async for result in poller.results():
                    assert result.ok
                    break  # stop right after round 1: round 2 was planned, not polled
        stored = await store.load_vehicles([car])
    due = stored[car].next_due
    assert due is not None
    assert time.time() < due <= time.time() + 1.5

    async with (
        SQLiteState(path) as store,
        FleetPoller(rounds=1, vehicles=handle, state=store, **options) as poller,
    ):
        results = await collect(poller)
    assert [r.ok for r in results] == [True]
    # Its first poll of the new run went out when the old run had planned it, not at once.
    assert results[0].started_at.timestamp() >= due - 0.05
