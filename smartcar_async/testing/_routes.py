"""The vehicle endpoint table: path resolution and default capabilities.

One table serves direct requests and batch items, so a batch sub-path behaves
exactly like the same GET.
"""

from __future__ import annotations

from typing import Any

from ._core import CORE, WEBHOOKS
from ._endpoint import COMBUSTION, ELECTRIC, Ctx, Endpoint
from ._fleet import Powertrain
from ._makes import MAKE_ENDPOINTS, MAKES


def _batch_placeholder(ctx: Ctx) -> Any:  # pragma: no cover - the server handles /batch
    raise AssertionError("batch is dispatched by the server")


BATCH = Endpoint("POST", "/batch", _batch_placeholder, None, live=False)

ENDPOINTS: tuple[Endpoint, ...] = (*CORE, *MAKE_ENDPOINTS, BATCH)

_TABLE: dict[str, dict[str, Endpoint]] = {}
for _endpoint in ENDPOINTS:
    _TABLE.setdefault(_endpoint.path, {})[_endpoint.method] = _endpoint

_WEBHOOK_PREFIX = "/webhooks/"

_FEATURES: dict[str, frozenset[str]] = {
    "EV": ELECTRIC,
    "ICE": COMBUSTION,
    "PHEV": ELECTRIC | COMBUSTION,
}


def resolve(method: str, path: str) -> tuple[Endpoint | None, str | None]:
    """The endpoint for a normalised sub-path (``"/odometer"``), and its path parameter.

    None when the path is unknown or does not take this method (both are
    answered as unknown paths, 404 RESOURCE_NOT_FOUND:PATH, like Smartcar's
    method-and-path router).
    """
    by_method = _TABLE.get(path)
    if by_method is not None:
        return by_method.get(method), None
    if path.startswith(_WEBHOOK_PREFIX):
        webhook_id = path[len(_WEBHOOK_PREFIX) :]
        if webhook_id and "/" not in webhook_id:
            return WEBHOOKS.get(method), webhook_id
    return None, None


def known_path(path: str) -> bool:
    return path in _TABLE or (
        path.startswith(_WEBHOOK_PREFIX) and "/" not in path[len(_WEBHOOK_PREFIX) :]
    )


def resolve_miscased_make(method: str, path: str) -> Endpoint | None:
    """The endpoint a make-specific path names when its make is not lower case.

    Smartcar documents that upper-case makes get a PERMISSION error, so these
    resolve (to be refused) instead of being unknown paths.
    """
    head, sep, tail = path[1:].partition("/")
    lowered = head.lower()
    if lowered == head or lowered not in MAKES:
        return None
    return resolve(method, f"/{lowered}{sep}{tail}")[0]


def default_capabilities(make: str, powertrain: Powertrain) -> set[str]:
    """Capability paths a vehicle of this make and powertrain supports by default."""
    features = _FEATURES[powertrain]
    make_path = make.lower()
    return {
        ep.capability
        for ep in ENDPOINTS
        if ep.capability is not None
        and (ep.make is None or ep.make == make_path)
        and ep.requires <= features
    }
