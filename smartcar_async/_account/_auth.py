"""OAuth2 authorization-code flow: the Connect URL, code exchange and token refresh.

`AuthClient` mirrors the official SDK's class of the same name: the same
constructor arguments and environment fallbacks, ``get_auth_url`` (sync, no
I/O) and awaitable ``exchange_code`` / ``exchange_refresh_token`` returning
`Access`. The client secret, codes and tokens stay out of reprs, logs and
exception messages, including the token endpoint's own error descriptions
(which echo the rejected code or refresh token).

An ``expires_in`` above `MAX_EXPIRES_IN` (one year; Smartcar sends 7200) is
clamped to it rather than refused: by then the refresh token sent is spent,
and refusing the answer would lose the new one.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from types import TracebackType
from typing import Any, Final, Literal, Self
from urllib.parse import urlencode

import aiohttp

from .. import _origins
from .._exceptions import ClientClosedError, InvalidResponseError, SmartcarError
from .._models_account import Access
from .._options import DEFAULT_MAX_RESPONSE_SIZE, check_response_size
from .._secrets import REDACTED
from .._transport import RawResponse
from .._validate import check_bool, check_bound, check_str, check_token, format_flags
from ._api import check_scopes, check_vin, client_credentials
from ._http import DEFAULT_TIMEOUT, SessionSlot, basic_auth, send

__all__ = ["AuthClient"]

Mode = Literal["live", "simulated", "test"]
_MODES: Final = ("live", "simulated", "test")
#: Smartcar: "The refresh token expires after 60 days." It is not in the token answer.
REFRESH_TOKEN_LIFETIME: Final = timedelta(days=60)
#: The longest access-token lifetime taken from a token answer, in seconds (one year).
MAX_EXPIRES_IN: Final = 365 * 24 * 3600


class AuthClient:
    """Smartcar Connect and the OAuth token endpoint for one application.

    ``client_id``, ``client_secret`` and ``redirect_uri`` fall back to the
    ``SMARTCAR_CLIENT_ID``, ``SMARTCAR_CLIENT_SECRET`` and
    ``SMARTCAR_REDIRECT_URI`` environment variables, as in the official SDK;
    a missing id or secret is a ValueError. ``mode`` is ``live``,
    ``simulated`` or ``test`` (Connect's mode).

    ``auth_origin`` is the OAuth origin or the full token URL (default:
    ``SMARTCAR_AUTH_ORIGIN``, else ``https://auth.smartcar.com``);
    ``connect_origin`` is Connect's origin (default: ``SMARTCAR_CONNECT_ORIGIN``,
    else ``https://connect.smartcar.com``). Both are read when the client is
    built.

    Sessions: pass ``session=`` to borrow an aiohttp session (never closed
    here). Inside ``async with AuthClient(...) as auth:`` the client owns one
    session for the block and closes it on exit (or on :meth:`aclose`).
    Otherwise each call makes and closes its own connection, like the
    official SDK. ``timeout`` is seconds per HTTP exchange (> 0), None for no
    limit. ``max_response_size`` caps the bytes of one answer (8 MiB by default).

    Added in 0.1.0.
    """

    __slots__ = (
        "_client_secret",
        "_connect_origin",
        "_max_response_size",
        "_session",
        "_timeout",
        "_token_url",
        "client_id",
        "mode",
        "redirect_uri",
    )

    def __init__(
        self,
        client_id: str | None = None,
        client_secret: str | None = None,
        redirect_uri: str | None = None,
        mode: Mode = "live",
        *,
        auth_origin: str | None = None,
        connect_origin: str | None = None,
        session: aiohttp.ClientSession | None = None,
        timeout: float | None = DEFAULT_TIMEOUT,
        max_response_size: int = DEFAULT_MAX_RESPONSE_SIZE,
    ) -> None:
        self.client_id, self._client_secret = client_credentials(
            client_id, client_secret, "AuthClient"
        )
        redirect_uri = redirect_uri or os.environ.get("SMARTCAR_REDIRECT_URI") or None
        if redirect_uri is not None and not isinstance(redirect_uri, str):
            raise TypeError(f"redirect_uri must be a str, got {type(redirect_uri).__name__}")
        self.redirect_uri: str | None = redirect_uri
        if not isinstance(mode, str) or mode.lower() not in _MODES:
            raise ValueError(f"mode must be one of 'live', 'simulated', 'test'; got {mode!r}")
        self.mode: str = mode.lower()
        self._token_url = _origins.token_url(auth_origin)
        self._connect_origin = _origins.connect_origin(connect_origin)
        self._timeout = check_bound("timeout", timeout)
        self._max_response_size = check_response_size(max_response_size)
        self._session = SessionSlot("AuthClient", session)

    # ------------------------------------------------------------ lifecycle

    async def __aenter__(self) -> Self:
        self._session.open()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close the session this client owns (a borrowed one stays open). Idempotent.

        Added in 0.1.0.
        """
        await self._session.close()

    @property
    def closed(self) -> bool:
        """True once :meth:`aclose` ran (or the ``async with`` block ended)."""
        return self._session.closed

    @property
    def token_url(self) -> str:
        """The OAuth token endpoint this client posts to."""
        return self._token_url

    @property
    def connect_origin(self) -> str:
        """The Smartcar Connect origin :meth:`get_auth_url` points at."""
        return self._connect_origin

    def __repr__(self) -> str:
        return (
            f"<smartcar_async.AuthClient client_id={self.client_id!r} mode={self.mode!r} "
            f"state={self._session.state}>"
        )

    # --------------------------------------------------------------- Connect

    def get_auth_url(
        self,
        scope: Sequence[str] | None = None,
        *,
        state: str | None = None,
        force_prompt: bool = False,
        make: str | None = None,
        single_select: bool | Mapping[str, Any] | None = None,
        single_select_vin: str | None = None,
        flags: Mapping[str, str | bool | int | float] | None = None,
        user: str | None = None,
    ) -> str:
        """The Smartcar Connect URL to send the vehicle owner to. No I/O.

        ``scope`` lists permissions (``"required:read_odometer"`` makes one
        mandatory); None leaves the choice to the dashboard's Vehicle Access
        settings. ``force_prompt`` always shows the approval dialog; ``make``
        skips the brand selector (the official SDK's ``make_bypass``);
        ``single_select=True`` lets the owner pick one vehicle, and
        ``single_select_vin`` (which implies it) allows only that VIN; the
        official SDK's ``{"enabled": bool, "vin": str}`` mapping is accepted
        too. ``flags`` are feature flags; ``user`` is your own id for the
        owner, for Connect analytics.

        Added in 0.1.0.
        """
        query: dict[str, str] = {
            "response_type": "code",
            "client_id": self.client_id,
            "approval_prompt": "force" if check_bool("force_prompt", force_prompt) else "auto",
            "mode": self.mode,
        }
        if self.redirect_uri:
            query["redirect_uri"] = self.redirect_uri
        scopes = check_scopes(scope, required=False)
        if scopes:
            query["scope"] = " ".join(scopes)
        if state is not None and check_str("state", state, allow_empty=True):
            query["state"] = state
        if make is not None:
            query["make"] = check_str("make", make)
        select, vin = _single_select(single_select, single_select_vin)
        # Same key order as the official SDK, so URLs compare equal after a switch.
        if vin is not None:
            query["single_select_vin"] = vin
        if select is not None:
            query["single_select"] = "true" if select else "false"
        formatted = format_flags(flags)
        if formatted:
            query["flags"] = formatted
        if user is not None:
            query["user"] = check_str("user", user)
        return f"{self._connect_origin}/oauth/authorize?{urlencode(query)}"

    # ----------------------------------------------------------------- tokens

    async def exchange_code(
        self, code: str, *, flags: Mapping[str, str | bool | int | float] | None = None
    ) -> Access:
        """Exchange the authorization code Connect redirected with for tokens.

        Raises a SmartcarError subclass when the token endpoint refuses
        (:class:`AuthenticationError` for a bad code or bad client
        credentials); the code never appears in its message.

        Added in 0.1.0.
        """
        code = check_token(code, "code")
        form = {"grant_type": "authorization_code", "code": code}
        if self.redirect_uri:
            form["redirect_uri"] = self.redirect_uri
        return await self._token_request(form, flags, secrets=(code,))

    async def exchange_refresh_token(
        self,
        refresh_token: str,
        *,
        flags: Mapping[str, str | bool | int | float] | None = None,
    ) -> Access:
        """Exchange a refresh token for a new access token and refresh token.

        Smartcar invalidates a refresh token shortly after its first use, so
        store the new pair before using it. Errors as for :meth:`exchange_code`.

        Added in 0.1.0.
        """
        refresh_token = check_token(refresh_token, "refresh_token")
        form = {"grant_type": "refresh_token", "refresh_token": refresh_token}
        return await self._token_request(
            form, flags, secrets=(refresh_token,), sent_refresh=refresh_token
        )

    async def _token_request(
        self,
        form: Mapping[str, str],
        flags: Mapping[str, str | bool | int | float] | None,
        *,
        secrets: Sequence[str],
        sent_refresh: str | None = None,
    ) -> Access:
        self._session.check_open()
        formatted = format_flags(flags)
        params = {"flags": formatted} if formatted else None
        try:
            resp = await send(
                "POST",
                self._token_url,
                session=self._session.session,
                timeout=self._timeout,
                authorization=basic_auth(self.client_id, self._client_secret),
                params=params,
                form=form,
                # The Basic value and the secret inside it are redacted by the
                # transport, from the Authorization header it sends.
                redact=(*secrets, self._client_secret),
                max_response_size=self._max_response_size,
            )
        except SmartcarError as exc:
            if self.closed:
                # aclose() pulled the session from under this request; say so plainly.
                raise ClientClosedError("The AuthClient was closed during this request") from exc
            raise
        return _access_from(resp, sent_refresh)


def _single_select(
    single_select: bool | Mapping[str, Any] | None, single_select_vin: str | None
) -> tuple[bool | None, str | None]:
    """(single_select flag, VIN) from the keyword form or the official SDK's mapping form."""
    vin = None if single_select_vin is None else check_vin(single_select_vin, "single_select_vin")
    if isinstance(single_select, Mapping):
        mapped = single_select.get("vin")
        if mapped:
            mapped = check_vin(mapped, "single_select['vin']")
            if vin is not None and vin != mapped:
                raise ValueError("single_select['vin'] and single_select_vin disagree")
            vin = mapped
        # As in the official SDK: an empty mapping sends nothing, a VIN implies enabled.
        if not single_select:
            return (True if vin else None), vin
        return bool(vin or single_select.get("enabled")), vin
    if single_select is not None and not isinstance(single_select, bool):
        raise TypeError(
            f"single_select must be a bool or a mapping, got {type(single_select).__name__}"
        )
    if vin is None:
        return single_select, None
    if single_select is False:
        raise ValueError("single_select_vin needs single_select enabled")
    # Connect honours a VIN only in single-select mode.
    return True, vin


def _access_from(resp: RawResponse, sent_refresh: str | None = None) -> Access:
    body = resp.body
    if not isinstance(body, Mapping):
        raise _bad_access(None, "expected an object", resp)
    if sent_refresh is not None and body.get("refresh_token") == REDACTED:
        # A server that does not rotate refresh tokens hands back the one we
        # sent, which the transport redacted like any echoed secret.
        body = {**body, "refresh_token": sent_refresh}
    for name in ("access_token", "refresh_token", "token_type"):
        value = body.get(name)
        if not isinstance(value, str) or not value:
            raise _bad_access(name, "expected a non-empty string", resp)
    expires_in = body.get("expires_in")
    if type(expires_in) is not int or expires_in < 0:
        raise _bad_access("expires_in", "expected a non-negative integer", resp)
    # Clamped, not refused: see the module docstring.
    expires_in = min(expires_in, MAX_EXPIRES_IN)
    now = datetime.now(UTC)
    return Access(
        access_token=body["access_token"],
        token_type=body["token_type"],
        expires_in=expires_in,
        expiration=now + timedelta(seconds=expires_in),
        refresh_token=body["refresh_token"],
        refresh_expiration=now + REFRESH_TOKEN_LIFETIME,
    )


def _bad_access(field: str | None, reason: str, resp: RawResponse) -> InvalidResponseError:
    # Name the field and the expectation only: the value may be a token.
    where = f"{field}: " if field else ""
    return InvalidResponseError(
        f"Invalid Access response: {where}{reason}",
        field=field,
        status_code=resp.status,
        request_id=resp.request_id,
    )
