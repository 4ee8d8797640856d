"""--monthly-budget, --make-limits and --max-age: their checks, and the summary's billed line."""

from __future__ import annotations

from pathlib import Path

import pytest
from cli_support import against, run_cli, summary_value, write
from support import TOKEN

from smartcar_async import MakeLimit
from smartcar_async._cli._make_limits import MakeLimitsError, parse_make_limits
from smartcar_async.testing import Emulator


def test_a_make_limits_file_parses_on_top_of_the_defaults() -> None:
    limits = parse_make_limits(
        "# ours\n[hyundai]\nmax_polls = 10\nwindow = 86400\n\n[Tesla]\nmin_interval = 600\n[kia]\n"
    )
    assert limits["hyundai"] == MakeLimit(
        max_polls=10, window=86400, source="<make limits> [hyundai]"
    )
    assert limits["Tesla"] is not None
    assert limits["Tesla"].min_interval == 600
    assert limits["kia"] is None


@pytest.mark.parametrize(
    ("text", "line", "problem"),
    [
        ("[hyundai]\nmax_polls = 20\n", 1, "max_polls and window go together"),
        ("\n\n[gm]\nmin_interval = -5\n", 3, "> 0"),
        ("[gm]\nevery = 5\n", 1, "unknown key 'every'"),
        ("[gm]\nmin_interval = 'often'\n", 1, "min_interval must be seconds"),
        ("\n[gm\n", 2, "not valid TOML"),
        ("tesla = 5\n", 1, "must be a table"),
        ("# nothing\n", None, "no make tables"),
    ],
)
def test_make_limits_file_errors_name_the_line(text: str, line: int | None, problem: str) -> None:
    with pytest.raises(MakeLimitsError, match=problem) as caught:
        parse_make_limits(text, "limits.toml")
    assert caught.value.line == line
    assert str(caught.value).startswith("limits.toml" + ("" if line is None else f", line {line}"))


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--monthly-budget", "0"], "--monthly-budget must be >= 1"),
        (["--max-age", "0"], "--max-age"),
        (["--max-age", "nan"], "--max-age"),
        (["--make-limits", "missing.toml"], "--make-limits missing.toml: cannot read it"),
    ],
)
def test_spending_flags_are_checked(emu: Emulator, args: list[str], message: str) -> None:
    done = run_cli(against(emu, "--token", TOKEN, "--vehicle", emu.fleet.ids[0], *args))
    assert done.returncode == 2
    assert message in done.stderr


def test_a_bad_make_limits_file_is_a_usage_error(emu: Emulator, tmp_path: Path) -> None:
    path = write(tmp_path / "limits.toml", "[kia]\nmax_polls = 0\nwindow = 60\n")
    done = run_cli(
        against(emu, "--token", TOKEN, "--vehicle", emu.fleet.ids[0], "--make-limits", str(path))
    )
    assert done.returncode == 2
    assert f"--make-limits {path}, line 1: [kia]: max_polls must be >= 1" in done.stderr


def test_budget_and_limits_cannot_go_with_a_second_job() -> None:
    done = run_cli(["poll", "--monthly-budget", "100", "--rounds", "1"])
    assert done.returncode == 2
    assert "--monthly-budget cannot be used with --also" in done.stderr


def test_the_summary_shows_billed_requests_sent_and_saved(emu: Emulator) -> None:
    emu.reset_billed_requests()
    done = run_cli(
        against(
            emu,
            "--token",
            TOKEN,
            *(arg for vid in emu.fleet.ids for arg in ("--vehicle", vid)),
            "--reads",
            "odometer,location",
            "--monthly-budget",
            "500",
            "--make-limits",
            "default",
            "--max-age",
            "60",
            "--output",
            "-",
        )
    )
    assert done.returncode == 0, done.stderr
    line = summary_value(done.stderr, "Billed requests")
    sent = int(line.split(" sent")[0].replace(",", ""))
    # Two reads and the make (asked once) per vehicle.
    assert sent == emu.billed_requests == 3 * len(emu.fleet.ids)
    assert line.endswith("saved: 0 by reuse, 0 by webhooks, 0 by deduplication, 0 by parking")


def test_max_age_reuses_the_last_round_answers(emu: Emulator) -> None:
    emu.reset_billed_requests()
    ids = emu.fleet.ids[:4]
    done = run_cli(
        against(
            emu,
            "--token",
            TOKEN,
            *(arg for vid in ids for arg in ("--vehicle", vid)),
            "--reads",
            "odometer,location",
            "--rounds",
            "2",
            "--interval",
            "0.2",
            "--max-age",
            "600",
            "--output",
            "-",
        )
    )
    assert done.returncode == 0, done.stderr
    line = summary_value(done.stderr, "Billed requests")
    # The first round asks; the second is answered by what the first brought back.
    assert line.startswith(f"{2 * len(ids)} sent · saved: {2 * len(ids)} by reuse")
    assert emu.billed_requests == 2 * len(ids)
