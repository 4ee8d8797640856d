"""Lifecycle, threading, the request log, the fleet, the CLI and the pytest plugin."""

from __future__ import annotations

import asyncio
import base64
import importlib.util
import json
import os
import re
import signal
import subprocess
import sys
import textwrap
import threading
import time
import urllib.request
import uuid
from collections import Counter
from pathlib import Path

import aiohttp
import pytest
from emu_support import Api

import smartcar_async.testing as testing
from smartcar_async.testing import Emulator, RecordedRequest

REPO = Path(testing.__file__).resolve().parents[2]


def subprocess_env() -> dict[str, str]:
    # The package may not be installed: make the checkout importable in children.
    path = os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))
    return {**os.environ, "PYTHONPATH": path, "PYTHONWARNINGS": "error"}


def test_public_names() -> None:
    assert testing.__all__ == sorted(testing.__all__)
    for name in testing.__all__:
        assert getattr(testing, name).__module__ == "smartcar_async.testing"
        assert getattr(testing, name).__doc__
    with pytest.raises(AttributeError):
        _ = testing.NotAThing


async def test_lifecycle_rules() -> None:
    emu = Emulator(vehicles=1)
    with pytest.raises(RuntimeError, match="not running"):
        _ = emu.url
    async with emu:
        assert emu.running
        assert re.fullmatch(r"http://127\.0\.0\.1:\d+", emu.url)
        with pytest.raises(RuntimeError):
            await emu.start()
    assert not emu.running
    await emu.aclose()  # idempotent
    with pytest.raises(RuntimeError, match="closed"):
        await emu.start()
    with pytest.raises(RuntimeError), emu.in_thread():
        pass


async def test_shutdown_releases_held_requests(session: aiohttp.ClientSession) -> None:
    emu = Emulator(vehicles=1, latency=60.0)
    await emu.start()
    url = f"{emu.url}/v2.0/vehicles"
    pending = asyncio.ensure_future(session.get(url, headers={"Authorization": "Bearer t"}))
    await asyncio.sleep(0.2)
    started = time.perf_counter()
    await emu.aclose()
    assert time.perf_counter() - started < 5
    try:
        response = await asyncio.wait_for(pending, 5)
        response.release()
    except aiohttp.ClientError:
        pass  # a connection closed by shutdown is a fine outcome too


async def test_threaded_emulator_inside_an_async_test(session: aiohttp.ClientSession) -> None:
    before = threading.active_count()
    with Emulator(vehicles=3, seed=9).in_thread() as emu:
        assert emu.running
        api = Api(emu, session)
        # Served from another loop in another thread: this loop stays free.
        replies = await asyncio.gather(*(api.vget(v, "/vin") for v in emu.fleet.ids))
        assert [r.body["vin"] for r in replies] == [v.vin for v in emu.fleet]
    assert not emu.running
    assert threading.active_count() == before


def test_threaded_emulator_from_sync_code() -> None:
    with Emulator(vehicles=2).in_thread() as emu:
        request = urllib.request.Request(
            f"{emu.url}/v2.0/vehicles", headers={"Authorization": "Bearer x"}
        )
        with urllib.request.urlopen(request, timeout=10) as response:
            assert json.load(response)["vehicles"] == emu.fleet.ids


def test_thread_start_failure_is_raised() -> None:
    with Emulator(vehicles=1).in_thread() as first:
        port = int(first.url.rsplit(":", 1)[1])
        with pytest.raises(OSError), Emulator(vehicles=1, port=port).in_thread():
            pass


async def test_request_log(api: Api, emu: Emulator) -> None:
    vid = emu.fleet.ids[0]
    await api.vget(vid, "/odometer", params={"flags": "a:true"}, units="imperial")
    await api.post(api.vpath(vid, "/charge/limit"), {"limit": 0.8})
    await api.call(
        "POST",
        api.vpath(vid, "/batch"),
        data=b"{oops",
        headers={"Content-Type": "application/json"},
    )
    first, second, third = emu.requests
    assert isinstance(first, RecordedRequest)
    assert (first.method, first.path, first.query) == (
        "GET",
        f"/v2.0/vehicles/{vid}/odometer",
        {"flags": "a:true"},
    )
    assert first.headers["sc-unit-system"] == "imperial"
    assert first.headers.get("AUTHORIZATION") == "Bearer test-token"
    assert "authorization" in first.headers
    assert first.body is None
    assert first.raw_body == b""
    assert second.body == {"limit": 0.8}
    assert json.loads(second.raw_body) == {"limit": 0.8}
    assert third.body is None
    assert third.raw_body == b"{oops"
    emu.clear_requests()
    assert emu.requests == []


async def test_request_log_is_bounded(session: aiohttp.ClientSession) -> None:
    async with Emulator(vehicles=1, max_recorded=3) as emu:
        api = Api(emu, session)
        for offset in range(6):
            await api.get("/v2.0/vehicles", params={"offset": str(offset)})
        assert [r.query["offset"] for r in emu.requests] == ["3", "4", "5"]
    async with Emulator(vehicles=1, max_recorded=0) as emu:
        await Api(emu, session).get("/v2.0/vehicles")
        assert emu.requests == []


async def test_error_responses_are_tallied_by_status_and_code(
    session: aiohttp.ClientSession,
) -> None:
    limits = testing.RateLimits(app_capacity=1, app_refill_per_minute=0)  # one request
    # max_recorded=0: the tally does not depend on the request log.
    async with Emulator(vehicles=1, max_recorded=0, rate_limits=limits, token_ttl=60) as emu:
        api = Api(emu, session)
        vid = emu.fleet.ids[0]
        assert (await api.batch(vid, ["/odometer", "/location"])).status == 200
        for _ in range(3):
            assert (await api.vget(vid, "/odometer")).status == 429
        # v3 answers the same limit in its own (JSON:API) error shape.
        assert (await api.get(f"/v3/vehicles/{vid}/signals")).status == 429
        pair = emu.issue_tokens()
        form = {"grant_type": "refresh_token", "refresh_token": pair.refresh_token}
        basic = base64.b64encode(b"any-client:any-secret").decode()
        headers = {"Authorization": f"Basic {basic}"}
        for expected in (200, 400):  # a refresh token works once when token_ttl is set
            async with session.post(f"{emu.url}/oauth/token", data=form, headers=headers) as resp:
                assert resp.status == expected
        tally = emu.error_responses
        assert tally == {"429 RATE_LIMIT:SMARTCAR_API": 4, "400 invalid_grant": 1}
        tally.clear()  # a copy
        assert emu.error_responses["429 RATE_LIMIT:SMARTCAR_API"] == 4
        emu.clear_requests()
        assert emu.error_responses == {}


def vin_check_digit_ok(vin: str) -> bool:
    values = dict(
        zip(
            "ABCDEFGHJKLMNPRSTUVWXYZ",
            (1, 2, 3, 4, 5, 6, 7, 8, 1, 2, 3, 4, 5, 7, 9, 2, 3, 4, 5, 6, 7, 8, 9),
            strict=True,
        )
    )
    weights = (8, 7, 6, 5, 4, 3, 2, 10, 0, 9, 8, 7, 6, 5, 4, 3, 2)
    total = sum(
        (int(c) if c.isdigit() else values[c]) * w for c, w in zip(vin, weights, strict=True)
    )
    return vin[8] == ("X" if total % 11 == 10 else str(total % 11))


def test_fleet_is_deterministic_and_mixed() -> None:
    a, b, c = (
        Emulator(vehicles=300, seed=5),
        Emulator(vehicles=300, seed=5),
        Emulator(vehicles=300, seed=6),
    )
    assert a.fleet.ids == b.fleet.ids
    assert [v.vin for v in a.fleet] == [v.vin for v in b.fleet]
    assert a.fleet.ids != c.fleet.ids
    assert len(set(a.fleet.ids)) == 300
    for vehicle in a.fleet:
        assert uuid.UUID(vehicle.id).version == 4
        assert len(vehicle.vin) == 17
        assert not set(vehicle.vin) & set("IOQ")
        assert vin_check_digit_ok(vehicle.vin)
        assert a.fleet.get(vehicle.id) is vehicle
    mix = Counter(v.powertrain for v in a.fleet)
    assert mix["ICE"] > mix["EV"] > mix["PHEV"] > 20
    assert [v.powertrain for v in a.fleet.vehicles[:3]] == ["EV", "ICE", "PHEV"]
    assert {v.make for v in a.fleet} >= {
        "TESLA",
        "NISSAN",
        "FORD",
        "BMW",
        "AUDI",
        "CHEVROLET",
        "CADILLAC",
    }


def test_cli_serves_and_exits_on_signals() -> None:
    for signum in (signal.SIGINT, signal.SIGTERM):
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "smartcar_async.testing",
                "--port",
                "0",
                "--vehicles",
                "3",
                "--seed",
                "4",
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=subprocess_env(),
        )
        try:
            assert proc.stdout is not None
            line = proc.stdout.readline().strip()
            match = re.fullmatch(
                r"Smartcar emulator serving 3 vehicles at (http://127\.0\.0\.1:(\d+))", line
            )
            assert match, line
            assert match.group(2) != "0"
            request = urllib.request.Request(
                f"{match.group(1)}/v2.0/vehicles", headers={"Authorization": "Bearer cli"}
            )
            with urllib.request.urlopen(request, timeout=10) as response:
                assert json.load(response)["vehicles"] == Emulator(vehicles=3, seed=4).fleet.ids
            proc.send_signal(signum)
            _, err = proc.communicate(timeout=15)
            assert proc.returncode == 0, err
            assert err == ""
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.communicate()


BACKENDS = ["asyncio"] + (["trio"] if importlib.util.find_spec("trio") else [])

PLUGIN_TESTS = """
import json
import urllib.request

import pytest

from smartcar_async.testing import Emulator


@pytest.fixture(params=BACKENDS)
def anyio_backend(request):
    return request.param


def get(emu, path):
    request = urllib.request.Request(emu.url + path, headers={"Authorization": "Bearer t"})
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.load(response)


def test_sync(smartcar_emulator):
    assert isinstance(smartcar_emulator, Emulator)
    assert get(smartcar_emulator, "/v2.0/vehicles")["paging"]["count"] == 10


@pytest.mark.smartcar_emulator(vehicles=2, seed=3)
def test_marker(smartcar_emulator):
    assert smartcar_emulator.fleet.ids == Emulator(vehicles=2, seed=3).fleet.ids


@pytest.mark.anyio
async def test_async(smartcar_emulator):
    assert get(smartcar_emulator, "/v2.0/user")["id"]


def test_factory(smartcar_emulator_factory):
    one = smartcar_emulator_factory(vehicles=1)
    two = smartcar_emulator_factory(vehicles=4)
    assert one.url != two.url
    assert get(two, "/v2.0/vehicles")["paging"]["count"] == 4
"""


def test_pytest_plugin(tmp_path: Path) -> None:
    source = textwrap.dedent(PLUGIN_TESTS).replace("BACKENDS", repr(BACKENDS))
    (tmp_path / "test_plugin_user.py").write_text(source)
    (tmp_path / "pytest.ini").write_text(
        "[pytest]\nfilterwarnings = error\ntimeout = 60\nanyio_mode = strict\n"
    )
    # Block the installed entry point (if any) so that loading by module name cannot
    # register the plugin twice.
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:cacheprovider",
            "-p",
            "no:smartcar_async",
            "-p",
            "smartcar_async.testing.pytest_plugin",
            "--rootdir",
            str(tmp_path),
            str(tmp_path),
        ],
        capture_output=True,
        text=True,
        env=subprocess_env(),
        cwd=tmp_path,
        timeout=60,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    # The threaded fixture serves async tests of every installed framework.
    assert f"{3 + len(BACKENDS)} passed" in result.stdout
