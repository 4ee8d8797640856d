"""A vehicles file past the csv module's limits: a usage error naming its line, no traceback."""

from __future__ import annotations

from pathlib import Path

import pytest
from cli_support import against, run_cli, vehicle_requests, write

from smartcar_async._cli._vehicles_file import VehiclesFileError, parse_vehicles
from smartcar_async.testing import Emulator

#: Longer than the csv module's default field size limit (131072 characters).
HUGE_CELL = "x" * 200_000


def test_a_cell_past_the_csv_field_limit_is_a_file_error_naming_its_line() -> None:
    text = f"vehicle_id,access_token\nv1,tok\nv2,{HUGE_CELL}\n"
    with pytest.raises(VehiclesFileError) as caught:
        parse_vehicles(text, path="fleet.csv")
    assert caught.value.line == 3
    assert str(caught.value).startswith("fleet.csv, line 3: ")
    assert HUGE_CELL[:100] not in str(caught.value)


def test_a_cell_past_the_csv_field_limit_exits_2_without_a_traceback(
    emu: Emulator, tmp_path: Path
) -> None:
    path = write(tmp_path / "fleet.csv", f"{emu.fleet.ids[0]},{HUGE_CELL}\n")
    done = run_cli(against(emu, "--vehicles-file", str(path)))
    assert done.returncode == 2, done.stderr
    assert "Traceback" not in done.stderr
    assert f"--vehicles-file {path}, line 1: " in done.stderr
    assert not vehicle_requests(emu)
