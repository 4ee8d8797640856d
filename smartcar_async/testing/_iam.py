"""Application tokens (``POST /oauth2/token``, client credentials) and v3 authentication.

The token endpoint imitates ``POST https://iam.smartcar.com/oauth2/token``
(smartcar-api-v3.md §1, findings item 1): ``grant_type=client_credentials``
with ``client_id`` and ``client_secret`` as a JSON body or a form (a Basic
header is accepted too); the answer is ``{"access_token", "token_type":
"Bearer", "expires_in": 3600}``: one hour, no refresh token. Errors are OAuth
style, ``{"error", "error_description"}``: 400 ``invalid_request`` (a field is
missing), 400 ``unsupported_grant_type``, 401 ``invalid_client`` (credentials
refused: any non-empty pair passes until ``Emulator.register_client`` registers
one). Smartcar also refuses client ids not starting with ``client_``; the
emulator does not, so tests may use any id.

On v3 paths a Bearer token is either an application token minted here or a
user's access token, exactly as v2 accepts it (registered, issued, or any
token under ``accept_any_token``). An application token needs ``sc-user-id``
on signal and command requests (else 400 ``VALIDATION/MISSING_PARAMETER``,
detail ``missing userId``, as live); it is optional on ``GET /vehicles/{id}``,
where the spec lists no such header. The user id decides what the request may
reach: the union of the live tokens issued or registered for that user
(``issue_tokens(user_id=...)``, ``issue_code(user_id=...)``,
``register_token(user_id=...)``, their vehicles and scopes), or, when there is
none, the fleet vehicles whose ``user_id`` it is (``emu.fleet.users``), with
every scope. Any other user id reaches no vehicle (403 PERMISSION). With a
user's own access token, ``sc-user-id`` is ignored. An expired application
token gets 401 AUTHENTICATION, also under ``accept_any_token``.
"""

from __future__ import annotations

import secrets
import threading
from collections.abc import Mapping
from typing import Any, Literal

import attrs

from ._auth import Credentials, Grant, OAuthError, basic_credentials, bearer_token
from ._clock import Clock
from ._errors import authentication
from ._fleet import Fleet
from ._v3_errors import missing_user_id

APP_TOKEN_LIFETIME = 3600


@attrs.define
class _AppToken:
    client_id: str
    expires_at: float


class AppTokens:
    """The application tokens the IAM endpoint minted. Safe across threads."""

    def __init__(self, clock: Clock, credentials: Credentials) -> None:
        self._clock = clock
        self._credentials = credentials
        self.ttl = APP_TOKEN_LIFETIME
        self.issued = 0
        # Kept after expiry, so that accept_any_token cannot revive an expired one.
        self._tokens: dict[str, _AppToken] = {}
        self._lock = threading.Lock()

    def issue(self, client_id: str) -> dict[str, Any]:
        token = "app_" + secrets.token_urlsafe(24)
        ttl = self.ttl
        with self._lock:
            self._tokens[token] = _AppToken(client_id, self._clock.now() + ttl)
            self.issued += 1
        return {"access_token": token, "token_type": "Bearer", "expires_in": ttl}

    def endpoint(self, header: str | None, body: Any) -> dict[str, Any]:
        """``POST /oauth2/token``: the token JSON, or raises OAuthError."""
        fields: Mapping[str, Any] = body if isinstance(body, dict) else {}
        grant_type = fields.get("grant_type")
        if not grant_type:
            raise OAuthError(400, "invalid_request", "Missing required parameter: grant_type.")
        if grant_type != "client_credentials":
            raise OAuthError(
                400, "unsupported_grant_type", f"Unsupported grant_type: {grant_type}."
            )
        client_id, secret = fields.get("client_id"), fields.get("client_secret")
        if client_id is None and secret is None:
            basic = basic_credentials(header)
            if basic is not None:
                client_id, secret = basic
        if not isinstance(client_id, str) or not isinstance(secret, str) or not secret:
            raise OAuthError(
                400, "invalid_request", "Missing required parameter: client_id or client_secret."
            )
        if not self._credentials.client_ok(client_id, secret):
            raise OAuthError(401, "invalid_client", "Invalid client credentials.")
        return self.issue(client_id)

    def status(self, token: str) -> Literal["valid", "expired"] | None:
        """None when ``token`` is not an application token."""
        entry = self._tokens.get(token)
        if entry is None:
            return None
        return "valid" if self._clock.now() < entry.expires_at else "expired"

    def expire(self, token: str) -> None:
        with self._lock:
            entry = self._tokens.get(token)
            if entry is None:
                raise KeyError("not an application token of this emulator")
            entry.expires_at = self._clock.now()


def _union(sets: list[frozenset[str] | None]) -> frozenset[str] | None:
    if any(s is None for s in sets):
        return None
    return frozenset().union(*(s for s in sets if s is not None))


def user_grant(credentials: Credentials, fleet: Fleet, token: str, user_id: str) -> Grant:
    """What an application token acting for ``user_id`` may reach (see the module docs)."""
    grants = credentials.grants_of_user(user_id)
    if grants:
        return Grant(
            token,
            _union([g.scopes for g in grants]),
            _union([g.vehicle_ids for g in grants]),
            user_id,
        )
    owned = frozenset(v.id for v in fleet.vehicles if v.user_id == user_id)
    return Grant(token, None, owned, user_id)


def v3_grant(
    app_tokens: AppTokens,
    credentials: Credentials,
    fleet: Fleet,
    headers: Mapping[str, str],
    *,
    need_user: bool,
) -> Grant:
    """The grant of a v3 request; raises ApiError 401 / 400 as the module docs say."""
    header = headers.get("Authorization")
    token = bearer_token(header)
    if token is None:
        raise authentication()
    status = app_tokens.status(token)
    if status is None:
        return credentials.authenticate(header)
    if status == "expired":
        raise authentication()
    user_id = headers.get("sc-user-id", "").strip()
    if not user_id:
        if need_user:
            raise missing_user_id()
        return Grant(token)
    return user_grant(credentials, fleet, token, user_id)
