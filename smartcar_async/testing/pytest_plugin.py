"""pytest fixtures for the Smartcar emulator (registered through the ``pytest11`` entry point).

* ``smartcar_emulator``: a running emulator served from its own thread, so it
  works in synchronous tests and in async tests of any framework. Configure it
  with a marker: ``@pytest.mark.smartcar_emulator(vehicles=3, seed=7)``.
* ``smartcar_emulator_factory``: call it with `Emulator` keyword arguments to
  get more running emulators; all are stopped at teardown.

Importing this module is cheap: the emulator (and aiohttp) load on first use.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from ._emulator import Emulator

_MARKER = "smartcar_emulator"


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        f"{_MARKER}(**kwargs): Emulator keyword arguments for the smartcar_emulator fixture",
    )


@pytest.fixture
def smartcar_emulator_factory() -> Iterator[Callable[..., Emulator]]:
    """Start emulators on demand: ``factory(vehicles=3, faults=Faults(drop_rate=0.1))``."""
    from ._emulator import Emulator

    with contextlib.ExitStack() as stack:

        def start(**kwargs: Any) -> Emulator:
            return stack.enter_context(Emulator(**kwargs).in_thread())

        yield start


@pytest.fixture
def smartcar_emulator(
    request: pytest.FixtureRequest, smartcar_emulator_factory: Callable[..., Emulator]
) -> Emulator:
    """A running emulator (default: 10 vehicles, seed 0) for this test."""
    marker = request.node.get_closest_marker(_MARKER)
    kwargs = dict(marker.kwargs) if marker is not None else {}
    return smartcar_emulator_factory(**kwargs)
