"""Make-specific endpoints against the emulator: typed, grouped per make, reads coalesced."""

from __future__ import annotations

import asyncio

import pytest

import smartcar_async
from smartcar_async._models_makes import (
    BmwChargeRecords,
    CabinClimate,
    ChargeAmmeter,
    ChargeCompletion,
    ChargeVoltmeter,
    ChargeWattmeter,
    Compass,
    FordChargeScheduleByLocation,
    NissanChargeSchedule,
    Speedometer,
    TeslaAttributes,
    TeslaBattery,
    TeslaChargeSchedule,
    Thermometer,
)
from smartcar_async.testing import Emulator


def _first(emu: Emulator, make: str) -> str:
    return next(v.id for v in emu.fleet.vehicles if v.make == make)


async def test_tesla_reads_are_typed_and_coalesced() -> None:
    async with (
        Emulator(vehicles=8, seed=3) as emu,
        smartcar_async.Client(api_origin=emu.url, max_retries=0) as client,
    ):
        car = client.vehicle(_first(emu, "TESLA"), access_token="t")
        emu.clear_requests()
        results = await asyncio.gather(
            car.tesla.compass(),
            car.tesla.speedometer(),
            car.tesla.exterior_thermometer(),
            car.tesla.interior_thermometer(),
            car.tesla.cabin_climate(),
            car.tesla.battery(),
            car.tesla.attributes(),
            car.tesla.charge_ammeter(),
            car.tesla.charge_wattmeter(),
            car.tesla.charge_voltmeter(),
            car.tesla.charge_completion(),
            car.tesla.charge_schedule(),
            car.odometer(),
        )
        expected = (
            Compass,
            Speedometer,
            Thermometer,
            Thermometer,
            CabinClimate,
            TeslaBattery,
            TeslaAttributes,
            ChargeAmmeter,
            ChargeWattmeter,
            ChargeVoltmeter,
            ChargeCompletion,
            TeslaChargeSchedule,
        )
        for result, model in zip(results, expected, strict=False):
            assert isinstance(result, model)
        assert [r.path.rsplit("/", 1)[-1] for r in emu.requests] == ["batch"]
        paths = [item["path"] for item in emu.requests[0].body["requests"]]
        assert "/tesla/compass" in paths
        assert "/odometer" in paths


async def test_tesla_writes_go_alone_and_validate() -> None:
    async with (
        Emulator(vehicles=8, seed=3) as emu,
        smartcar_async.Client(api_origin=emu.url, max_retries=0) as client,
    ):
        car = client.vehicle(_first(emu, "TESLA"), access_token="t")
        emu.clear_requests()
        action = await car.tesla.set_charge_ammeter(32)
        assert action.status == "success"
        await car.tesla.set_charge_schedule("START_TIME", enabled=True, time="18:30")
        schedule = await car.tesla.charge_schedule()
        assert schedule.start_time is not None
        assert schedule.start_time.time == "18:30"
        assert [r.method for r in emu.requests] == ["POST", "POST", "GET"]
        with pytest.raises(ValueError, match="HH:mm"):
            await car.tesla.set_charge_schedule("START_TIME", enabled=True, time="25:99")
        with pytest.raises(ValueError, match="amperage"):
            await car.tesla.set_charge_ammeter(-1)
        assert len(emu.requests) == 3


async def test_other_makes() -> None:
    async with (
        Emulator(vehicles=8, seed=3) as emu,
        smartcar_async.Client(api_origin=emu.url, max_retries=0) as client,
    ):
        nissan = client.vehicle(_first(emu, "NISSAN"), access_token="t")
        assert isinstance(await nissan.nissan.charge_schedule(), NissanChargeSchedule)
        updated = await nissan.nissan.set_charge_schedule(
            [{"start": "01:00", "end": "05:00", "days": ["monday", "friday"]}]
        )
        assert isinstance(updated, NissanChargeSchedule)
        ford = client.vehicle(_first(emu, "FORD"), access_token="t")
        with pytest.raises(smartcar_async.CompatibilityError):
            await ford.ford.charge_schedule_by_location()  # the F-150 is not electric
        bmw = client.vehicle(_first(emu, "BMW"), access_token="t")
        assert isinstance(await bmw.bmw.charge_records(), BmwChargeRecords)
        assert isinstance(
            await bmw.bmw.charge_records("2026-01-01", "2026-06-30"), BmwChargeRecords
        )
        audi = client.vehicle(_first(emu, "AUDI"), access_token="t")
        assert isinstance((await audi.audi.charge()).body, dict)
        for make in ("CHEVROLET", "CADILLAC"):
            gm = client.vehicle(_first(emu, make), access_token="t")
            group = gm.chevrolet if make == "CHEVROLET" else gm.cadillac
            assert isinstance(await group.charge_voltmeter(), ChargeVoltmeter)
            assert isinstance(await group.charge_completion(), ChargeCompletion)
        # The wrong make is refused by the API, as Smartcar does, with a typed error.
        with pytest.raises(smartcar_async.PermissionDeniedError):
            await bmw.tesla.compass()


async def test_ford_schedule_by_location_on_an_electric_ford() -> None:
    async with (
        Emulator(vehicles=60, seed=5) as emu,
        smartcar_async.Client(api_origin=emu.url, max_retries=0) as client,
    ):
        electric = [v for v in emu.fleet.vehicles if v.make == "FORD" and v.powertrain != "ICE"]
        if not electric:
            pytest.skip("no electric Ford in this seeded fleet")
        car = client.vehicle(electric[0].id, access_token="t")
        schedule = await car.ford.charge_schedule_by_location()
        assert isinstance(schedule, FordChargeScheduleByLocation)
        location = schedule.charging_locations[0].location if schedule.charging_locations else None
        lat, lon = (location.latitude, location.longitude) if location else (48.85, 2.35)
        action = await car.ford.set_charge_schedule_by_location(
            lat, lon, charge_limit=0.8, weekday=[("09:00", "17:00")]
        )
        assert action.status == "success"
        with pytest.raises(ValueError, match="latitude"):
            await car.ford.set_charge_schedule_by_location(91, 0)
