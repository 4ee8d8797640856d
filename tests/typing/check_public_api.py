"""The public API's types are part of the contract: mypy --strict checks this file in CI.

It is never executed; `assert_type` fails type checking when a signature drifts.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, assert_type

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


async def app_tokens(client: sc.Client) -> None:
    async with sc.AppTokenSource(iam_origin="http://127.0.0.1:1", refresh_margin=60) as source:
        assert_type(await source.token(), str)
        assert_type(await source.refresh("stale"), str)
        assert_type(source.expires_in, float | None)
        assert_type(source.application_token, bool)
        token_source: sc.TokenSource = source
        client.vehicle("id", access_token=token_source)


async def state(path: str, access: sc.Access) -> None:
    async with sc.SQLiteState(path) as store:
        assert_type(store, sc.SQLiteState)
        generic: sc.StateStore = store  # the protocol the poller programs against
        lineage = sc.token_lineage("refresh-token-from-the-file")
        assert_type(lineage, str)
        assert_type(await generic.load_tokens(lineage), sc.StoredTokens | None)
        pair = sc.StoredTokens.from_access(access)
        assert_type(await generic.save_tokens(lineage, pair, replacing=None), bool)
        assert_type(pair.refresh_expires_at, datetime | None)
        record = sc.VehicleRecord(next_due=1.8e9, failures=1).with_parked(
            "odometer", sc.ParkedRead(reason="PERMISSION", until=1.8e9)
        )
        assert_type(record.parked["odometer"].until, float)
        assert_type(await generic.save_vehicles({"id": record}), None)
        assert_type(await generic.load_vehicles(["id"]), dict[str, sc.VehicleRecord])
        try:
            await generic.aclose()
        except sc.StateError as exc:
            assert_type(exc, sc.StateError)


async def literal_names(client: sc.Client) -> None:
    car = client.vehicle("id", access_token="token", unit_system="imperial")
    assert_type(car.unit_system, sc.UnitSystem)
    client.vehicle("id", access_token="token", unit_system=car.unit_system)
    reads: tuple[sc.ReadName, ...] = ("odometer", "location")
    sc.FleetPoller(reads=reads, interval=300)
    sc.FleetPoller(reads=["odometer", "battery", "lock_status"], interval=300)
    # A typo fails type checking: mypy --strict warns about an unused ignore, so
    # each line below proves its error is still reported.
    client.vehicle("id", access_token="token", unit_system="metrc")  # type: ignore[call-overload]
    sc.FleetPoller(reads=("odometr",), interval=300)  # type: ignore[arg-type]
    sc.FleetPoller(reads="odometer", interval=300)  # type: ignore[arg-type]


async def batch_outcomes(car: sc.Vehicle) -> None:
    response = await car.batch(["/odometer", "/fuel"])
    assert_type(response.outcomes, dict[str, Any])
    assert_type(response.models, dict[str, Any])
    assert_type(response.errors, dict[str, sc.SmartcarError])
    assert_type("/odometer" in response, bool)
    assert_type(response["/odometer"], Any)
    response.get("/odometer")  # type: ignore[attr-defined]  # not a Mapping: use .outcomes
    assert_type(response.odometer(), sc.Odometer)
    assert_type(response.lock_status(), sc.LockStatus)
    assert_type(response.get_charge_limit(), sc.ChargeLimit)
    response.odometr()  # type: ignore[attr-defined]  # a typo is caught


def webhooks_and_nullable_fields(raw: bytes, battery: sc.TeslaBattery) -> None:
    payload = sc.parse_webhook(raw)
    assert_type(payload, sc.WebhookPayload)
    assert_type(payload.signals, tuple[sc.WebhookSignal, ...])
    assert_type(payload.signals[0].retrieved_at, datetime | None)
    assert_type(payload.delivered_at, datetime | None)
    assert_type(battery.percent_remaining, float | None)


async def api_v3(client: sc.Client) -> None:
    car = client.vehicle("id", access_token="token", api_version="3", user_id="user")
    assert_type(car, sc.VehicleV3)
    assert_type(client.vehicle("id", access_token="token", api_version="2.0"), sc.Vehicle)
    signals = await car.get_signals()
    assert_type(signals, sc.Signals)
    assert_type(signals.meta, sc.SignalsMeta)
    assert_type(signals["odometer-traveleddistance"], sc.Signal)
    signal = await car.get_signal("odometer-traveleddistance")
    assert_type(signal.value, Any)
    assert_type(signal.error, sc.SmartcarError | None)
    assert_type(signal.oem_updated_at, datetime | None)
    assert_type(await car.odometer(), sc.Odometer)  # v2-named reads, v2 models
    assert_type(await car.lock(), sc.CommandResult)
    assert_type((await car.set_charge_limit(0.8)).running, bool)
    assert_type(car.with_options(deadline=30), sc.VehicleV3)
    assert_type(client.vehicle_api_origin, str)
    try:
        await car.get_signal("vehicleidentification-vin")
    except sc.APIError as exc:
        assert_type(exc.errors, tuple[sc.SmartcarError, ...])
