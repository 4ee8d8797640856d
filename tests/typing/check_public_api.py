"""The public API's types are part of the contract: mypy --strict checks this file in CI.

It is never executed; `assert_type` fails type checking when a signature drifts.
"""

from __future__ import annotations

from datetime import datetime
from typing import assert_type

import smartcar_async as sc


async def reads(client: sc.Client) -> None:
    car = client.vehicle("id", access_token="token", unit_system="imperial")
    assert_type(car, sc.Vehicle)
    assert_type(await car.odometer(), sc.Odometer)
    assert_type((await car.odometer()).distance, float)
    assert_type((await car.location()).latitude, float)
    assert_type(await car.battery(), sc.Battery)
    assert_type((await car.fuel()).amount_remaining, float | None)
    assert_type((await car.lock_status()).doors, tuple[sc.OpenStatus, ...])
    assert_type(await car.permissions(limit=10), sc.Permissions)
    assert_type(await car.service_history(), sc.ServiceHistory)
    assert_type(await car.batch(["/odometer"]), sc.BatchResponse)
    assert_type(await car.request("GET", "tesla/compass"), sc.Response)
    assert_type(await car.tesla.compass(), sc.Compass)
    assert_type(car.with_options(deadline=30), sc.Vehicle)
    assert_type(client.stats.coalescing_ratio, float)


async def writes(client: sc.Client) -> None:
    car = client.vehicle("id", access_token="token")
    assert_type(await car.lock(), sc.Action)
    assert_type(await car.set_charge_limit(0.8), sc.Action)
    assert_type(await car.send_destination(48.85, 2.35), sc.Action)
    assert_type(await car.disconnect(), sc.Status)
    assert_type(await car.subscribe("webhook"), sc.Subscribe)


async def tokens_and_errors(auth: sc.AuthClient, access: sc.Access) -> None:
    source = sc.RefreshingTokenSource(auth, access)
    async with sc.Client(request_budget=sc.RequestBudget(), max_retries=0) as client:
        car = client.vehicle("id", access_token=source)
        try:
            await car.odometer()
        except sc.RateLimitError as exc:
            assert_type(exc.retry_after, float | None)
        except sc.SmartcarError as exc:
            assert_type(exc.request_id, str | None)
    assert_type(await auth.exchange_code("code"), sc.Access)
    assert_type(await sc.get_vehicles("token"), sc.Vehicles)


def webhooks_and_nullable_fields(raw: bytes, battery: sc.TeslaBattery) -> None:
    payload = sc.parse_webhook(raw)
    assert_type(payload, sc.WebhookPayload)
    assert_type(payload.signals, tuple[sc.WebhookSignal, ...])
    assert_type(payload.signals[0].retrieved_at, datetime | None)
    assert_type(payload.delivered_at, datetime | None)
    assert_type(battery.percent_remaining, float | None)
