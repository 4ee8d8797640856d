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
from typing import Any, get_args

import pytest

import smartcar_async as sc
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
