"""Webhook-fed readings: deliveries answer reads with max_age, in order, never errors."""

from __future__ import annotations

import time
from typing import Any

import pytest
from aiohttp import web
from support import TOKEN, serve

import smartcar_async as sc
from smartcar_async import Client, parse_webhook
from smartcar_async.testing import Emulator, SimulatedVehicle

AMT = "amt-SECRET-webhooks"


def _v4(vehicle_id: str, signals: list[dict[str, Any]], delivered_ms: int) -> dict[str, Any]:
    return {
        "eventId": "e1",
        "eventType": "VEHICLE_STATE",
        "data": {"vehicle": {"id": vehicle_id}, "signals": signals},
        "meta": {"version": "4.0", "deliveredAt": delivered_ms, "webhookId": "w"},
    }


def _odometer(km: float, oem_ms: int, retrieved_ms: int) -> dict[str, Any]:
    return {
        "code": "odometer-traveleddistance",
        "body": {"value": km, "unit": "km"},
        "status": {"value": "SUCCESS"},
        "meta": {"oemUpdatedAt": oem_ms, "retrievedAt": retrieved_ms},
    }


def _now_ms() -> int:
    return round(time.time() * 1000)


async def test_a_signed_v2_delivery_answers_reads_without_a_request(
    emu: Emulator, client: Client, ev: SimulatedVehicle
) -> None:
    emu.management_token = AMT

    async def receiver(request: web.Request) -> web.Response:
        raw = await request.read()
        if not sc.verify_payload(AMT, request.headers.get(sc.SIGNATURE_HEADER), raw):
            return web.Response(status=401)
        stored = client.ingest_webhook(parse_webhook(raw))
        return web.json_response({"stored": stored})

    async with serve(receiver) as stub:
        delivery = await emu.deliver_webhook(stub.url, vehicle_ids=[ev.id])
    assert delivery.status == 200
    assert delivery.body == {"stored": 2}
    car = client.vehicle(ev.id, access_token=TOKEN, max_age=60)
    odometer, location = await car.odometer(), await car.location()
    assert emu.billed_requests == 0
    assert odometer.meta.reused
    assert odometer.distance == round(ev.odometer_km)
    assert location.meta.reused
    stats = client.stats
    assert (stats.webhook_readings_ingested, stats.webhook_reused_reads) == (2, 2)
    found = client.readings.lookup(car, "/odometer")
    assert found is not None
    assert found.source == "webhook"
    # Nothing delivered for the battery: that read is sent.
    await car.battery()
    assert emu.billed_requests == 1


async def test_a_v4_delivery_answers_v2_named_reads_and_signals(
    emu: Emulator, client: Client, ev: SimulatedVehicle, v3_token: str
) -> None:
    body = emu._v4_event("w", [ev], time.time(), "VEHICLE_STATE")
    stored = client.ingest_webhook(parse_webhook(body))
    assert stored == 6  # eight listed: the ICE fuel level and the user role are errors
    metric = client.vehicle(ev.id, access_token=TOKEN, max_age=60)
    imperial = client.vehicle(ev.id, access_token=TOKEN, unit_system="imperial", max_age=60)
    v3 = client.vehicle(ev.id, access_token=v3_token, api_version="3", max_age=60)
    km, miles = await metric.odometer(), await imperial.odometer()
    assert km.meta.reused
    assert miles.meta.reused
    assert km.distance == round(round(ev.odometer_km, 1))
    assert miles.distance == round(round(ev.odometer_km, 1) / 1.609344)
    assert (await metric.vin()).vin == ev.vin  # a static value: its time is the delivery's
    attributes = await metric.attributes()
    assert (attributes.make, attributes.meta.reused) == (ev.make, True)
    signal = await v3.get_signal("tractionbattery-stateofcharge")
    assert signal.reused
    assert signal.age is not None
    assert signal.value == round(ev.battery_level * 100)
    assert (await v3.lock_status()).meta.reused
    assert emu.billed_requests == 0


async def test_an_older_or_repeated_delivery_never_replaces_a_newer_reading(
    client: Client, ev: SimulatedVehicle
) -> None:
    now = _now_ms()
    newer = parse_webhook(_v4(ev.id, [_odometer(200.0, now - 1000, now)], now))
    older = parse_webhook(_v4(ev.id, [_odometer(100.0, now - 60_000, now - 50_000)], now))
    assert client.ingest_webhook(newer) == 1
    assert client.ingest_webhook(older) == 0  # late, out of order
    assert client.ingest_webhook(newer) == 0  # at least once: the same delivery again
    car = client.vehicle(ev.id, access_token=TOKEN, max_age=3600)
    assert (await car.odometer()).distance == 200
    newest = parse_webhook(_v4(ev.id, [_odometer(300.0, now, now)], now))
    assert client.ingest_webhook(newest) == 1
    assert (await car.odometer()).distance == 300


async def test_an_older_v2_item_never_replaces_a_newer_one(
    client: Client, ev: SimulatedVehicle
) -> None:
    def delivery(distance: float, data_age: str) -> sc.WebhookPayload:
        item = {
            "path": "/odometer",
            "code": 200,
            "body": {"distance": distance},
            "headers": {"sc-data-age": data_age, "sc-unit-system": "metric"},
        }
        vehicles = [{"vehicleId": ev.id, "data": [item]}]
        return parse_webhook(
            {"version": "2.0", "eventName": "schedule", "payload": {"vehicles": vehicles}}
        )

    assert client.ingest_webhook(delivery(20, "2026-01-01T10:00:00Z")) == 1
    assert client.ingest_webhook(delivery(10, "2026-01-01T09:00:00Z")) == 0
    car = client.vehicle(ev.id, access_token=TOKEN, max_age=60)
    assert (await car.odometer()).distance == 20


async def test_failed_signals_and_items_are_never_stored(
    emu: Emulator, client: Client, ev: SimulatedVehicle
) -> None:
    failed = {
        "code": "odometer-traveleddistance",
        "status": {"value": "ERROR", "error": {"type": "VEHICLE_STATE", "code": "ASLEEP"}},
    }
    assert client.ingest_webhook(parse_webhook(_v4(ev.id, [failed], _now_ms()))) == 0
    item = {"path": "/odometer", "code": 409, "body": {"error": "VEHICLE_STATE"}}
    v2 = {"eventName": "schedule", "payload": {"vehicles": [{"vehicleId": ev.id, "data": [item]}]}}
    assert client.ingest_webhook(parse_webhook(v2)) == 0
    assert len(client.readings) == 0
    car = client.vehicle(ev.id, access_token=TOKEN, max_age=60)
    assert not (await car.odometer()).meta.reused
    assert emu.billed_requests == 1


async def test_verify_events_store_nothing_and_raw_bodies_are_refused(client: Client) -> None:
    verify = {"eventType": "VERIFY", "data": {"challenge": "c"}, "meta": {"version": "4.0"}}
    assert client.ingest_webhook(parse_webhook(verify)) == 0
    with pytest.raises(TypeError, match="parse_webhook"):
        client.ingest_webhook(verify)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="unit_system"):
        client.ingest_webhook(parse_webhook(verify), unit_system="kelvin")  # type: ignore[arg-type]


async def test_readings_answer_no_handle_with_flags(
    emu: Emulator, client: Client, ev: SimulatedVehicle
) -> None:
    now = _now_ms()
    client.ingest_webhook(parse_webhook(_v4(ev.id, [_odometer(5.0, now, now)], now)))
    car = client.vehicle(ev.id, access_token=TOKEN, flags={"country": "DE"}, max_age=60)
    assert not (await car.odometer()).meta.reused
    assert emu.billed_requests == 1


async def test_a_write_drops_the_readings_it_changes(
    emu: Emulator, client: Client, ev: SimulatedVehicle
) -> None:
    client.ingest_webhook(parse_webhook(emu._v4_event("w", [ev], time.time(), "VEHICLE_STATE")))
    car = client.vehicle(ev.id, access_token=TOKEN, max_age=60)
    await car.lock()
    assert not (await car.lock_status()).meta.reused
    assert (await car.odometer()).meta.reused
    assert emu.billed_requests == 2  # the lock, and the lock status after it


async def test_the_fresher_of_a_read_and_a_reading_is_returned(
    emu: Emulator, client: Client, ev: SimulatedVehicle
) -> None:
    car = client.vehicle(ev.id, access_token=TOKEN, max_age=600)
    polled = await car.odometer()
    now = _now_ms()
    late = parse_webhook(_v4(ev.id, [_odometer(1.0, now - 300_000, now - 300_000)], now))
    client.ingest_webhook(late)  # retrieved five minutes ago: older than the poll
    assert (await car.odometer()).distance == polled.distance
    fresh = parse_webhook(_v4(ev.id, [_odometer(2.0, now, now + 500)], now))
    client.ingest_webhook(fresh)
    assert (await car.odometer()).distance == 2
    assert emu.billed_requests == 1
