"""v3 charge schedules: daily, weekly, workweek and delete, over loopback to the emulator."""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Awaitable, Callable
from typing import Any, TypedDict

import pytest
from aiohttp import web
from v3_support import make_v3_client, serve, v3_requests

from smartcar_async import (
    Action,
    ChargeWindow,
    Client,
    CommandResult,
    CompatibilityError,
    InvalidResponseError,
    PermissionDeniedError,
    ResourceNotFoundError,
    ScheduleResult,
    ServerError,
    ValidationError,
    VehicleV3,
)
from smartcar_async.testing import Emulator, SimulatedVehicle


class Where(TypedDict):
    latitude: float
    longitude: float


HOME: Where = {"latitude": 37.77, "longitude": -122.42}


def _car(client: Client, vehicle: SimulatedVehicle, token: str) -> VehicleV3:
    car = client.vehicle(vehicle.id, access_token=token, api_version="3")
    assert isinstance(car, VehicleV3)
    return car


async def test_each_schedule_command_goes_to_its_path_with_its_body(
    emu: Emulator, client: Client, ev: SimulatedVehicle, token: str
) -> None:
    car = _car(client, ev, token)
    emu.clear_requests()
    daily = await car.set_daily_charge_schedule("22:00", dt.time(6, 30), **HOME)
    weekly = await car.set_weekly_charge_schedule(
        {"Friday": ChargeWindow("23:00", "05:00"), 0: (dt.time(1), "04:15")}, **HOME
    )
    workweek = await car.set_workweek_charge_schedule(
        weekdays=("22:00", "06:00"), weekends=ChargeWindow(dt.time(13), dt.time(15)), **HOME
    )
    for result, kind in ((daily, "daily"), (weekly, "weekly"), (workweek, "workweek")):
        assert isinstance(result, ScheduleResult)
        assert isinstance(result, CommandResult)
        assert isinstance(result, Action)
        assert result.status == "SUCCESS"
        assert not result.running
        assert result.action == "create"
        assert result.schedule_type == kind
        assert result.schedule_id is not None
    held = emu.charge_schedules(ev.id)
    assert set(held) == {daily.schedule_id, weekly.schedule_id, workweek.schedule_id}
    location = {"latitude": 37.77, "longitude": -122.42}
    sent = [r for r in emu.requests if r.path.startswith("/v3/")]
    assert [(r.method, r.path.split(ev.id, 1)[1]) for r in sent] == [
        ("POST", "/charge-schedules/daily"),
        ("POST", "/charge-schedules/weekly"),
        ("POST", "/charge-schedules/workweek"),
    ]
    assert sent[0].body == {
        "data": {"attributes": {"location": location, "startTime": "22:00", "stopTime": "06:30"}}
    }
    # Monday first, whatever order the caller gave.
    assert sent[1].body == {
        "data": {
            "attributes": {
                "location": location,
                "days": {
                    "monday": {"startTime": "01:00", "stopTime": "04:15"},
                    "friday": {"startTime": "23:00", "stopTime": "05:00"},
                },
            }
        }
    }
    assert sent[2].body["data"]["attributes"]["weekends"] == {
        "startTime": "13:00",
        "stopTime": "15:00",
    }
    assert daily.parameters is not None
    assert daily.parameters["stopTime"] == "06:30"

    assert daily.schedule_id is not None
    deleted = await car.delete_charge_schedule(daily.schedule_id)
    assert deleted.action == "delete"
    assert deleted.schedule_id == daily.schedule_id
    assert deleted.schedule_type == "daily"
    assert daily.schedule_id not in emu.charge_schedules(ev.id)
    assert v3_requests(emu)[-1] == ("DELETE", f"charge-schedules/{daily.schedule_id}")


async def test_deleting_an_unknown_schedule_is_404_and_costs_nothing(
    emu: Emulator, client: Client, ev: SimulatedVehicle, token: str
) -> None:
    car = _car(client, ev, token)
    created = await car.set_daily_charge_schedule("01:00", "02:00", **HOME)
    assert created.schedule_id is not None
    await car.delete_charge_schedule(created.schedule_id)
    billed = emu.billed_requests
    for schedule_id in (created.schedule_id, "sched_never"):
        with pytest.raises(ResourceNotFoundError) as caught:
            await car.delete_charge_schedule(schedule_id)
        assert caught.value.status_code == 404
        assert caught.value.code == "SCHEDULE_NOT_FOUND"
    assert emu.billed_requests == billed


def _bad_calls(car: VehicleV3) -> list[tuple[type[Exception], Callable[[], Awaitable[Any]]]]:
    daily, weekly = car.set_daily_charge_schedule, car.set_weekly_charge_schedule
    workweek, delete = car.set_workweek_charge_schedule, car.delete_charge_schedule
    loose: Any = car  # calls a type checker would refuse
    return [
        (ValueError, lambda: daily("24:00", "06:00", **HOME)),
        (ValueError, lambda: daily("7:00", "08:00", **HOME)),
        (ValueError, lambda: daily("07:00:00", "08:00", **HOME)),
        (ValueError, lambda: daily(dt.time(7, 0, 30), "08:00", **HOME)),
        (ValueError, lambda: daily(dt.time(7, tzinfo=dt.UTC), "08:00", **HOME)),
        (ValueError, lambda: daily("07:00", "07:00", **HOME)),
        (TypeError, lambda: loose.set_daily_charge_schedule(700, "08:00", **HOME)),
        (
            TypeError,
            lambda: loose.set_daily_charge_schedule(dt.datetime(2026, 1, 1), "08:00", **HOME),
        ),
        (ValueError, lambda: daily("07:00", "08:00", latitude=91, longitude=0)),
        (ValueError, lambda: daily("07:00", "08:00", latitude=0, longitude=-180.5)),
        (ValueError, lambda: daily("07:00", "08:00", latitude=float("nan"), longitude=0)),
        (
            TypeError,
            lambda: loose.set_daily_charge_schedule("07:00", "08:00", latitude="1", longitude=0),
        ),
        (ValueError, lambda: weekly({}, **HOME)),
        (ValueError, lambda: weekly({"funday": ("01:00", "02:00")}, **HOME)),
        (ValueError, lambda: weekly({7: ("01:00", "02:00")}, **HOME)),
        (ValueError, lambda: weekly({"monday": ("01:00", "02:00"), 0: ("03:00", "04:00")}, **HOME)),
        (ValueError, lambda: weekly({"sunday": ("01:00", "25:00")}, **HOME)),
        (TypeError, lambda: loose.set_weekly_charge_schedule({True: ("01:00", "02:00")}, **HOME)),
        (TypeError, lambda: loose.set_weekly_charge_schedule({"monday": "01:00-02:00"}, **HOME)),
        (TypeError, lambda: loose.set_weekly_charge_schedule([("monday", "01:00")], **HOME)),
        (ValueError, lambda: workweek(**HOME)),
        (TypeError, lambda: loose.set_workweek_charge_schedule(weekdays=("01:00",), **HOME)),
        (ValueError, lambda: delete("")),
        (ValueError, lambda: delete("../signals")),
        (ValueError, lambda: delete("sched 1")),
        (ValueError, lambda: delete("x" * 300)),
        (TypeError, lambda: loose.delete_charge_schedule(12)),
    ]


async def test_inputs_are_checked_before_any_request(
    emu: Emulator, client: Client, ev: SimulatedVehicle, token: str
) -> None:
    car = _car(client, ev, token)
    emu.clear_requests()
    for expected, call in _bad_calls(car):
        with pytest.raises(expected):
            await call()
    assert emu.requests == []
    assert emu.charge_schedules(ev.id) == {}


def test_a_charge_window_keeps_times_and_refuses_an_empty_one() -> None:
    window = ChargeWindow("22:00", dt.time(6))
    assert window.start == dt.time(22, 0)
    assert window.stop == dt.time(6, 0)
    assert window == ChargeWindow(dt.time(22), "06:00")
    assert window.to_wire() == {"startTime": "22:00", "stopTime": "06:00"}
    with pytest.raises(ValueError):
        ChargeWindow("06:00", dt.time(6))


async def test_makes_that_cannot_answer_the_compatibility_error_of_other_commands(
    emu: Emulator, client: Client, ev: SimulatedVehicle, ice: SimulatedVehicle, token: str
) -> None:
    tesla = _car(client, ev, token)
    created = await tesla.set_daily_charge_schedule("01:00", "02:00", **HOME)
    assert created.schedule_id is not None
    ev.make = "VOLVO"  # Volvo: daily only
    volvo_daily = await tesla.set_daily_charge_schedule("03:00", "04:00", **HOME)
    assert volvo_daily.schedule_type == "daily"
    with pytest.raises(CompatibilityError) as weekly:
        await tesla.set_weekly_charge_schedule({"monday": ("01:00", "02:00")}, **HOME)
    with pytest.raises(CompatibilityError):
        await tesla.set_workweek_charge_schedule(weekdays=("01:00", "02:00"), **HOME)
    ev.make = "KIA"
    with pytest.raises(CompatibilityError) as daily:
        await tesla.set_daily_charge_schedule("01:00", "02:00", **HOME)
    with pytest.raises(CompatibilityError):
        await tesla.delete_charge_schedule(created.schedule_id)
    ev.make = "TESLA"
    ev.capabilities.discard("/charge")  # as open_charge_port() on a car that cannot
    with pytest.raises(CompatibilityError) as port:
        await tesla.open_charge_port()
    with pytest.raises(CompatibilityError) as cannot_charge:
        await tesla.set_daily_charge_schedule("01:00", "02:00", **HOME)
    with pytest.raises(CompatibilityError):
        await _car(client, ice, token).set_daily_charge_schedule("01:00", "02:00", **HOME)
    for caught in (weekly, daily, cannot_charge):
        assert (caught.value.type, caught.value.code, caught.value.status_code) == (
            port.value.type,
            port.value.code,
            port.value.status_code,
        )
    assert port.value.status_code == 501
    assert set(emu.charge_schedules(ev.id)) == {created.schedule_id, volvo_daily.schedule_id}


async def test_without_control_charge_a_schedule_is_permission_denied(
    emu: Emulator, client: Client, ev: SimulatedVehicle
) -> None:
    token = emu.issue_tokens(scopes=["read_vehicle_info", "control_security"]).access_token
    car = _car(client, ev, token)
    with pytest.raises(PermissionDeniedError):
        await car.set_daily_charge_schedule("01:00", "02:00", **HOME)


async def test_the_emulator_validates_bodies_sent_by_hand(
    client: Client, ev: SimulatedVehicle, token: str
) -> None:
    car = _car(client, ev, token)
    location = {"latitude": 1, "longitude": 2}
    bad = [
        ("daily", {}),
        ("daily", {"location": location, "startTime": "7:00", "stopTime": "08:00"}),
        ("daily", {"startTime": "07:00", "stopTime": "08:00"}),
        ("weekly", {"location": location, "days": {"someday": {"startTime": "01:00"}}}),
        ("weekly", {"location": location, "days": {}}),
        ("workweek", {"location": location}),
    ]
    for kind, attributes in bad:
        with pytest.raises(ValidationError) as caught:
            await car.request(
                "POST", f"/charge-schedules/{kind}", body={"data": {"attributes": attributes}}
            )
        assert caught.value.status_code == 400
    answer = await car.request(
        "POST",
        "/charge-schedules/weekly",
        body={
            "data": {
                "attributes": {
                    "location": location,
                    "days": {"SUNDAY": {"startTime": "01:00", "stopTime": "02:00"}},
                }
            }
        },
    )
    assert answer.body["data"]["attributes"]["parameters"]["days"] == {
        "sunday": {"startTime": "01:00", "stopTime": "02:00"}
    }


async def test_a_held_schedule_returns_its_final_result(
    emu: Emulator, client: Client, ev: SimulatedVehicle, token: str
) -> None:
    car = _car(client, ev, token)
    emu.slow_command_seconds = 0.05
    created = await car.set_workweek_charge_schedule(weekends=("10:00", "12:00"), **HOME)
    assert created.http_status == 202
    assert created.execution_mode == "async"
    assert not created.running
    assert created.schedule_id in emu.charge_schedules(ev.id)
    # An unknown id is refused before the hold, as an HTTP 404.
    with pytest.raises(ResourceNotFoundError):
        await car.delete_charge_schedule("sched_missing")


async def test_schedule_writes_are_never_coalesced_nor_retried(
    emu: Emulator, ev: SimulatedVehicle, token: str
) -> None:
    async with make_v3_client(emu, max_retries=3, retry_backoff=0.01) as client:
        car = _car(client, ev, token)
        emu.clear_requests()
        same = await asyncio.gather(
            *(car.set_daily_charge_schedule("22:00", "06:00", **HOME) for _ in range(3)),
            car.battery(),
        )
        ids = {result.schedule_id for result in same[:3] if isinstance(result, ScheduleResult)}
        assert len(ids) == 3
        assert (
            sorted(v3_requests(emu))
            == [("GET", "signals")] + [("POST", "charge-schedules/daily")] * 3
        )
        emu.inject(type="SERVER", code="INTERNAL", path="/v3/charge-schedules/daily", times=1)
        emu.clear_requests()
        with pytest.raises(ServerError):
            await car.set_daily_charge_schedule("22:00", "06:00", **HOME)
        assert v3_requests(emu) == [("POST", "charge-schedules/daily")]
        assert client.stats.retries == 0


async def test_secrets_stay_out_of_schedule_errors(
    emu: Emulator, client: Client, ev: SimulatedVehicle, token: str
) -> None:
    app_token = emu.issue_app_token()
    cars = [
        _car(client, ev, token),
        client.vehicle(ev.id, access_token=app_token, user_id=ev.user_id, api_version="3"),
    ]
    for car in cars:
        assert isinstance(car, VehicleV3)
        raised: list[BaseException] = []
        for call in _bad_calls(car)[:3]:
            with pytest.raises(Exception) as caught:
                await call[1]()
            raised.append(caught.value)
        with pytest.raises(ResourceNotFoundError) as missing:
            await car.delete_charge_schedule("sched_missing")
        ev.make = "KIA"
        with pytest.raises(CompatibilityError) as incompatible:
            await car.set_daily_charge_schedule("01:00", "02:00", **HOME)
        ev.make = "TESLA"
        raised += [missing.value, incompatible.value]
        for error in raised:
            fields = getattr(error, "errors", ())
            text = f"{error} {error!r} {error.args!r} {fields!r}"
            assert token not in text
            assert app_token not in text
        assert token not in repr(car)
        assert app_token not in repr(car)


async def test_answers_the_emulator_does_not_give_are_read_too() -> None:
    async def handler(request: web.Request) -> web.StreamResponse:
        if request.method == "DELETE":
            return web.Response(status=204)
        if request.path.endswith("/daily"):
            # Only the link names the schedule.
            data = {
                "id": "exec_1",
                "type": "charge-schedule-execution",
                "attributes": {"status": {"value": "SUCCESS"}, "scheduleType": "daily"},
                "links": {"schedule": "/vehicles/car/charge-schedules/sched_link"},
            }
            return web.json_response({"data": data})
        if request.path.endswith("/weekly"):
            return web.Response(status=202)
        bad = {"data": {"attributes": {"scheduleId": 12}}}
        return web.json_response(bad)

    async with serve(handler) as stub, Client(vehicle_api_origin=stub.url) as client:
        car = client.vehicle("car", access_token="t", api_version="3")
        assert isinstance(car, VehicleV3)
        linked = await car.set_daily_charge_schedule("01:00", "02:00", **HOME)
        running = await car.set_weekly_charge_schedule({"monday": ("01:00", "02:00")}, **HOME)
        deleted = await car.delete_charge_schedule("sched_9")
        with pytest.raises(InvalidResponseError) as invalid:
            await car.set_workweek_charge_schedule(weekdays=("01:00", "02:00"), **HOME)
    assert linked.schedule_id == "sched_link"
    assert linked.action == "create"
    assert running.running
    assert running.http_status == 202
    assert running.schedule_id is None
    assert deleted.http_status == 204
    assert deleted.schedule_id == "sched_9"
    assert deleted.action == "delete"
    assert not deleted.running
    assert "scheduleId" in str(invalid.value)
