from __future__ import annotations

import os
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from state_support import store_threads

from smartcar_async import SQLiteState


@pytest.fixture
def state_file(tmp_path: Path) -> Path:
    return tmp_path / "state.db"


@pytest.fixture
async def store(state_file: Path) -> AsyncIterator[SQLiteState]:
    """An open store on a fresh file; after the test, closed and its thread gone."""
    async with SQLiteState(state_file) as opened:
        yield opened
    assert store_threads() == []


@pytest.fixture
def restore_umask() -> Iterator[None]:
    """Puts back the process umask a test changes (tests run one at a time per process)."""
    previous = os.umask(0o022)
    os.umask(previous)
    yield
    os.umask(previous)
