"""Fixtures: the shared three-powertrain emulator and a client on it (support.fleet)."""

from __future__ import annotations

from support.fleet import client, emu, ev, ice, phev

__all__ = ["client", "emu", "ev", "ice", "phev"]
