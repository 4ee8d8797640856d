"""Fidelity check of the emulator's v3 with the official (sync) Smartcar Python SDK.

The SDK reads ``SMARTCAR_VEHICLE_API_V3_ORIGIN`` once, at import, so it runs
in a subprocess started with that variable pointing at a threaded emulator.
Its v3 calls are ``smartcar.smartcar.get_vehicle`` (the README's
``smartcar.get_vehicle`` is not exported by 6.19.1), ``Vehicle.get_signals``
and ``Vehicle.get_signal``; each returns ``{"body": <parsed JSON>,
"headers": ...}``. The child prints what it got as JSON for the test to check.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import smartcar

from smartcar_async.testing import Emulator

_CHILD = r"""
import json, sys
import smartcar
import smartcar.smartcar
from smartcar import SmartcarException

vehicle_id, token = sys.argv[1], sys.argv[2]
out = {"exported": hasattr(smartcar, "get_vehicle")}
vehicle = smartcar.smartcar.get_vehicle(token, vehicle_id)
out["vehicle"] = vehicle["body"]
out["vehicle_content_type"] = vehicle["headers"]["Content-Type"]
car = smartcar.Vehicle(vehicle_id, token)
signals = car.get_signals()
out["signals"] = signals["body"]
out["signal"] = car.get_signal("odometer-traveleddistance")["body"]
try:
    car.get_signal("no-such-signal")
except SmartcarException as exc:
    out["error"] = {"status_code": exc.status_code, "type": exc.type, "message": exc.message}
print(json.dumps(out))
"""


def _run_sdk(emu: Emulator, vehicle_id: str) -> dict[str, object]:
    env = {
        key: value
        for key, value in os.environ.items()
        if key.lower() not in ("http_proxy", "https_proxy", "all_proxy")
    }
    env["NO_PROXY"] = "127.0.0.1,localhost"
    env["SMARTCAR_VEHICLE_API_V3_ORIGIN"] = emu.vehicle_api_url
    root = str(Path(__file__).resolve().parents[2])
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [root, env.get("PYTHONPATH")]))
    done = subprocess.run(
        [sys.executable, "-c", _CHILD, vehicle_id, "sdk-token"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    result: dict[str, object] = json.loads(done.stdout)
    return result


@pytest.mark.smartcar_emulator(vehicles=4, seed=3)
def test_official_sdk_v3_calls_parse(smartcar_emulator: Emulator) -> None:
    assert smartcar.__version__.startswith("6.")
    emu = smartcar_emulator
    car = emu.fleet.with_powertrain("EV")[0]
    out = _run_sdk(emu, car.id)
    assert out["exported"] is False

    vehicle = out["vehicle"]
    assert isinstance(vehicle, dict)
    assert vehicle["data"]["id"] == car.id
    assert vehicle["data"]["attributes"]["make"] == car.make
    assert out["vehicle_content_type"] == "application/json"

    signals = out["signals"]
    assert isinstance(signals, dict)
    assert [s["id"] for s in signals["data"]] == list(emu.signal_codes)
    assert signals["meta"]["totalCount"] == len(emu.signal_codes)

    signal = out["signal"]
    assert isinstance(signal, dict)
    assert signal["data"]["attributes"]["code"] == "odometer-traveleddistance"
    assert signal["data"]["attributes"]["body"]["unit"] == "km"

    # The SDK turns a v3 error document into an SDK_ERROR carrying the raw body.
    error = out["error"]
    assert isinstance(error, dict)
    assert error["status_code"] == 404
    assert "SIGNAL_NOT_FOUND" in error["message"]

    sent = [r for r in emu.requests if r.path.startswith("/v3/")]
    assert [r.path for r in sent] == [
        f"/v3/vehicles/{car.id}",
        f"/v3/vehicles/{car.id}/signals",
        f"/v3/vehicles/{car.id}/signals/odometer-traveleddistance",
        f"/v3/vehicles/{car.id}/signals/no-such-signal",
    ]
    assert sent[1].headers["sc-unit-system"] == "metric"
    assert all(r.headers["Authorization"] == "Bearer sdk-token" for r in sent)
