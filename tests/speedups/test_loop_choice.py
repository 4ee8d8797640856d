"""``--loop auto|asyncio|uvloop``: the command-line tools' event loop, and uvloop's absence.

The library never installs a loop; the two commands that own their process do.
A missing uvloop is a usage error (exit 2) when asked for by name, and asyncio
when ``auto``. These run under the suite's warnings-as-errors, so a uvloop that
warns on this Python fails them.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from collections.abc import Iterator, Mapping
from pathlib import Path

import pytest
from speedups_support import need
from support import TOKEN

from smartcar_async import _loops
from smartcar_async.testing import Emulator

ROOT = Path(__file__).resolve().parents[2]
HANG_GUARD = 60.0


@pytest.fixture
def no_uvloop(tmp_path: Path) -> Path:
    """A directory whose ``uvloop`` cannot be imported, to put first on a child's path."""
    package = tmp_path / "uvloop"
    package.mkdir()
    (package / "__init__.py").write_text('raise ImportError("uvloop hidden by the test")\n')
    return tmp_path


@pytest.fixture
def emu() -> Iterator[Emulator]:
    with Emulator(vehicles=2, seed=5).in_thread() as emulator:
        yield emulator


def _run(args: list[str], path: Path | None = None) -> subprocess.CompletedProcess[str]:
    env: Mapping[str, str] = {
        **{k: v for k, v in os.environ.items() if k != "SMARTCAR_ACCESS_TOKEN"},
        "PYTHONPATH": os.pathsep.join(str(p) for p in (path, ROOT) if p is not None),
    }
    return subprocess.run(
        [sys.executable, "-m", *args],
        capture_output=True,
        text=True,
        timeout=HANG_GUARD,
        env=env,
        check=False,
        cwd=ROOT,
    )


def test_asyncio_is_asyncios_own_loop() -> None:
    assert _loops.loop_factory("asyncio") is None

    async def which() -> str:
        return type(asyncio.get_running_loop()).__module__

    assert _loops.run(which(), None).startswith("asyncio.")


def test_an_unknown_loop_is_a_value_error() -> None:
    with pytest.raises(ValueError, match="--loop must be one of auto, asyncio, uvloop"):
        _loops.loop_factory("trio")


def test_without_uvloop_auto_is_asyncio_and_uvloop_is_an_error(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setitem(sys.modules, "uvloop", None)  # makes `import uvloop` fail
    assert _loops.loop_factory("auto") is None
    with pytest.raises(ValueError, match=r"uvloop is not installed; pip install"):
        _loops.loop_factory("uvloop")


def test_with_uvloop_auto_and_uvloop_run_on_it() -> None:
    uvloop = need("uvloop")
    assert _loops.loop_factory("auto") is uvloop.new_event_loop
    assert _loops.loop_factory("uvloop") is uvloop.new_event_loop

    async def which() -> asyncio.AbstractEventLoop:
        await asyncio.sleep(0)
        return asyncio.get_running_loop()

    assert isinstance(_loops.run(which(), uvloop.new_event_loop), uvloop.Loop)


@pytest.mark.parametrize(
    "command",
    [
        ["smartcar_async", "poll", "--loop", "uvloop", "--rounds", "1"],
        ["smartcar_async.testing", "--loop", "uvloop", "--port", "0"],
    ],
    ids=["poll", "emulator"],
)
def test_asking_for_a_missing_uvloop_exits_2(command: list[str], no_uvloop: Path) -> None:
    done = _run(command, no_uvloop)
    assert done.returncode == 2, done.stderr
    assert "--loop uvloop: uvloop is not installed" in done.stderr
    assert "smartcar-async[speedups]" in done.stderr


def test_poll_runs_on_uvloop(emu: Emulator) -> None:
    need("uvloop")
    vehicle = emu.fleet.ids[0]
    args = ["--origin", emu.url, "--rounds", "1", "--interval", "0.5"]
    args += ["--vehicle", vehicle, "--token", TOKEN, "--reads", "odometer", "--output", "-"]
    done = _run(["smartcar_async", "poll", "--loop", "uvloop", *args])
    assert done.returncode == 0, done.stderr
    (row,) = [json.loads(line) for line in done.stdout.splitlines() if line.strip()]
    assert row["vehicle_id"] == vehicle
    assert set(row["values"]) == {"odometer"}


def test_the_emulator_serves_on_uvloop() -> None:
    need("uvloop")
    proc = subprocess.Popen(
        [sys.executable, "-m", "smartcar_async.testing", "--loop", "uvloop", "--port", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    try:
        assert proc.stdout is not None
        first = proc.stdout.readline()
        assert " at http://127.0.0.1:" in first, first
        url = first.rsplit(" at ", 1)[1].strip()
        probe = _run(
            [
                "smartcar_async",
                "poll",
                "--loop",
                "asyncio",
                "--origin",
                url,
                "--rounds",
                "1",
                "--vehicle",
                "anything",
                "--token",
                TOKEN,
                "--reads",
                "odometer",
                "--output",
                "-",
            ]
        )
        # The emulator answered (a 404 for an unknown vehicle is an answer).
        assert probe.stdout.strip(), probe.stderr
    finally:
        proc.terminate()
        _, err = proc.communicate(timeout=HANG_GUARD)
    assert proc.returncode == 0, err
    assert "Warning" not in err, err
