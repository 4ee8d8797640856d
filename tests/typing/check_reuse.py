"""The reuse API's types: mypy --strict checks this file in CI (never executed)."""

from __future__ import annotations

from typing import assert_type

import smartcar_async as sc


async def reuse(payload: sc.WebhookPayload) -> None:
    async with sc.Client(cache_size=1000) as client:
        car = client.vehicle("v", access_token="t", max_age=300)
        assert_type(car, sc.Vehicle)
        v3 = client.vehicle("v", access_token="t", api_version="3", max_age=60.0)
        assert_type(v3, sc.VehicleV3)
        assert_type(car.max_age, float | None)
        assert_type(car.with_options(max_age=None), sc.Vehicle)
        assert_type(v3.with_options(max_age=30), sc.VehicleV3)
        odometer = await car.odometer()
        assert_type(odometer.meta.reused, bool)
        assert_type(odometer.meta.age, float | None)
        signal = await v3.get_signal("odometer-traveleddistance")
        assert_type(signal.reused, bool)
        assert_type(client.readings, sc.ReadingCache)
        assert_type(client.readings.is_fresh(car, "/odometer", max_age=300), bool)
        found = client.readings.lookup(car, "/odometer")
        assert_type(found, sc.Reading | None)
        if found is not None:
            assert_type(found.age, float)
        assert_type(client.ingest_webhook(payload), int)
        client.ingest_webhook(payload, unit_system="kelvin")  # type: ignore[arg-type]
        stats = client.stats
        assert_type(stats.reused_reads + stats.webhook_reused_reads, int)
        assert_type(stats.webhook_readings_ingested, int)
