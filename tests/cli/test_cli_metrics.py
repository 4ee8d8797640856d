"""``poll --metrics-port``: /metrics scraped while the command runs, and matching its summary."""

from __future__ import annotations

import json
import re
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path

import pytest
from cli_support import HANG_GUARD, ROOT, against, run_cli, start_cli, write
from prometheus_client.parser import text_string_to_metric_families
from support import TOKEN

from smartcar_async.testing import Emulator

NARROW = "tok-SECRET-narrow-metrics-5ca1ab1e"
Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]

#: Every series the command promises (README "Run it as a service"), as sample names.
DOCUMENTED = (
    "smartcar_async_http_requests_total",
    "smartcar_async_request_duration_seconds_bucket",
    "smartcar_async_logical_reads_total",
    "smartcar_async_deduplicated_reads_total",
    "smartcar_async_retries_total",
    "smartcar_async_rate_limits_total",
    "smartcar_async_errors_total",
    "smartcar_async_poll_results_total",
    "smartcar_async_vehicles_gated",
    "smartcar_async_reads_parked",
    "smartcar_async_token_refreshes_total",
)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def scrape(port: int) -> str | None:
    """The exposition, or None while the endpoint is not up yet."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as answer:
            text: str = answer.read().decode("utf-8")
            return text
    except (urllib.error.URLError, ConnectionError):
        return None


def parse(text: str) -> Samples:
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def total(samples: Samples, name: str, **labels: str) -> float:
    return sum(
        value
        for (sample_name, sample_labels), value in samples.items()
        if sample_name == name and set(labels.items()) <= set(sample_labels)
    )


def scrape_until(
    port: int, process: subprocess.Popen[str], ready: Callable[[Samples], bool]
) -> tuple[str, Samples]:
    """Scrape until ``ready`` holds (bounded: a guard against hangs, not a timing assertion)."""
    deadline = time.monotonic() + HANG_GUARD
    while time.monotonic() < deadline and process.poll() is None:
        text = scrape(port)
        if text is not None:
            samples = parse(text)
            if ready(samples):
                return text, samples
        time.sleep(0.05)
    raise AssertionError(f"/metrics never got there (exit {process.poll()})")


def stop(process: subprocess.Popen[str], signum: signal.Signals) -> str:
    try:
        process.send_signal(signum)
        _, err = process.communicate(timeout=HANG_GUARD)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    return err


def test_metrics_during_a_run_match_its_summary(emu: Emulator, tmp_path: Path) -> None:
    compat, narrow, fine = emu.fleet.ids
    vehicle = emu.fleet.get(compat)
    assert vehicle is not None
    vehicle.capabilities.discard("/odometer")  # COMPATIBILITY: odometer parked
    emu.register_token(NARROW, scopes=["read_vehicle_info"])  # PERMISSION: both parked
    emu.inject(status=500, path="/batch")  # one retried batch
    emu.inject(status=429, type="RATE_LIMIT", code="VEHICLE", retry_after=1, path="/batch")
    listing = write(
        tmp_path / "fleet.csv",
        f"vehicle_id,access_token\n{compat},{TOKEN}\n{narrow},{NARROW}\n{fine},{TOKEN}\n",
    )
    port, summary = free_port(), tmp_path / "summary.json"
    # Rounds until stopped, far enough apart for the test to scrape between two of them.
    process = start_cli(
        [
            *against(emu, "--vehicles-file", str(listing)),
            *("--reads", "odometer,location", "--rounds", "0", "--interval", "5"),
            *("--jitter", "0", "--plain", "--output", str(tmp_path / "out.jsonl")),
            *("--summary-json", str(summary), "--metrics-port", str(port)),
        ]
    )
    try:
        # During round 1: the endpoint is up and its exposition parses.
        text, samples = scrape_until(port, process, lambda s: True)
        assert all(name.startswith("smartcar_async_") for name, _ in samples)
        # Round 2 done: the narrow vehicle's poll is "parked", three reads are parked.
        text, samples = scrape_until(
            port,
            process,
            lambda s: (
                total(s, "smartcar_async_poll_results_total") == 6
                and total(s, "smartcar_async_reads_parked") == 3
            ),
        )
    finally:
        err = stop(process, signal.SIGTERM)
    assert process.returncode == 143, err
    figures = json.loads(summary.read_text())
    assert figures["rounds"]["started"] == 2, "round 3 began before the scrape: a slow machine?"

    names = {name for name, _ in samples}
    # Series with labels appear with their first event: by now each has had one.
    assert names >= set(DOCUMENTED), sorted(set(DOCUMENTED) - names)
    assert all(name.startswith("smartcar_async_") for name in names)
    for secret in (TOKEN, NARROW, *emu.fleet.ids):
        assert secret not in text
    polls = figures["polls"]
    assert polls["parked"] == 1
    for outcome in ("ok", "error", "parked", "skipped"):
        metric = total(samples, "smartcar_async_poll_results_total", outcome=outcome)
        assert metric == polls[outcome], outcome
    http = figures["http_requests"]
    assert http["retries"] >= 2
    assert total(samples, "smartcar_async_http_requests_total") == http["total"]
    assert total(samples, "smartcar_async_http_requests_total", kind="batch") == http["batches"]
    assert total(samples, "smartcar_async_http_requests_total", kind="get") == http["single_gets"]
    assert total(samples, "smartcar_async_retries_total") == http["retries"]
    assert total(samples, "smartcar_async_rate_limits_total", scope="vehicle") == 1
    assert total(samples, "smartcar_async_rate_limits_total") == figures["rate_limited"]
    reads = figures["reads"]
    assert total(samples, "smartcar_async_logical_reads_total") == reads["logical"]
    assert total(samples, "smartcar_async_deduplicated_reads_total") == reads["deduplicated"]
    assert total(samples, "smartcar_async_errors_total", type="COMPATIBILITY") == 1
    assert total(samples, "smartcar_async_errors_total", type="PERMISSION") == 2
    assert total(samples, "smartcar_async_request_duration_seconds_count") == http["total"]
    assert reads["parked_by_reason"] == {"COMPATIBILITY": 1, "PERMISSION": 2}
    assert total(samples, "smartcar_async_reads_parked") == 3
    assert total(samples, "smartcar_async_token_refreshes_total") == 0
    # The endpoint stopped with the process.
    assert scrape(port) is None


def test_the_port_in_use_exits_1_with_a_clear_message(emu: Emulator) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        args = against(emu, "--token", TOKEN, "--vehicle", emu.fleet.ids[0])
        done = run_cli([*args, "--metrics-port", str(port)])
    assert done.returncode == 1, done.stderr
    assert f"cannot serve metrics on 127.0.0.1:{port}" in done.stderr
    assert "Traceback" not in done.stderr
    assert not emu.requests, "nothing is polled when the endpoint cannot be served"


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--metrics-port", "70000"], "--metrics-port must be within 0..65535"),
        (["--metrics-host", "0.0.0.0"], "--metrics-host needs --metrics-port"),
    ],
)
def test_bad_metrics_flags_exit_2(emu: Emulator, argv: list[str], message: str) -> None:
    done = run_cli(against(emu, "--token", TOKEN, "--vehicle", emu.fleet.ids[0], *argv))
    assert done.returncode == 2, done.stderr
    assert message in done.stderr
    assert not emu.requests


def test_without_prometheus_client_the_flag_says_what_to_install(
    emu: Emulator, tmp_path: Path
) -> None:
    # A prometheus_client that cannot be imported, ahead of the installed one.
    shim = tmp_path / "shim" / "prometheus_client"
    shim.mkdir(parents=True)
    (shim / "__init__.py").write_text("raise ImportError('blocked for the test')\n")
    pythonpath = f"{shim.parent}:{ROOT}"
    args = against(emu, "--token", TOKEN, "--vehicle", emu.fleet.ids[0])
    done = run_cli([*args, "--metrics-port", "0"], env={"PYTHONPATH": pythonpath})
    assert done.returncode == 2, done.stderr
    assert "pip install 'smartcar-async[metrics]'" in done.stderr
    assert "Traceback" not in done.stderr
    assert not emu.requests
    # The same child polls fine without the flag: only --metrics-port needs the package.
    done = run_cli(args, env={"PYTHONPATH": pythonpath})
    assert done.returncode == 0, done.stderr


FLAG = re.compile(r"(?<![\w-])--[a-z][a-z-]*[a-z]")


def command_flags(section: str) -> set[str]:
    """Flags named in the prose and in the section's ``smartcar-async`` command lines.

    Other commands' flags (``systemctl --now``...) in its code blocks are not ours.
    """
    flags: set[str] = set()
    fenced = continued = False
    for line in section.splitlines():
        if line.startswith("```"):
            fenced = not fenced
            continue
        if not fenced or continued or "smartcar-async" in line:
            flags |= set(FLAG.findall(line))
        continued = fenced and line.rstrip().endswith("\\")
    return flags


def test_every_flag_of_the_service_section_is_in_help() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    section = readme.partition("\n## Run it as a service\n")[2].partition("\n## ")[0]
    assert section, "the README has a 'Run it as a service' section"
    flags = command_flags(section)
    assert {"--metrics-port", "--metrics-host", "--state", "--log-format", "--rounds"} <= flags
    helped: set[str] = set()
    for command in (["--help"], ["poll", "--help"]):
        done = run_cli(command)
        assert done.returncode == 0, done.stderr
        helped |= set(FLAG.findall(done.stdout))
    assert flags <= helped, sorted(flags - helped)
