"""v2-named reads on a v3 handle: the same models as v2, one GET /signals, local refusals."""

from __future__ import annotations

import asyncio
import math
from typing import Any, Literal

import attrs
import pytest
from v3_support import v3_requests

from smartcar_async import Client, CompatibilityError, Odometer, SmartcarError, Vehicle, VehicleV3
from smartcar_async.testing import Emulator

READS = (
    "attributes",
    "vin",
    "odometer",
    "location",
    "fuel",
    "battery",
    "battery_capacity",
    "nominal_capacity",
    "charge",
    "get_charge_limit",
    "tire_pressure",
    "engine_oil",
    "lock_status",
)


def _close(a: Any, b: Any, imperial: bool) -> bool:
    """Equal, but for the rounding of a value converted twice (v3 is metric on the wire)."""
    if isinstance(a, float) and isinstance(b, float):
        # Whole miles of a whole-km odometer may differ by one; the rest by a rounding step.
        return math.isclose(a, b, rel_tol=1e-4 if imperial else 0.0, abs_tol=0.011)
    if attrs.has(type(a)) and type(a) is type(b):
        return all(
            _close(getattr(a, f.name), getattr(b, f.name), imperial)
            for f in attrs.fields(type(a))
            if f.name != "meta"
        )
    if isinstance(a, tuple) and isinstance(b, tuple):
        return len(a) == len(b) and all(_close(x, y, imperial) for x, y in zip(a, b, strict=True))
    if isinstance(a, SmartcarError) and isinstance(b, SmartcarError):
        return type(a) is type(b) and a.code == b.code
    return bool(a == b)


@pytest.mark.parametrize("units", ["metric", "imperial"])
@pytest.mark.parametrize("powertrain", ["EV", "ICE", "PHEV"])
async def test_v2_named_reads_equal_the_v2_reads_in_one_request(
    emu: Emulator,
    client: Client,
    token: str,
    units: Literal["metric", "imperial"],
    powertrain: Literal["EV", "ICE", "PHEV"],
) -> None:
    vehicle = emu.fleet.with_powertrain(powertrain)[0]
    v2 = client.vehicle(vehicle.id, access_token=token, unit_system=units)
    v3 = client.vehicle(vehicle.id, access_token=token, unit_system=units, api_version="3")
    emu.freeze_clock()  # the simulated cars drive on between the two reads otherwise
    emu.clear_requests()
    got = await asyncio.gather(*(getattr(v3, r)() for r in READS), return_exceptions=True)
    assert v3_requests(emu) == [("GET", "signals")]
    want = await asyncio.gather(*(getattr(v2, r)() for r in READS), return_exceptions=True)
    for name, a, b in zip(READS, got, want, strict=True):
        assert _close(a, b, units == "imperial"), (name, a, b)
    odometer = got[READS.index("odometer")]
    assert isinstance(odometer, Odometer)
    assert odometer.meta.unit_system == units
    assert odometer.meta.data_age is not None


async def test_a_lone_read_needing_one_signal_uses_its_route(
    emu: Emulator, client: Client, token: str
) -> None:
    car = client.vehicle(emu.fleet.ids[0], access_token=token, api_version="3")
    emu.clear_requests()
    await car.odometer()
    await car.attributes()
    await car.battery()  # two signals: the list
    assert v3_requests(emu) == [
        ("GET", "signals/odometer-traveleddistance"),
        ("GET", ""),
        ("GET", "signals"),
    ]


async def test_v2_and_v3_reads_of_one_car_never_share_a_request(
    emu: Emulator, client: Client, token: str
) -> None:
    vehicle_id = emu.fleet.ids[0]
    v2 = client.vehicle(vehicle_id, access_token=token)
    v3 = client.vehicle(vehicle_id, access_token=token, api_version="3")
    emu.clear_requests()
    a, b = await asyncio.gather(v2.odometer(), v3.odometer())
    assert a.distance == b.distance
    paths = sorted(r.path.rsplit("/", 2)[-2:][-1] for r in emu.requests)
    assert len(emu.requests) == 2
    assert "odometer" in paths


@pytest.mark.parametrize(
    "call",
    [
        lambda car: car.permissions(),
        lambda car: car.diagnostic_system_status(),
        lambda car: car.diagnostic_trouble_codes(),
        lambda car: car.service_history(),
        lambda car: car.disconnect(),
        lambda car: car.subscribe("hook"),
        lambda car: car.batch(["/odometer", "/permissions"]),
    ],
)
async def test_reads_without_a_v3_equivalent_fail_locally(
    emu: Emulator, client: Client, token: str, call: Any
) -> None:
    car = client.vehicle(emu.fleet.ids[0], access_token=token, api_version="3")
    emu.clear_requests()
    with pytest.raises(CompatibilityError) as caught:
        await call(car)
    assert "v3" in str(caught.value)
    assert emu.requests == []


async def test_make_groups_fail_locally_and_batch_works_for_v3_paths(
    emu: Emulator, client: Client, token: str
) -> None:
    car = client.vehicle(emu.fleet.ids[0], access_token=token, api_version="3")
    with pytest.raises(CompatibilityError, match="tesla"):
        car.tesla  # noqa: B018
    emu.clear_requests()
    result = await car.batch(["odometer", "/vin", "/"])
    assert result["/vin"].vin == emu.fleet.vehicles[0].vin
    assert v3_requests(emu) == [("GET", "signals")]


async def test_handles_keep_their_version_and_refuse_bad_arguments(
    emu: Emulator, client: Client, token: str
) -> None:
    vehicle_id = emu.fleet.ids[0]
    car = client.vehicle(vehicle_id, access_token=token, api_version="3", user_id="u-1")
    twin = car.with_options(deadline=5)
    assert isinstance(twin, VehicleV3)
    assert twin.user_id == "u-1"
    assert twin.options.deadline == 5
    assert type(client.vehicle(vehicle_id, access_token=token)) is Vehicle

    class AppSource:
        application_token = True

        async def token(self) -> str:
            return "x"

        async def refresh(self, refused: str) -> str:
            return "x"

    with pytest.raises(ValueError, match="user_id"):
        client.vehicle(vehicle_id, access_token=AppSource(), api_version="3")
    with pytest.raises(ValueError, match="api_version='3'"):
        client.vehicle(vehicle_id, access_token=AppSource())
    with pytest.raises(ValueError):
        client.vehicle(vehicle_id, access_token=token, user_id="u-1")  # type: ignore[call-overload]
    with pytest.raises(ValueError):
        client.vehicle(vehicle_id, access_token=token, api_version="4")  # type: ignore[call-overload]
    for bad in ("", "a b", "x\n"):
        with pytest.raises(ValueError):
            client.vehicle(vehicle_id, access_token=token, api_version="3", user_id=bad)
