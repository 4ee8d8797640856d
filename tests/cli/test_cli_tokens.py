"""``smartcar-async poll`` with refresh tokens in the vehicles file (issue 12), as real processes.

The emulator runs in this process with ``token_ttl=2``: access tokens live two
seconds and a refresh token works exactly once, so a double spend, a lost
pair or a 401 shows. Each refresh is a ``POST /oauth/token`` in its log.
"""

from __future__ import annotations

import contextlib
import csv
import json
import os
import signal
import sqlite3
import subprocess
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest
from cli_support import CLI, HANG_GUARD, ROOT, child_env, run_cli, vehicle_of, vehicle_requests

from smartcar_async import token_lineage
from smartcar_async.testing import Emulator, RecordedRequest

CLIENT_ID = "cli-tokens-client"
SECRET = "cli-SECRET-5ec7e7-0a"
CREDENTIALS = {"SMARTCAR_CLIENT_ID": CLIENT_ID, "SMARTCAR_CLIENT_SECRET": SECRET}
#: The client logs this (at -v) each time the API refuses a token.
REFUSED = "refreshing its token once"


@pytest.fixture
def emu() -> Iterator[Emulator]:
    with Emulator(vehicles=3, seed=7, token_ttl=2).in_thread() as emulator:
        emulator.register_client(CLIENT_ID, SECRET)
        yield emulator


def fleet(
    emu: Emulator, path: Path, *, expires: bool = True, one_user: bool = False
) -> tuple[Path, list[str]]:
    """Vehicles 1 and 2 belong to one user (one pair), vehicle 3 to another (or the same).

    Returns the file and the refresh tokens it names.
    """
    a, b, c = emu.fleet.ids
    shared = emu.issue_tokens([a, b, c] if one_user else [a, b])
    alone = shared if one_user else emu.issue_tokens([c])
    with path.open("w", newline="") as handle:
        out = csv.writer(handle)
        out.writerow(["vehicle_id", "access_token", "refresh_token", "expires_at"])
        for vid, pair in ((a, shared), (b, shared), (c, alone)):
            when = pair.expires_at.strftime("%Y-%m-%dT%H:%M:%SZ") if expires else ""
            out.writerow([vid, pair.access_token, pair.refresh_token, when])
    return path, list(dict.fromkeys([shared.refresh_token, alone.refresh_token]))


def poll_args(emu: Emulator, listing: Path, state: Path, tmp_path: Path, run: str) -> list[str]:
    return [
        "poll",
        "--origin",
        emu.url,
        "--auth-origin",
        emu.url,
        "--vehicles-file",
        str(listing),
        "--state",
        str(state),
        "--reads",
        "odometer,location",
        "--interval",
        "1",
        "--jitter",
        "0",
        "--output",
        str(tmp_path / f"{run}.jsonl"),
        "--summary-json",
        str(tmp_path / f"{run}.json"),
        "--plain",
        "-v",
    ]


def start(args: Sequence[str]) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [*CLI, *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=child_env(CREDENTIALS),
        cwd=ROOT,
    )


def refresh_grants(emu: Emulator) -> list[str]:
    """The refresh tokens spent at the token endpoint, in order."""
    return [
        r.body["refresh_token"]
        for r in emu.requests
        if r.path == "/oauth/token"
        and isinstance(r.body, dict)
        and r.body.get("grant_type") == "refresh_token"
    ]


def bearer(req: RecordedRequest) -> str:
    return req.headers["Authorization"].removeprefix("Bearer ")


def tokens_by_vehicle(requests: Sequence[RecordedRequest]) -> dict[str, set[str]]:
    seen: dict[str, set[str]] = {}
    for req in requests:
        seen.setdefault(vehicle_of(req), set()).add(bearer(req))
    return seen


def stored_refresh_token(state: Path, lineage: str) -> str | None:
    """The state file's refresh token of ``lineage``, read as another process would."""
    if not state.exists():
        return None  # connecting would create it
    try:
        with contextlib.closing(sqlite3.connect(state, timeout=1.0)) as conn:
            row = conn.execute(
                "SELECT refresh_token FROM tokens WHERE lineage = ?", (lineage,)
            ).fetchone()
    except sqlite3.OperationalError:
        return None  # not created yet, or busy
    return None if row is None else str(row[0])


def check_run(figures: Path) -> Any:
    summary = json.loads(figures.read_text())
    polls = summary["polls"]
    assert polls["ok"] == polls["total"] > 0, json.dumps(summary)
    assert summary["reads"]["failed"] == 0, summary
    assert summary["exit_status"] == 0
    return summary


def assert_no_secrets(text: str, emu: Emulator, refresh_tokens: Sequence[str]) -> None:
    assert SECRET not in text
    for token in refresh_tokens:
        assert token not in text
    for req in vehicle_requests(emu):
        assert bearer(req) not in text


# ------------------------------------------------------------------ across expiries


def test_rounds_across_expiries_all_succeed_and_each_refresh_token_is_spent_once(
    emu: Emulator, tmp_path: Path
) -> None:
    listing, file_tokens = fleet(emu, tmp_path / "fleet.csv")
    state = tmp_path / "fleet.state"
    done = run_cli(
        [*poll_args(emu, listing, state, tmp_path, "run"), "--rounds", "6"], env=CREDENTIALS
    )
    assert done.returncode == 0, done.stderr
    check_run(tmp_path / "run.json")
    assert REFUSED not in done.stderr  # refreshed ahead of expiry, never after a 401

    grants = refresh_grants(emu)
    # Six rounds a second apart with two-second tokens: several refreshes per user.
    assert len(grants) >= 2 * 2
    assert len(set(grants)) == len(grants), "a refresh token was spent twice"
    assert all(token in grants for token in file_tokens)
    # The last pair of each user is in the store, its refresh token not yet spent.
    for token in file_tokens:
        last = stored_refresh_token(state, token_lineage(token))
        assert last is not None
        assert last not in grants
    assert_no_secrets(done.stdout + done.stderr, emu, [*file_tokens, *grants])


def test_vehicles_sharing_a_refresh_token_share_one_refresh(emu: Emulator, tmp_path: Path) -> None:
    # No expires_at: the file's pairs count as expired, so the first use refreshes.
    listing, file_tokens = fleet(emu, tmp_path / "fleet.csv", expires=False)
    state = tmp_path / "fleet.state"
    done = run_cli(
        [*poll_args(emu, listing, state, tmp_path, "run"), "--rounds", "3"], env=CREDENTIALS
    )
    assert done.returncode == 0, done.stderr
    check_run(tmp_path / "run.json")
    grants = refresh_grants(emu)
    assert len(set(grants)) == len(grants)
    a, b, c = emu.fleet.ids
    used = tokens_by_vehicle(vehicle_requests(emu))
    # The two cars of one user went through the same tokens: one refresh served both.
    assert used[a] == used[b]
    assert used[a].isdisjoint(used[c])
    # One exchange per access token used, none for the file's (expired) ones.
    assert len(grants) == len(used[a] | used[c])
    assert grants[:2] == file_tokens or grants[:2] == file_tokens[::-1]


# --------------------------------------------------------------------- crash safety


def test_kill_9_right_after_a_refresh_then_a_restart_carries_on_without_a_401(
    emu: Emulator, tmp_path: Path
) -> None:
    # One user: when its refresh is saved, no other exchange can be under way.
    # (A kill between an exchange and its save loses the new pair; Smartcar
    # accepts the spent token again for a while after use, which covers a
    # prompt restart. The emulator's token_ttl mode does not, on purpose.)
    listing, file_tokens = fleet(emu, tmp_path / "fleet.csv", one_user=True)
    state = tmp_path / "fleet.state"
    lineage = token_lineage(file_tokens[0])
    first = start([*poll_args(emu, listing, state, tmp_path, "first"), "--rounds", "0"])
    killed_after: str | None = None
    try:
        deadline = time.monotonic() + HANG_GUARD
        # Wait for a refresh past the first one, then for its pair to be saved,
        # and kill at once: the new pair is durable but perhaps not used yet.
        while killed_after is None:
            assert time.monotonic() < deadline, "no second refresh came"
            assert first.poll() is None, first.communicate()[1]
            spent = [t for t in refresh_grants(emu) if t != file_tokens[0]]
            stored = stored_refresh_token(state, lineage)
            if len(spent) >= 2 and stored is not None and stored not in refresh_grants(emu):
                os.kill(first.pid, signal.SIGKILL)
                killed_after = stored
            time.sleep(0.005)
    finally:
        if first.poll() is None:
            first.kill()
        first.communicate(timeout=HANG_GUARD)
    assert first.returncode == -signal.SIGKILL
    before = len(emu.requests)
    assert stored_refresh_token(state, lineage) == killed_after

    # The same file and state: the stored pairs win over the file's spent ones.
    done = run_cli(
        [*poll_args(emu, listing, state, tmp_path, "second"), "--rounds", "3"], env=CREDENTIALS
    )
    assert done.returncode == 0, done.stderr
    check_run(tmp_path / "second.json")
    assert REFUSED not in done.stderr  # no 401 to cure, and none left uncured
    grants = refresh_grants(emu)
    assert len(set(grants)) == len(grants), "a refresh token was spent twice"
    # The restart never offered the file's (spent) refresh tokens again.
    after = [
        r.body["refresh_token"]
        for r in emu.requests[before:]
        if r.path == "/oauth/token" and isinstance(r.body, dict)
    ]
    assert not set(after) & set(file_tokens)
    # Two-second tokens over three rounds: it refreshed from the pair the
    # killed process saved, so nobody has to connect again.
    assert after[0] == killed_after
    assert_no_secrets(done.stdout + done.stderr, emu, [*file_tokens, *grants])


# -------------------------------------------------------------------- usage errors


def test_refresh_tokens_need_state_and_the_app_credentials(emu: Emulator, tmp_path: Path) -> None:
    listing, file_tokens = fleet(emu, tmp_path / "fleet.csv")
    base = ["poll", "--origin", emu.url, "--auth-origin", emu.url, "--vehicles-file", str(listing)]

    no_state = run_cli(base, env=CREDENTIALS)
    assert no_state.returncode == 2
    assert "line 2: refresh tokens need --state PATH" in no_state.stderr
    assert "lost at exit" in no_state.stderr

    state = ["--state", str(tmp_path / "s.db")]
    for missing in ("SMARTCAR_CLIENT_ID", "SMARTCAR_CLIENT_SECRET"):
        done = run_cli([*base, *state], env={**CREDENTIALS, missing: ""})
        assert done.returncode == 2
        assert "set SMARTCAR_CLIENT_ID and SMARTCAR_CLIENT_SECRET" in done.stderr

    bad_origin = run_cli(
        [*base[:3], "--auth-origin", "ftp://x", "--vehicles-file", str(listing), *state],
        env=CREDENTIALS,
    )
    assert bad_origin.returncode == 2
    assert "--auth-origin" in bad_origin.stderr

    env_origin = run_cli(
        [*base[:3], "--vehicles-file", str(listing), *state],
        env={**CREDENTIALS, "SMARTCAR_AUTH_ORIGIN": "not a url"},
    )
    assert env_origin.returncode == 2
    assert "$SMARTCAR_AUTH_ORIGIN" in env_origin.stderr

    assert emu.requests == []
    assert not (tmp_path / "s.db").exists()
    for done in (no_state, bad_origin, env_origin):
        assert_no_secrets(done.stdout + done.stderr, emu, file_tokens)


def test_the_auth_origin_comes_from_the_environment(emu: Emulator, tmp_path: Path) -> None:
    listing, file_tokens = fleet(emu, tmp_path / "fleet.csv", expires=False)
    args = poll_args(emu, listing, tmp_path / "s.db", tmp_path, "run")
    at = args.index("--auth-origin")
    del args[at : at + 2]
    done = run_cli([*args, "--rounds", "1"], env={**CREDENTIALS, "SMARTCAR_AUTH_ORIGIN": emu.url})
    assert done.returncode == 0, done.stderr
    assert sorted(refresh_grants(emu)) == sorted(file_tokens)
