"""Issue 12, section 8: library conventions.

* ``BatchResponse`` is not a ``Mapping`` (a mapping's ``get``/``values``/
  ``items`` never raise, and ``response[path]`` raises the path's error):
  ``outcomes`` is the never-raising mapping of outcomes.
* ``ReadName`` and ``UnitSystem`` are ``Literal`` types (mypy catches a typo:
  tests/typing/check_public_api.py); they must name exactly what the run-time
  checks accept, which still refuse a typo from untyped callers.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, get_args, get_type_hints

import pytest

import smartcar_async as sc
from smartcar_async._endpoints import READS
from smartcar_async._poller import READ_NAMES
from smartcar_async._validate import UNIT_SYSTEMS
from smartcar_async.testing import Emulator


async def test_batch_response_outcomes_never_raise_and_indexing_does() -> None:
    async with Emulator(vehicles=6, seed=3) as emu:
        ev = emu.fleet.with_powertrain("EV")[0]
        async with sc.Client(api_origin=emu.url) as client:
            car = client.vehicle(ev.id, access_token="any-token")
            response = await car.batch(["odometer", "/fuel", "/location"])

    assert not isinstance(response, Mapping)
    assert list(response) == ["/odometer", "/fuel", "/location"]
    assert len(response) == 3
    assert "odometer" in response
    assert "/fuel" in response
    assert "/vin" not in response
    assert 42 not in response

    outcomes = response.outcomes
    assert isinstance(outcomes["/odometer"], sc.Odometer)
    assert isinstance(outcomes["/fuel"], sc.CompatibilityError)
    assert set(response.models) == {"/odometer", "/location"}
    assert set(response.errors) == {"/fuel"}
    assert response.errors["/fuel"] is outcomes["/fuel"]
    # Every view agrees: a path is in exactly one of models and errors.
    assert {**response.models, **response.errors} == outcomes
    outcomes.clear()  # a fresh dict: the response is unchanged
    assert len(response.outcomes) == 3

    assert response["/odometer"] is response.models["/odometer"]
    with pytest.raises(sc.CompatibilityError):
        response["fuel"]
    with pytest.raises(KeyError):
        response["/vin"]
    for method in ("get", "values", "items", "keys"):
        assert not hasattr(response, method), method


async def test_batch_response_has_a_typed_method_per_read() -> None:
    async with Emulator(vehicles=6, seed=3) as emu:
        ev = emu.fleet.with_powertrain("EV")[0]
        async with sc.Client(api_origin=emu.url) as client:
            car = client.vehicle(ev.id, access_token="any-token")
            response = await car.batch(["/odometer", "/fuel", "/security", "/"])

    odometer = response.odometer()
    assert isinstance(odometer, sc.Odometer)
    assert odometer is response["/odometer"]
    assert isinstance(response.lock_status(), sc.LockStatus)
    assert isinstance(response.attributes(), sc.Attributes)
    # A failed path raises its own typed error, as indexing does.
    with pytest.raises(sc.CompatibilityError):
        response.fuel()
    # A path the batch did not ask for, as indexing does.
    with pytest.raises(KeyError):
        response.vin()


# The official SDK names a batch result's attributes after its read methods,
# except this one (smartcar/helpers.py, format_path_and_attribute_for_batch).
SDK_BATCH_NAMES = {"/battery/nominal_capacity": "battery_nominal_capacity"}


def test_typed_batch_methods_follow_the_endpoint_table() -> None:
    typed = {
        name
        for name, member in vars(sc.BatchResponse).items()
        if callable(member) and not name.startswith("_")
    }
    names = {read.path: SDK_BATCH_NAMES.get(read.path, read.name) for read in READS}
    assert typed == set(names.values())
    for read in READS:
        hints = get_type_hints(getattr(sc.BatchResponse, names[read.path]))
        assert hints["return"] is read.model, read.name


def test_typed_batch_methods_are_named_as_the_official_sdk_names_them() -> None:
    helpers = pytest.importorskip("smartcar.helpers", reason="the official SDK")
    for read in READS:
        _path, attribute = helpers.format_path_and_attribute_for_batch(read.path)
        assert attribute == SDK_BATCH_NAMES.get(read.path, read.name), read.path
        assert hasattr(sc.BatchResponse, attribute)


def test_a_hand_built_batch_response_with_a_wrong_model_is_a_type_error() -> None:
    response = sc.BatchResponse({"/odometer": sc.Vin(vin="1HGCM82633A004352")})
    with pytest.raises(TypeError, match="/odometer holds a Vin, not a Odometer"):
        response.odometer()


def test_literal_names_match_the_run_time_checks() -> None:
    assert get_args(sc.ReadName) == READ_NAMES
    assert set(get_args(sc.UnitSystem)) == set(UNIT_SYSTEMS)


async def test_typos_still_fail_at_run_time_for_untyped_callers() -> None:
    untyped: Any = "odometr"
    with pytest.raises(ValueError, match="unknown read 'odometr'"):
        sc.FleetPoller(reads=(untyped,), interval=300)
    async with sc.Client(api_origin="http://127.0.0.1:9") as client:
        metrc: Any = "metrc"
        with pytest.raises(ValueError, match="unit_system"):
            client.vehicle("vehicle-1", access_token="any-token", unit_system=metrc)
        car = client.vehicle("vehicle-1", access_token="any-token", unit_system="imperial")
        assert car.unit_system == "imperial"
