"""A Smartcar API emulator (v2.0 and v3) for tests, demos and benchmarks.

Start one with ``async with Emulator() as emu`` (or ``with
Emulator().in_thread() as emu`` from synchronous code), point a client at
``emu.url``, and shape what it sees with ``emu.faults``, ``emu.inject``,
``emu.rate_limits`` and the simulated ``emu.fleet``. A pytest plugin provides
the ``smartcar_emulator`` and ``smartcar_emulator_factory`` fixtures, and
``python -m smartcar_async.testing`` serves one from the command line.

This package shares no code with the client in ``smartcar_async``: it is an
independent implementation of the documented API, so the client's tests
check the client against the documentation rather than against itself.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ._auth import TokenPair
    from ._emulator import Emulator
    from ._faults import Faults
    from ._fleet import Fleet, SimulatedVehicle
    from ._ratelimit import RateLimits
    from ._recording import RecordedRequest
    from ._webhooks import WebhookDelivery

__all__ = [
    "Emulator",
    "Faults",
    "Fleet",
    "RateLimits",
    "RecordedRequest",
    "SimulatedVehicle",
    "TokenPair",
    "WebhookDelivery",
]

# Loaded on first access so that importing the pytest plugin (which pytest does
# for every session) does not import aiohttp.
_HOMES = {
    "Emulator": "._emulator",
    "Faults": "._faults",
    "Fleet": "._fleet",
    "RateLimits": "._ratelimit",
    "RecordedRequest": "._recording",
    "SimulatedVehicle": "._fleet",
    "TokenPair": "._auth",
    "WebhookDelivery": "._webhooks",
}


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(home, __name__), name)
    # Tracebacks and reprs should name the public module, not the private one.
    value.__module__ = __name__
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
