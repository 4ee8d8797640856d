"""Credentials: access tokens and their grants, OAuth clients, codes and refresh tokens.

By default any non-empty Bearer token is accepted with every scope for every
vehicle, so a client under test needs no setup. Registered and issued tokens
carry exactly the scopes and vehicles they were given.
"""

from __future__ import annotations

import base64
import binascii
import math
import secrets
import threading
import uuid
from collections.abc import Iterable
from datetime import UTC, datetime

import attrs

from ._clock import Clock
from ._errors import authentication

ALL_SCOPES: tuple[str, ...] = (
    "control_charge",
    "control_navigation",
    "control_security",
    "read_battery",
    "read_charge",
    "read_charge_locations",
    "read_charge_records",
    "read_climate",
    "read_compass",
    "read_diagnostics",
    "read_engine_oil",
    "read_extended_vehicle_info",
    "read_fuel",
    "read_location",
    "read_odometer",
    "read_security",
    "read_service_history",
    "read_speedometer",
    "read_thermometer",
    "read_tires",
    "read_user_profile",
    "read_vehicle_info",
    "read_vin",
)

ACCESS_TOKEN_LIFETIME = 7200
REFRESH_TOKEN_LIFETIME = 60 * 86_400
CODE_LIFETIME = 600


@attrs.define(eq=False)
class Grant:
    """What one access token may do. ``None`` scopes or vehicles mean "all"."""

    token: str
    scopes: frozenset[str] | None = None
    vehicle_ids: frozenset[str] | None = None
    user_id: str | None = None
    expires_at: float | None = None
    revoked: bool = False

    def has_scope(self, scope: str) -> bool:
        return self.scopes is None or scope in self.scopes

    def has_vehicle(self, vehicle_id: str) -> bool:
        return self.vehicle_ids is None or vehicle_id in self.vehicle_ids

    def scope_list(self) -> list[str]:
        return sorted(self.scopes) if self.scopes is not None else list(ALL_SCOPES)


def _hidden(value: object) -> str:
    # A token pair printed in a test log must not hand out working credentials.
    return "'<redacted>'" if value else repr(value)


@attrs.frozen
class TokenPair:
    """A connected user's tokens, as `Emulator.issue_tokens` mints them.

    ``expires_at`` is when the access token stops working, as an aware UTC
    datetime on the emulator's clock; ``expires_in`` is its lifetime in seconds.
    The repr hides both tokens.

    Added in 0.1.0.
    """

    access_token: str = attrs.field(repr=_hidden)
    refresh_token: str = attrs.field(repr=_hidden)
    expires_at: datetime
    expires_in: float


def check_token_ttl(value: object) -> int | None:
    """``token_ttl`` as given, if it is None or whole seconds >= 1."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        # The token endpoint's expires_in is an integer, as Smartcar's is.
        raise TypeError(f"token_ttl must be whole seconds (an int) or None, not {value!r}")
    if value < 1:
        raise ValueError(f"token_ttl must be at least 1 second, not {value!r}")
    return value


@attrs.frozen
class OAuthError(Exception):
    """An error of the token endpoint, rendered as ``{"error", "error_description"}``."""

    status: int
    error: str
    description: str


@attrs.define
class _Client:
    secret: str
    redirect_uri: str | None


@attrs.define
class _Code:
    scopes: frozenset[str] | None
    vehicle_ids: frozenset[str] | None
    user_id: str | None
    client_id: str | None
    redirect_uri: str | None
    expires_at: float


@attrs.define
class _Refresh:
    scopes: frozenset[str] | None
    vehicle_ids: frozenset[str] | None
    user_id: str | None
    client_id: str | None
    expires_at: float
    used_at: float | None = None


_OPEN_GRANT = Grant(token="")


def bearer_token(header: str | None) -> str | None:
    """The token of an ``Authorization: Bearer <token>`` header, or None if absent or malformed."""
    if not header:
        return None
    scheme, _, token = header.partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token or " " in token:
        return None
    return token


def basic_credentials(header: str | None) -> tuple[str, str] | None:
    """``(user, password)`` from an ``Authorization: Basic`` header; None if absent/malformed."""
    if not header:
        return None
    scheme, _, encoded = header.partition(" ")
    if scheme.lower() != "basic" or not encoded.strip():
        return None
    try:
        decoded = base64.b64decode(encoded.strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        return None
    user, sep, password = decoded.partition(":")
    if not sep:
        return None
    return user, password


def _frozen(values: Iterable[str] | None) -> frozenset[str] | None:
    if values is None:
        return None
    if isinstance(values, str):
        raise TypeError("pass a list of strings, not a single string")
    return frozenset(values)


class Credentials:
    """Token, client and code registry. Safe to call from a test thread while serving."""

    def __init__(
        self,
        clock: Clock,
        *,
        accept_any_token: bool,
        refresh_grace: float,
        token_ttl: int | None = None,
    ) -> None:
        self._clock = clock
        self.accept_any_token = accept_any_token
        self.refresh_grace = refresh_grace
        # Set: issued access tokens live this long and a refresh token works once.
        self.token_ttl = check_token_ttl(token_ttl)
        self.management_token: str | None = None
        self._tokens: dict[str, Grant] = {}
        self._clients: dict[str, _Client] = {}
        self._codes: dict[str, _Code] = {}
        self._refresh: dict[str, _Refresh] = {}
        self._lock = threading.Lock()

    # -- access tokens -----------------------------------------------------

    def register_token(
        self,
        token: str,
        scopes: Iterable[str] | None = None,
        vehicle_ids: Iterable[str] | None = None,
        *,
        user_id: str | None = None,
        expires_in: float | None = None,
    ) -> Grant:
        if not token:
            raise ValueError("token must be a non-empty string")
        expires_at = None if expires_in is None else self._clock.now() + expires_in
        grant = Grant(token, _frozen(scopes), _frozen(vehicle_ids), user_id, expires_at)
        self._tokens[token] = grant
        return grant

    def _existing_or_open(self, token: str) -> Grant:
        grant = self._tokens.get(token)
        if grant is None:
            grant = self.register_token(token)
        return grant

    def expire_token(self, token: str) -> None:
        self._existing_or_open(token).expires_at = self._clock.now()

    def revoke_token(self, token: str) -> None:
        self._existing_or_open(token).revoked = True

    def authenticate(self, header: str | None) -> Grant:
        """The grant for a Bearer header, or a 401 AUTHENTICATION ApiError."""
        token = bearer_token(header)
        if token is None:
            raise authentication()
        grant = self._tokens.get(token)
        if grant is None:
            if self.accept_any_token:
                return _OPEN_GRANT
            raise authentication()
        if grant.revoked or (
            grant.expires_at is not None and self._clock.now() >= grant.expires_at
        ):
            raise authentication()
        return grant

    def check_management(self, token: str | None) -> None:
        """Accept the Application Management Token (any, unless one was set)."""
        if not token or (self.management_token is not None and token != self.management_token):
            raise authentication()

    # -- OAuth -------------------------------------------------------------

    def register_client(self, client_id: str, client_secret: str, redirect_uri: str | None) -> None:
        self._clients[client_id] = _Client(client_secret, redirect_uri)

    def client_ok(self, client_id: str, client_secret: str) -> bool:
        """Whether these client credentials pass (any non-empty id until one is registered)."""
        if not client_id:
            return False
        if not self._clients:
            return True
        client = self._clients.get(client_id)
        return client is not None and secrets.compare_digest(client.secret, client_secret)

    def grants_of_user(self, user_id: str) -> list[Grant]:
        """The live (unexpired, unrevoked) grants issued or registered for ``user_id``."""
        now = self._clock.now()
        return [
            g
            for g in list(self._tokens.values())
            if g.user_id == user_id
            and not g.revoked
            and (g.expires_at is None or now < g.expires_at)
        ]

    def check_client(self, header: str | None) -> str:
        """Validate Basic client credentials; returns the client id. Raises ApiError 401."""
        creds = basic_credentials(header)
        if creds is None or not creds[0]:
            raise authentication()
        client_id, secret = creds
        if self._clients:
            client = self._clients.get(client_id)
            if client is None or not secrets.compare_digest(client.secret, secret):
                raise authentication()
        return client_id

    def issue_code(
        self,
        scopes: Iterable[str] | None,
        vehicle_ids: Iterable[str] | None,
        *,
        user_id: str | None,
        client_id: str | None,
        redirect_uri: str | None,
    ) -> str:
        code = str(uuid.uuid4())
        with self._lock:
            self._codes[code] = _Code(
                _frozen(scopes),
                _frozen(vehicle_ids),
                user_id,
                client_id,
                redirect_uri,
                self._clock.now() + CODE_LIFETIME,
            )
        return code

    def token_endpoint(self, header: str | None, form: dict[str, str]) -> dict[str, object]:
        """POST /oauth/token. Returns the token JSON or raises OAuthError."""
        client_id = self._oauth_client(header)
        grant_type = form.get("grant_type")
        with self._lock:
            if grant_type == "authorization_code":
                return self._exchange_code(client_id, form)
            if grant_type == "refresh_token":
                return self._exchange_refresh(client_id, form)
        if not grant_type:
            raise OAuthError(400, "invalid_request", "Missing required parameter: grant_type.")
        raise OAuthError(400, "unsupported_grant_type", f"Unsupported grant_type: {grant_type}.")

    def _oauth_client(self, header: str | None) -> str:
        creds = basic_credentials(header)
        if creds is None or not creds[0]:
            raise OAuthError(401, "invalid_client", "Invalid or missing client credentials.")
        client_id, secret = creds
        if self._clients:
            client = self._clients.get(client_id)
            if client is None or not secrets.compare_digest(client.secret, secret):
                raise OAuthError(401, "invalid_client", "Invalid client credentials.")
        return client_id

    def _exchange_code(self, client_id: str, form: dict[str, str]) -> dict[str, object]:
        code = form.get("code")
        if not code:
            raise OAuthError(400, "invalid_request", "Missing required parameter: code.")
        entry = self._codes.pop(code, None)
        now = self._clock.now()
        if entry is None or now >= entry.expires_at:
            raise OAuthError(400, "invalid_grant", f"Invalid code: {code}.")
        if entry.client_id is not None and entry.client_id != client_id:
            raise OAuthError(400, "invalid_grant", f"Invalid code: {code}.")
        redirect_uri = form.get("redirect_uri")
        client = self._clients.get(client_id)
        expected = entry.redirect_uri or (client.redirect_uri if client else None)
        if redirect_uri is not None and expected is not None and redirect_uri != expected:
            raise OAuthError(400, "invalid_grant", f"Invalid redirect_uri: {redirect_uri}.")
        return self._issue_pair(entry.scopes, entry.vehicle_ids, entry.user_id, client_id)

    def _exchange_refresh(self, client_id: str, form: dict[str, str]) -> dict[str, object]:
        token = form.get("refresh_token")
        if not token:
            raise OAuthError(400, "invalid_request", "Missing required parameter: refresh_token.")
        entry = self._refresh.get(token)
        now = self._clock.now()
        invalid = OAuthError(400, "invalid_grant", f"Invalid refresh_token: {token}.")
        if entry is None or now >= entry.expires_at:
            raise invalid
        if entry.client_id is not None and entry.client_id != client_id:
            raise invalid
        if self.token_ttl is not None:
            # Stricter than Smartcar on purpose: with no grace window, a client that
            # spends one refresh token twice fails at once instead of by luck.
            del self._refresh[token]
        elif entry.used_at is None:
            entry.used_at = now
        elif now - entry.used_at > self.refresh_grace:
            # Past the grace window the token is dead for good; forget it.
            del self._refresh[token]
            raise invalid
        return self._issue_pair(entry.scopes, entry.vehicle_ids, entry.user_id, client_id)

    def issue_tokens(
        self,
        scopes: Iterable[str] | None,
        vehicle_ids: Iterable[str] | None,
        *,
        user_id: str | None,
        client_id: str | None,
        expires_in: float | None,
    ) -> TokenPair:
        """A token pair as a code exchange would give, without the HTTP round trip."""
        if expires_in is not None and not (
            isinstance(expires_in, int | float)
            and not isinstance(expires_in, bool)
            and math.isfinite(expires_in)
            and expires_in > 0
        ):
            raise ValueError(f"expires_in must be a positive number of seconds, not {expires_in!r}")
        lifetime = expires_in if expires_in is not None else self._lifetime()
        # Read before issuing: expires_at errs early, never late.
        issued_at = self._clock.wall()
        with self._lock:
            body = self._issue_pair(
                _frozen(scopes), _frozen(vehicle_ids), user_id, client_id, lifetime
            )
        return TokenPair(
            access_token=str(body["access_token"]),
            refresh_token=str(body["refresh_token"]),
            expires_at=datetime.fromtimestamp(issued_at + lifetime, UTC),
            expires_in=lifetime,
        )

    def _lifetime(self) -> int:
        return self.token_ttl if self.token_ttl is not None else ACCESS_TOKEN_LIFETIME

    def _issue_pair(
        self,
        scopes: frozenset[str] | None,
        vehicle_ids: frozenset[str] | None,
        user_id: str | None,
        client_id: str | None,
        expires_in: float | None = None,
    ) -> dict[str, object]:
        now = self._clock.now()
        self._prune(now)
        lifetime = expires_in if expires_in is not None else self._lifetime()
        access, refresh = str(uuid.uuid4()), str(uuid.uuid4())
        # Kept after expiry (see _prune), so accept_any_token cannot revive it.
        self._tokens[access] = Grant(access, scopes, vehicle_ids, user_id, now + lifetime)
        self._refresh[refresh] = _Refresh(
            scopes, vehicle_ids, user_id, client_id, now + REFRESH_TOKEN_LIFETIME
        )
        return {
            "access_token": access,
            "token_type": "Bearer",
            "expires_in": lifetime,
            "refresh_token": refresh,
        }

    def _prune(self, now: float) -> None:
        # Dead refresh tokens and codes are indistinguishable from unknown ones, so they
        # can go. Expired access tokens must stay: forgetting one would let
        # accept_any_token revive it.
        stale = [
            t
            for t, r in self._refresh.items()
            if now >= r.expires_at
            or (r.used_at is not None and now - r.used_at > self.refresh_grace)
        ]
        for t in stale:
            del self._refresh[t]
        old = [c for c, e in self._codes.items() if now >= e.expires_at]
        for c in old:
            del self._codes[c]
