"""Where each Smartcar service lives, resolved the way the official Python SDK does.

Each resolver takes an explicit override first, then the SDK's environment
variable (read at call time, so a test's ``monkeypatch.setenv`` works), then
the public default:

=============  ================================  ================================
service        environment variable              default
=============  ================================  ================================
API            ``SMARTCAR_API_ORIGIN``           https://api.smartcar.com
OAuth token    ``SMARTCAR_AUTH_ORIGIN``          https://auth.smartcar.com
Connect        ``SMARTCAR_CONNECT_ORIGIN``       https://connect.smartcar.com
Management     ``SMARTCAR_MANAGEMENT_API_ORIGIN``  https://management.smartcar.com
API v3         ``SMARTCAR_VEHICLE_API_V3_ORIGIN``  https://vehicle.api.smartcar.com
=============  ================================  ================================

The v3 origin has no ``/v3`` (the client appends it), as in the official
Python SDK 6.19.1, which names the same variable.

The official Python SDK 6.x holds ``SMARTCAR_AUTH_ORIGIN`` as the full token
URL (``…/oauth/token``) while the Node and Java SDKs hold an origin; a value
ending in ``/oauth/token`` is used as is, anything else gets it appended, so
one environment works for all of them.

Application tokens (Smartcar API v3) come from the IAM origin: the argument,
else ``SMARTCAR_IAM_ORIGIN`` (our name: no official SDK reads one), else
https://iam.smartcar.com; tokens are posted for at ``/oauth2/token`` under it,
and a value already ending in ``/oauth2/token`` is used as is.
"""

from __future__ import annotations

import os
from typing import Final
from urllib.parse import urlsplit

__all__ = [
    "DEFAULT_API_ORIGIN",
    "DEFAULT_AUTH_ORIGIN",
    "DEFAULT_CONNECT_ORIGIN",
    "DEFAULT_IAM_ORIGIN",
    "DEFAULT_MANAGEMENT_ORIGIN",
    "DEFAULT_VEHICLE_API_ORIGIN",
    "IAM_ORIGIN_ENV",
    "IAM_TOKEN_PATH",
    "TOKEN_PATH",
    "api_origin",
    "check_origin",
    "connect_origin",
    "iam_token_url",
    "management_origin",
    "token_url",
    "vehicle_api_origin",
]

DEFAULT_API_ORIGIN: Final = "https://api.smartcar.com"
DEFAULT_AUTH_ORIGIN: Final = "https://auth.smartcar.com"
DEFAULT_CONNECT_ORIGIN: Final = "https://connect.smartcar.com"
DEFAULT_MANAGEMENT_ORIGIN: Final = "https://management.smartcar.com"
DEFAULT_VEHICLE_API_ORIGIN: Final = "https://vehicle.api.smartcar.com"
TOKEN_PATH: Final = "/oauth/token"
DEFAULT_IAM_ORIGIN: Final = "https://iam.smartcar.com"
IAM_TOKEN_PATH: Final = "/oauth2/token"
#: Our own name for the IAM origin; the official SDKs have none (see the module docstring).
IAM_ORIGIN_ENV: Final = "SMARTCAR_IAM_ORIGIN"


def check_origin(name: str, origin: object) -> str:
    """An http(s) URL without query or fragment, returned without a trailing slash.

    A path is allowed (a reverse proxy may serve Smartcar under a prefix),
    as the official SDKs allow it by plain string concatenation.
    """
    if not isinstance(origin, str):
        raise TypeError(f"{name} must be a str, got {type(origin).__name__}")
    if "@" in origin:
        # Credentials (user:password@) would show in reprs, logs and error
        # messages; with an unencoded "/" in the password, the parser would
        # even take part of it for the host and port. Quote none of it.
        raise ValueError(f"{name} must not carry credentials (user:password@)")
    try:
        parts = urlsplit(origin.strip())
    except ValueError:  # e.g. an unclosed "[" of an IPv6 host
        raise ValueError(f"{name} must be an http(s) URL, got {origin!r}") from None
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ValueError(f"{name} must be an http(s) URL, got {origin!r}")
    if parts.query or parts.fragment:
        raise ValueError(f"{name} must not carry a query or fragment")
    return origin.strip().rstrip("/")


def _resolve(name: str, override: str | None, env_var: str, default: str) -> str:
    # An empty variable counts as unset, as in the official SDK's `or` fallbacks.
    value = override if override is not None else (os.environ.get(env_var) or default)
    return check_origin(name, value)


def api_origin(override: str | None = None) -> str:
    """The Vehicle API origin: *override*, else ``SMARTCAR_API_ORIGIN``, else the default."""
    return _resolve("api_origin", override, "SMARTCAR_API_ORIGIN", DEFAULT_API_ORIGIN)


def vehicle_api_origin(override: str | None = None) -> str:
    """The v3 Vehicle API origin: *override*, ``SMARTCAR_VEHICLE_API_V3_ORIGIN``, or the default."""
    return _resolve(
        "vehicle_api_origin",
        override,
        "SMARTCAR_VEHICLE_API_V3_ORIGIN",
        DEFAULT_VEHICLE_API_ORIGIN,
    )


def connect_origin(override: str | None = None) -> str:
    """The Connect origin: *override*, else ``SMARTCAR_CONNECT_ORIGIN``, else the default."""
    return _resolve("connect_origin", override, "SMARTCAR_CONNECT_ORIGIN", DEFAULT_CONNECT_ORIGIN)


def management_origin(override: str | None = None) -> str:
    """The Management API origin: *override*, ``SMARTCAR_MANAGEMENT_API_ORIGIN``, or the default."""
    return _resolve(
        "management_origin",
        override,
        "SMARTCAR_MANAGEMENT_API_ORIGIN",
        DEFAULT_MANAGEMENT_ORIGIN,
    )


def token_url(override: str | None = None) -> str:
    """The full OAuth token URL from an auth origin or a token URL (see the module docstring)."""
    base = _resolve("auth_origin", override, "SMARTCAR_AUTH_ORIGIN", DEFAULT_AUTH_ORIGIN)
    return base if base.endswith(TOKEN_PATH) else base + TOKEN_PATH


def iam_token_url(override: str | None = None) -> str:
    """The application-token URL: *override*, else ``SMARTCAR_IAM_ORIGIN``, else the default.

    An origin gets ``/oauth2/token`` appended; a full token URL is used as is.
    """
    base = _resolve("iam_origin", override, IAM_ORIGIN_ENV, DEFAULT_IAM_ORIGIN)
    return base if base.endswith(IAM_TOKEN_PATH) else base + IAM_TOKEN_PATH
