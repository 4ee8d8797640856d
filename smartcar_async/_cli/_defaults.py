"""The command's defaults, environment variable names and signal exit statuses."""

from __future__ import annotations

from typing import Final

__all__ = [
    "API_INTERVAL",
    "API_ROUNDS",
    "CLIENT_ID_ENV",
    "CLIENT_SECRET_ENV",
    "DEFAULT_FLEET_NAME",
    "DEFAULT_LEASE",
    "DEFAULT_RECHECK",
    "DEMO_ALSO",
    "DEMO_ASLEEP",
    "DEMO_FLEET_SIZE",
    "DEMO_INTERVAL",
    "DEMO_ITEM_ERRORS",
    "DEMO_LATENCY",
    "DEMO_READS",
    "DEMO_ROUNDS",
    "DEMO_SERVER_ERRORS",
    "DEMO_UNREACHABLE",
    "REDIS_SCHEMES",
    "SIGNAL_EXITS",
    "TOKEN_ENV",
]

DEMO_READS: Final = ("odometer", "location", "tire_pressure", "lock_status")
#: The second job of the demo asks for a signal the main job reads too, as a
#: live map would next to a telemetry job: the two share each vehicle's batch.
DEMO_ALSO: Final = ("location",)
DEMO_FLEET_SIZE: Final = 200
DEMO_LATENCY: Final = (0.05, 0.3)
DEMO_INTERVAL: Final = 2.0
DEMO_ROUNDS: Final = 3
DEMO_ASLEEP: Final = 0.03
DEMO_UNREACHABLE: Final = 0.01
DEMO_SERVER_ERRORS: Final = 0.02
DEMO_ITEM_ERRORS: Final = 0.005
#: Against the real API every read is billed and rate limited: one pass by
#: default, and rounds five minutes apart when more are asked for.
API_INTERVAL: Final = 300.0
API_ROUNDS: Final = 1
#: Seconds before a read that answered COMPATIBILITY or PERMISSION is asked again.
DEFAULT_RECHECK: Final = 86_400.0
#: A --state in one of these schemes is a Redis URL, shared by many workers.
REDIS_SCHEMES: Final = ("redis://", "rediss://", "unix://")
DEFAULT_FLEET_NAME: Final = "default"
#: Seconds a worker holds the vehicles it claimed (renewed while their polls run).
DEFAULT_LEASE: Final = 30.0
TOKEN_ENV: Final = "SMARTCAR_ACCESS_TOKEN"
#: Where the client credentials for refreshing come from; never a flag (it would show in ps).
CLIENT_ID_ENV: Final = "SMARTCAR_CLIENT_ID"
CLIENT_SECRET_ENV: Final = "SMARTCAR_CLIENT_SECRET"
#: Exit statuses by the signal that stopped the run: 128 + its number, as shells report.
SIGNAL_EXITS: Final = {"SIGINT": 130, "SIGTERM": 143}
