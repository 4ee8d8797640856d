"""Billed-request counting, per vehicle.

What counts (the emulator's documented choice; see ``Emulator.billed_requests``):
Smartcar's support article says it charges "for all successful API requests that
perform actions on or pull data from vehicles" and not for the vehicle list,
user, disconnect and permissions endpoints; its batch docs say each path of a
batch counts as one request; third parties running v3 report that one
``GET /signals`` is one call of the monthly allowance, and that commands count
(v3 findings, item 25). So every successful v2 vehicle request counts one
(except ``/permissions``, ``DELETE /application`` and webhook subscriptions),
every successful batch path counts one, and every successful v3 vehicle request
(``GET /vehicles/{id}``, each ``/signals`` page whatever it holds,
``/signals/{code}``, each command) counts one. Failed requests are free.
"""

from __future__ import annotations

import threading


class Billing:
    """Counts per vehicle id; readable from a test thread while serving."""

    def __init__(self) -> None:
        self._counts: dict[str, int] = {}
        self._lock = threading.Lock()

    def bill(self, vehicle_id: str) -> None:
        with self._lock:
            self._counts[vehicle_id] = self._counts.get(vehicle_id, 0) + 1

    def total(self) -> int:
        with self._lock:
            return sum(self._counts.values())

    def by_vehicle(self) -> dict[str, int]:
        with self._lock:
            return dict(self._counts)

    def reset(self) -> None:
        with self._lock:
            self._counts.clear()
