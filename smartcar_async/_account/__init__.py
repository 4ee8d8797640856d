"""Account-level code: everything that runs without a `Client`.

One-off API and Management calls (`_api`), the OAuth flow (`AuthClient`,
`_auth`), their shared one-exchange helper (`_http`) and the webhook helpers
(`_webhooks`). Imports point one way: this subpackage uses the flat core
(transport, models, origins, validation); the core never imports it, so
nothing on a vehicle read's path depends on it. Only the package's
``__init__`` re-exports its public names.
"""

from __future__ import annotations

from ._api import (
    delete_connections,
    get_compatibility,
    get_compatibility_matrix,
    get_connections,
    get_user,
    get_vehicles,
    iter_connections,
    iter_permissions,
    iter_vehicles,
)
from ._auth import AuthClient
from ._webhooks import (
    SIGNATURE_HEADER,
    challenge_response,
    hash_challenge,
    parse_webhook,
    verify_payload,
)

__all__ = [
    "SIGNATURE_HEADER",
    "AuthClient",
    "challenge_response",
    "delete_connections",
    "get_compatibility",
    "get_compatibility_matrix",
    "get_connections",
    "get_user",
    "get_vehicles",
    "hash_challenge",
    "iter_connections",
    "iter_permissions",
    "iter_vehicles",
    "parse_webhook",
    "verify_payload",
]
