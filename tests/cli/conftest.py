from __future__ import annotations

from collections.abc import Iterator

import pytest

from smartcar_async.testing import Emulator


@pytest.fixture
def emu() -> Iterator[Emulator]:
    """A small emulator in a thread, for the CLI processes to poll."""
    with Emulator(vehicles=3, seed=7).in_thread() as emulator:
        yield emulator
