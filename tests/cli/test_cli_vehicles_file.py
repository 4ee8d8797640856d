"""The vehicles file is CSV: its parser on its own, then the command reading real files."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from cli_support import against, json_lines, run_cli, vehicle_of, vehicle_requests, write
from support import TOKEN

from smartcar_async._cli._vehicles_file import (
    VehicleRow,
    VehiclesFileError,
    parse_vehicles,
    read_vehicles_file,
)
from smartcar_async.testing import Emulator

T1, T2, T3 = (f"{TOKEN}-{n}" for n in (1, 2, 3))
UTC = dt.UTC

# ------------------------------------------------------------------ the parser


def test_headerless_id_and_token_lines_with_comments_blanks_and_whitespace() -> None:
    text = f"# fleet of three\n\n  v1 , {T1}  \n\t\nv2,{T2}\n   # indented comment\nv3\n"
    rows = parse_vehicles(text, default_token=T3)
    assert [(r.vehicle_id, r.access_token, r.line) for r in rows] == [
        ("v1", T1, 3),
        ("v2", T2, 5),
        ("v3", None, 7),  # --token stands in later
    ]


def test_a_header_names_columns_in_any_order_with_aliases_and_case() -> None:
    text = (
        "Unit_System, EXPIRES_AT ,token,vehicle_id,refresh_token\n"
        f"imperial,2026-05-01T14:00:00+02:00,{T1},v1,\n"
        f"METRIC,1777636800,{T2},v2,\n"
        ",,,v3,\n"
    )
    rows = parse_vehicles(text, default_token=T3)
    assert rows[0] == VehicleRow(
        "v1",
        access_token=T1,
        expires_at=dt.datetime(2026, 5, 1, 12, tzinfo=UTC),
        unit_system="imperial",
        line=2,
    )
    assert rows[1].expires_at == dt.datetime(2026, 5, 1, 12, tzinfo=UTC)
    assert rows[1].unit_system == "metric"
    assert (rows[2].access_token, rows[2].expires_at, rows[2].unit_system) == (None, None, None)


def test_refresh_tokens_and_fractional_epochs_are_parsed() -> None:
    text = f"vehicle_id,refresh_token,expires_at\nv1,{T1},1777636800.5\n"
    (row,) = parse_vehicles(text)
    assert row.refresh_token == T1
    assert row.access_token is None
    assert row.expires_at == dt.datetime(2026, 5, 1, 12, 0, 0, 500000, tzinfo=UTC)


def test_quoted_cells_keep_commas_and_lose_their_quotes() -> None:
    text = f'"vehicle_id","access_token"\n"v1", "{T1}" \n"v2",{T2}\n'
    rows = parse_vehicles(text)
    assert [(r.vehicle_id, r.access_token) for r in rows] == [("v1", T1), ("v2", T2)]


def test_trailing_empty_cells_as_spreadsheets_write_them_are_fine() -> None:
    rows = parse_vehicles(f"vehicle_id,token,,\nv1,{T1},,\nv2,{T2}\n")
    assert [r.vehicle_id for r in rows] == ["v1", "v2"]
    assert parse_vehicles(f"v1,{T1},,\n")[0].access_token == T1


def test_a_byte_order_mark_is_not_part_of_the_first_cell(tmp_path: Path) -> None:
    path = write(tmp_path / "fleet.csv", f"vehicle_id,token\nv1,{T1}\n", bom=True)
    (row,) = read_vehicles_file(str(path))
    assert (row.vehicle_id, row.access_token) == ("v1", T1)
    path = write(tmp_path / "bare.csv", f"v1,{T1}\n", bom=True)
    assert read_vehicles_file(str(path))[0].vehicle_id == "v1"


def test_a_row_repr_never_shows_its_tokens() -> None:
    row = VehicleRow("v1", access_token=T1, refresh_token=T2)
    assert T1 not in repr(row)
    assert T2 not in repr(row)
    assert "'***'" in repr(row)


ERRORS = [
    pytest.param(f"v1,{T1}\nv2,{T2}\nv1,{T3}\n", 3, 1, "the same vehicle id as line 1", id="dup"),
    pytest.param(f"vehicle_id,token\n  ,{T1}\n", 2, 1, "the vehicle id is empty", id="empty-id"),
    pytest.param(f"..,{T1}\n", 1, 1, "must not be '.' or '..'", id="dotdot"),
    pytest.param(f".,{T1}\n", 1, 1, "must not be '.' or '..'", id="dot"),
    pytest.param(f"v 1,{T1}\n", 1, 1, "contains whitespace", id="space-in-id"),
    pytest.param(f"a/b,{T1}\n", 1, 1, "a slash", id="slash-in-id"),
    pytest.param(
        f"vehicle_id,token,colour\nv1,{T1},red\n", 1, 3, "unknown column 'colour'", id="col"
    ),
    pytest.param(f"vehicle_id,token,{T2}\n", 1, 3, "unknown column", id="col-like-a-token"),
    pytest.param("vehicle_id,,token\n", 1, 2, "empty column name", id="empty-col"),
    pytest.param("vehicle_id,token,access_token\n", 1, 3, "appears twice", id="twice"),
    pytest.param(f"token,unit_system\n{T1},metric\n", 1, None, "no vehicle_id column", id="no-id"),
    pytest.param(
        f"vehicle_id,token,expires_at\nv1,{T1},2026-05-01T12:00:00\n",
        2,
        3,
        "expires_at must be ISO 8601 with a timezone",
        id="naive-time",
    ),
    pytest.param(
        f"vehicle_id,token,expires_at\nv1,{T1},tomorrow\n", 2, 3, "expires_at must be", id="bad"
    ),
    pytest.param(
        f"vehicle_id,token,expires_at\nv1,{T1},-5\n", 2, 3, "expires_at must be", id="negative"
    ),
    pytest.param(
        f"vehicle_id,token,unit_system\nv1,{T1},si\n", 2, 3, "metric or imperial", id="units"
    ),
    pytest.param(f"v1,{T1},{T2}\n", 1, 3, "3 cells, expected vehicle_id", id="too-many"),
    pytest.param(f"vehicle_id,token\nv1,{T1},{T2}\n", 2, 3, "at most 2", id="too-many-hdr"),
    pytest.param("v1\n", 1, 2, "no access token on this line, and no --token", id="no-token"),
    pytest.param("vehicle_id\nv1\n", 2, None, "no token column in the header", id="no-token-col"),
    pytest.param(f'v1,"{T1}\nv2,{T2}\n', 1, None, "a quoted cell is not closed", id="open-quote"),
    pytest.param(f"v1,{T1} {T2}\n", 1, 2, "access_token contains whitespace", id="token-space"),
    pytest.param("# nothing\n\nvehicle_id,token\n", None, None, "no vehicles", id="empty"),
]


@pytest.mark.parametrize(("text", "line", "column", "problem"), ERRORS)
def test_each_problem_names_the_file_line_and_column_never_a_token(
    text: str, line: int | None, column: int | None, problem: str
) -> None:
    with pytest.raises(VehiclesFileError) as info:
        parse_vehicles(text, path="fleet.csv")
    error = info.value
    assert (error.line, error.column) == (line, column)
    assert problem in str(error)
    where = (
        "fleet.csv" + (f", line {line}" if line else "") + (f", column {column}" if column else "")
    )
    assert str(error).startswith(where + ": ")
    assert isinstance(error, ValueError)
    for token in (T1, T2, T3):
        assert token not in str(error)


def test_a_file_that_is_not_utf8_names_the_line(tmp_path: Path) -> None:
    path = tmp_path / "fleet.csv"
    path.write_bytes(f"v1,{T1}\nv2,\xff{T2}\n".encode("latin-1"))
    with pytest.raises(VehiclesFileError, match=r"line 2: not UTF-8 text"):
        read_vehicles_file(str(path))


def test_a_missing_file_is_a_vehicles_file_error(tmp_path: Path) -> None:
    with pytest.raises(VehiclesFileError, match="cannot read the file"):
        read_vehicles_file(str(tmp_path / "absent.csv"))


# ------------------------------------------------------ the command, end to end


def test_the_command_polls_what_a_csv_file_with_every_feature_says(
    emu: Emulator, tmp_path: Path
) -> None:
    first, second, third = emu.fleet.ids
    listing = write(
        tmp_path / "fleet.csv",
        "# exported from the fleet sheet\n"
        "vehicle_id, access_token ,unit_system,expires_at\n"
        "\n"
        f'"{first}", "{T1}" ,imperial,2999-01-01T00:00:00Z\n'
        f"  {second}  ,{T2},,\n"
        "# this one uses --token\n"
        f"{third},,metric,\n",
        bom=True,
    )
    done = run_cli(
        against(emu, "--vehicles-file", str(listing), "--token", T3, "--reads", "odometer")
    )
    assert done.returncode == 0, done.stderr
    results = {line["vehicle_id"]: line for line in json_lines(done.stdout)}
    assert set(results) == {first, second, third}
    sent = {vehicle_of(r): r.headers for r in vehicle_requests(emu)}
    assert {vid: h["Authorization"] for vid, h in sent.items()} == {
        first: f"Bearer {T1}",
        second: f"Bearer {T2}",
        third: f"Bearer {T3}",
    }
    # A row's unit system wins over --units (metric by default).
    assert {vid: h["SC-Unit-System"] for vid, h in sent.items()} == {
        first: "imperial",
        second: "metric",
        third: "metric",
    }
    assert results[first]["values"]["odometer"]["meta"]["unit_system"] == "imperial"
    for token in (T1, T2, T3):
        assert token not in done.stdout + done.stderr


@pytest.mark.parametrize(
    ("text", "where", "problem"),
    [
        pytest.param(
            "vehicle_id,token\n{a},{t}\n{b},{t}\n{a},{t}\n",
            "line 4, column 1",
            "the same vehicle id as line 2",
            id="duplicate",
        ),
        pytest.param("{a},{t}\n,{t}\n", "line 2, column 1", "the vehicle id is empty", id="empty"),
        pytest.param(
            "vehicle_id,token,colour\n{a},{t},red\n",
            "line 1, column 3",
            "unknown column 'colour'",
            id="column",
        ),
        pytest.param(
            "vehicle_id,token,expires_at\n{a},{t},soon\n",
            "line 2, column 3",
            "expires_at must be",
            id="expires_at",
        ),
        pytest.param(
            "vehicle_id,unit_system\n{a},si\n",
            "line 2",
            "no token column in the header, and no --token",
            id="no-token",
        ),
        pytest.param("{a},{t},{t}\n", "line 1, column 3", "3 cells", id="too-many-cells"),
        pytest.param(
            "{a},{t}\n..,{t}\n", "line 2, column 1", "the vehicle id must not be '.'", id="dotdot"
        ),
    ],
)
def test_a_bad_file_exits_2_naming_the_place_and_nothing_is_polled(
    emu: Emulator, tmp_path: Path, text: str, where: str, problem: str
) -> None:
    first, second, _ = emu.fleet.ids
    listing = write(tmp_path / "fleet.csv", text.format(a=first, b=second, t=T1))
    done = run_cli(against(emu, "--vehicles-file", str(listing)))
    assert done.returncode == 2, done.stderr
    assert f"--vehicles-file {listing}, {where}: {problem}" in done.stderr
    assert "Traceback" not in done.stderr
    assert T1 not in done.stdout + done.stderr
    assert done.stdout == ""
    assert vehicle_requests(emu) == []


def test_refresh_tokens_without_state_are_refused(emu: Emulator, tmp_path: Path) -> None:
    first = emu.fleet.ids[0]
    listing = write(
        tmp_path / "fleet.csv", f"vehicle_id,access_token,refresh_token\n{first},{T1},{T2}\n"
    )
    done = run_cli(against(emu, "--vehicles-file", str(listing)))
    assert done.returncode == 2
    # A rotated refresh token would be lost at exit.
    assert "line 2: refresh tokens need --state PATH" in done.stderr
    assert T1 not in done.stderr
    assert T2 not in done.stderr
    assert vehicle_requests(emu) == []


def test_a_vehicle_both_on_the_command_line_and_in_the_file_is_refused(
    emu: Emulator, tmp_path: Path
) -> None:
    first = emu.fleet.ids[0]
    listing = write(tmp_path / "fleet.csv", f"# header-less\n{first},{T1}\n")
    done = run_cli(against(emu, "--vehicle", first, "--token", T2, "--vehicles-file", str(listing)))
    assert done.returncode == 2
    assert "line 2: the same vehicle id as a --vehicle" in done.stderr
    assert vehicle_requests(emu) == []


def test_an_expired_access_token_is_warned_about_by_line(emu: Emulator, tmp_path: Path) -> None:
    first, second, _ = emu.fleet.ids
    listing = write(
        tmp_path / "fleet.csv",
        f"vehicle_id,token,expires_at\n{first},{T1},2000-01-01T00:00:00Z\n{second},{T2},\n",
    )
    done = run_cli(against(emu, "--vehicles-file", str(listing), "--reads", "odometer"))
    assert done.returncode == 0, done.stderr
    assert "1 access token(s) of the vehicles file expired already (expires_at, line 2)" in (
        done.stderr
    )
