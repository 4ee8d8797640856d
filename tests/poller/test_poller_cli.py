"""``python -m smartcar_async poll`` end to end, in a subprocess: pipes, files, a terminal."""

from __future__ import annotations

import csv
import io
import pkgutil
import re
import signal
import subprocess
import tomllib
from collections.abc import Iterator
from pathlib import Path

import pytest
from poller_support import CLI, json_lines, run_cli, run_cli_in_pty
from support import TOKEN

from smartcar_async.__main__ import main
from smartcar_async.testing import Emulator, Faults

ROOT = Path(__file__).resolve().parents[2]
ANSI = re.compile(r"\x1b\[")
STYLE = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")
# A small, quick demo: every round still covers every vehicle.
QUICK = ["--fleet-size", "12", "--interval", "0.4"]


def test_plain_run_writes_every_vehicle_every_round_and_a_summary() -> None:
    done = run_cli(["poll", *QUICK, "--rounds", "2"])
    assert done.returncode == 0, done.stderr
    lines = json_lines(done.stdout)
    ids = {line["vehicle_id"] for line in lines}
    assert len(ids) == 12
    assert sorted((line["vehicle_id"], line["round"]) for line in lines) == sorted(
        (vid, n) for vid in ids for n in (1, 2)
    )
    polled = [line for line in lines if line["skipped"] is None]
    assert all(
        set(line["values"]) | set(line["errors"])
        == {"odometer", "location", "tire_pressure", "lock_status"}
        for line in polled
    )
    err = done.stderr
    assert not ANSI.search(err)  # no terminal, no escape codes
    assert "round 1/2: 12/12 vehicles" in err
    assert "round 2/2: 12/12 vehicles" in err
    for row in (
        "Logical reads:",
        "HTTP requests sent:",
        "Sub-requests (in batches):",
        "Dedupe hits:",
        "Coalescing ratio:",
        "Errors by type:",
        "Read latency:",
    ):
        assert row in err
    # The numbers are this run's: 12 vehicles x 2 rounds x (4 + 1 second-job) reads at most.
    logical = int(re.search(r"Logical reads:\s+([\d,]+)", err).group(1).replace(",", ""))  # type: ignore[union-attr]
    assert 0 < logical <= 12 * 2 * 5
    assert re.search(r"p50 \d+ ms · p95 \d+ ms · p99 \d+ ms", err)
    assert "24 as JSON Lines to stdout" in err


def test_csv_to_a_file(tmp_path: Path) -> None:
    out = tmp_path / "fleet.csv"
    done = run_cli(
        ["poll", *QUICK, "--rounds", "1", "--also", "", "--reads", "odometer", "--output", str(out)]
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout == ""
    rows = list(csv.DictReader(io.StringIO(out.read_text())))
    assert {row["status"] for row in rows} <= {"ok", "error", "skipped:backoff", "skipped:late"}
    assert len({row["vehicle_id"] for row in rows}) == 12
    ok = [row for row in rows if row["status"] == "ok"]
    assert ok
    assert all(row["read"] == "odometer" and row["field"] == "distance" for row in ok)
    assert all(float(row["value"]) > 0 and row["data_age"] for row in ok)
    assert "Dedupe hits:" in done.stderr


def test_on_a_terminal_it_shows_progress_bars_and_a_summary_table() -> None:
    pytest.importorskip("rich")
    status, output, _ = run_cli_in_pty(["poll", *QUICK, "--rounds", "2"])
    assert status == 0, output
    assert ANSI.search(output)
    output = STYLE.sub("", output)
    assert "round 2/2" in output
    assert "smartcar-async poll: summary" in output
    for row in (
        "Logical reads",
        "HTTP requests sent",
        "Dedupe hits",
        "Coalescing ratio",
        "Errors by type",
        "Read latency",
    ):
        assert re.search(rf"│\s*{row}\s*│", output), row
    # stdout is the terminal too: results are not dumped over the display.
    assert '"vehicle_id"' not in output
    assert "not written (stdout is a terminal" in output


def test_on_a_terminal_without_rich_it_prints_plain_lines(tmp_path: Path) -> None:
    (tmp_path / "rich").mkdir()
    (tmp_path / "rich" / "__init__.py").write_text("raise ImportError('rich is not installed')\n")
    status, output, _ = run_cli_in_pty(
        ["poll", *QUICK, "--rounds", "1"], env={"PYTHONPATH": str(tmp_path)}
    )
    assert status == 0, output
    assert "round 1/1: 12/12 vehicles" in output
    assert "  Dedupe hits:" in output
    assert "│" not in output


def test_results_piped_from_a_terminal_session_stay_in_the_pipe() -> None:
    pytest.importorskip("rich")
    status, terminal, piped = run_cli_in_pty(["poll", *QUICK, "--rounds", "1"], stdout_to_pipe=True)
    assert status == 0, terminal
    assert len(json_lines(piped)) == 12
    assert '"vehicle_id"' not in terminal
    terminal = STYLE.sub("", terminal)
    assert re.search(r"│\s*Results\s*│\s*12 as JSON Lines to stdout", terminal)


def test_ctrl_c_stops_cleanly_with_the_summary() -> None:
    process = subprocess.Popen(
        [*CLI, "poll", "--fleet-size", "6", "--interval", "0.2", "--rounds", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert process.stderr is not None
    try:
        # Wait for the first finished round, then interrupt the endless run.
        for line in process.stderr:
            if line.startswith("round 1:"):
                break
        process.send_signal(signal.SIGINT)
        out, err = process.communicate(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert process.returncode == 130
    assert "interrupted by SIGINT in round" in err
    assert "Dedupe hits:" in err
    assert "Traceback" not in err
    lines = json_lines(out)  # every line whole: nothing cut off mid-write
    assert {line["round"] for line in lines} >= {1}


def test_the_console_script_runs_the_same_main() -> None:
    declared = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    assert pkgutil.resolve_name(declared["smartcar-async"].replace(":", ".")) is main


@pytest.fixture
def api() -> Iterator[Emulator]:
    with Emulator(vehicles=3, seed=5).in_thread() as emulator:
        emulator.faults = Faults(asleep={emulator.fleet.ids[2]})
        yield emulator


def test_against_an_api_origin_tokens_are_never_printed(api: Emulator, tmp_path: Path) -> None:
    first, second, third = api.fleet.ids
    listing = tmp_path / "vehicles.txt"
    listing.write_text(f"# id,token\n{second},{TOKEN}-file\n\n{third}\n")
    done = run_cli(
        [
            "poll",
            "--origin",
            api.url,
            "--token",
            TOKEN,
            "--vehicle",
            first,
            "--vehicles-file",
            str(listing),
            "--reads",
            "odometer,location",
            "--units",
            "imperial",
            "--max-retries",
            "0",
        ]
    )
    assert done.returncode == 0, done.stderr
    lines = {line["vehicle_id"]: line for line in json_lines(done.stdout)}
    assert set(lines) == {first, second, third}
    assert all(line["round"] == 1 for line in lines.values())
    assert lines[first]["values"]["odometer"]["meta"]["unit_system"] == "imperial"
    assert lines[third]["errors"]["odometer"]["error"] == "VehicleStateError"
    assert "Errors by type:" in done.stderr
    assert "VehicleStateError 2" in done.stderr
    assert "second job" not in done.stderr  # no demo extras against a real origin
    assert TOKEN not in done.stdout + done.stderr
    sent = {r.headers.get("Authorization") for r in api.requests}
    assert sent == {f"Bearer {TOKEN}", f"Bearer {TOKEN}-file"}


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["poll", "--tokn", TOKEN], "unrecognized arguments: --tokn"),
        (["poll", f"--tokne={TOKEN}"], "unrecognized arguments: --tokne"),
        (["poll", "--token", TOKEN], "give the vehicles to poll"),
        (["poll", "--token", TOKEN, "--vehicle", "v1", "--rounds", TOKEN], "invalid int value"),
        (["poll", "--reads", "odometer,speed"], "unknown read 'speed'; valid reads: attributes"),
        (["poll", "--shard", "4/4"], "--shard I/N needs 0 <= I < N"),
        (["poll", "--vehicle", "v1"], "--vehicle needs a token"),
    ],
)
def test_usage_errors_never_show_a_token(
    argv: list[str],
    message: str,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("SMARTCAR_ACCESS_TOKEN", raising=False)
    with pytest.raises(SystemExit) as exited:
        main(argv)
    assert exited.value.code == 2
    err = capsys.readouterr().err
    assert message in err
    assert TOKEN not in err


def test_a_vehicles_file_error_names_the_line_not_its_token(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    listing = tmp_path / "vehicles.txt"
    listing.write_text(f"v1,{TOKEN},extra\n")
    with pytest.raises(SystemExit):
        main(["poll", "--vehicles-file", str(listing)])
    err = capsys.readouterr().err
    assert "line 1" in err
    assert TOKEN not in err


def test_no_command_prints_help(capsys: pytest.CaptureFixture[str]) -> None:
    assert main([]) == 2
    assert "poll" in capsys.readouterr().err
