"""The vehicles file ``python -m smartcar_async.testing --write-fleet`` writes.

It is the CSV ``smartcar-async poll --vehicles-file`` reads, with a header
row, one line per vehicle and one token pair per simulated user: vehicles
that share a user share the pair, as cars connected in one Smartcar Connect
session do.
"""

from __future__ import annotations

import contextlib
import csv
import io
import os
import tempfile

from ._auth import TokenPair
from ._emulator import Emulator

HEADER = ("vehicle_id", "access_token", "refresh_token", "expires_at")


def issue_fleet(emu: Emulator, vehicles_per_user: int) -> list[tuple[str, TokenPair]]:
    """(vehicle id, its user's tokens) for every vehicle, ``vehicles_per_user`` to a user."""
    if vehicles_per_user < 1:
        raise ValueError("vehicles_per_user must be at least 1")
    ids = emu.fleet.ids
    rows: list[tuple[str, TokenPair]] = []
    for start in range(0, len(ids), vehicles_per_user):
        group = ids[start : start + vehicles_per_user]
        pair = emu.issue_tokens(group)
        rows.extend((vid, pair) for vid in group)
    return rows


def render(rows: list[tuple[str, TokenPair]], origin: str) -> str:
    out = io.StringIO()
    out.write(f"# Vehicles of the Smartcar emulator at {origin}; the tokens die with it.\n")
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(HEADER)
    for vid, pair in rows:
        # Whole seconds, rounded down: a reader then refreshes a moment early, never late.
        expires = pair.expires_at.strftime("%Y-%m-%dT%H:%M:%SZ")
        writer.writerow((vid, pair.access_token, pair.refresh_token, expires))
    return out.getvalue()


def write_private(path: str, text: str) -> None:
    """Replace ``path`` with ``text`` atomically, readable by its owner only (it holds tokens)."""
    directory = os.path.dirname(os.path.abspath(path))
    # mkstemp creates the file 0600, so the tokens are never readable by others,
    # not even for a moment; os.replace then swaps it in whole.
    fd, temp = tempfile.mkstemp(dir=directory, prefix=".fleet-", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temp)
        raise
