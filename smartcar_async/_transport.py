"""The one place that speaks aiohttp.

Everything below the client's policy layers goes through :class:`Transport`:
it sends one HTTP request, parses the JSON answer, and turns every failure
(aiohttp's, asyncio's, the server's) into a :class:`SmartcarError` subclass.
:func:`map_transport_error` is the single translation table; a test walks every
aiohttp exception class through it so a new one cannot slip past unmapped.
"""

from __future__ import annotations

import functools
import json
import time
from collections.abc import Iterable, Mapping
from typing import Any
from urllib.parse import urlencode

import aiohttp
import attrs
from multidict import CIMultiDictProxy

from ._exceptions import (
    APIConnectionError,
    APITimeoutError,
    InvalidResponseError,
    SmartcarError,
    error_from_response,
)
from ._secrets import secrets_for

__all__ = ["ConnectionDropped", "RawResponse", "Transport", "map_transport_error"]


@attrs.frozen
class RawResponse:
    """A successful (2xx) answer: status, headers and the parsed JSON body."""

    status: int
    headers: CIMultiDictProxy[str]
    body: Any
    request_id: str | None
    elapsed: float


def map_transport_error(exc: BaseException) -> SmartcarError:
    """Translate a lower-level failure into ours.

    Order matters: aiohttp's timeout classes are also connection errors, and
    ``InvalidURL`` is also a ``ValueError``.
    """
    if isinstance(exc, SmartcarError):
        return exc
    if isinstance(exc, TimeoutError):  # asyncio.TimeoutError is TimeoutError on 3.11+
        return APITimeoutError("Timed out waiting for the Smartcar API")
    if isinstance(exc, aiohttp.ClientResponseError):
        # Only reachable through a borrowed session's own machinery (redirects,
        # proxies, content type): we never call raise_for_status ourselves.
        return InvalidResponseError(
            f"Invalid HTTP response from the Smartcar API: {type(exc).__name__}",
            status_code=exc.status or None,
        )
    if isinstance(exc, aiohttp.ClientPayloadError | json.JSONDecodeError | UnicodeDecodeError):
        return InvalidResponseError(
            f"The Smartcar API sent a body that could not be read: {type(exc).__name__}"
        )
    if isinstance(exc, aiohttp.InvalidURL | aiohttp.NonHttpUrlClientError):
        return APIConnectionError(f"Invalid API URL: {type(exc).__name__}")
    if isinstance(exc, aiohttp.ClientError | OSError):
        return APIConnectionError(
            f"Could not reach the Smartcar API: {type(exc).__name__}: {_safe_reason(exc)}"
        )
    return SmartcarError(f"Unexpected error talking to the Smartcar API: {type(exc).__name__}")


def _safe_reason(exc: BaseException) -> str:
    # aiohttp's connection errors name host and port, never headers, so their
    # text carries no secret; keep it short all the same.
    text = str(exc)
    return text[:200]


class ConnectionDropped(aiohttp.ClientConnectionError):
    """The server closed the connection mid-request (re-raised under our own name).

    aiohttp silently sends a GET, PUT or DELETE a second time when a kept-alive
    connection drops, whatever the session. Our retry policy decides what is
    sent again (never a write) and counts every attempt, so the middleware
    below hands the failure on under a class aiohttp does not re-send.
    """


async def _no_silent_resend(
    request: aiohttp.ClientRequest, handler: aiohttp.ClientHandlerType
) -> aiohttp.ClientResponse:
    try:
        return await handler(request)
    except aiohttp.ClientConnectorError:
        raise  # never re-sent by aiohttp: nothing reached the server
    except (aiohttp.ServerDisconnectedError, aiohttp.ClientOSError) as exc:
        raise ConnectionDropped(f"{type(exc).__name__}: {exc}") from exc


class Transport:
    """Sends requests over one aiohttp session (owned or borrowed).

    A borrowed session keeps its own defaults, but nothing we rely on: we pass
    absolute URLs (so its ``base_url`` is ignored), ``raise_for_status=False``,
    and its own middlewares followed by ours on every request.
    """

    __slots__ = ("_middlewares", "_session")

    def __init__(self, session: aiohttp.ClientSession) -> None:
        self._session = session
        # Per-request middlewares replace the session's; keep the user's first.
        own: tuple[aiohttp.ClientMiddlewareType, ...] = tuple(getattr(session, "_middlewares", ()))
        self._middlewares = (*own, _no_silent_resend)

    async def request(
        self,
        method: str,
        url: str,
        *,
        headers: Mapping[str, str],
        params: Mapping[str, str] | None = None,
        json_body: Any = None,
        form: Mapping[str, str] | None = None,
        timeout: float | None,
        redact: Iterable[str] = (),
    ) -> RawResponse:
        """Send one request; return the parsed 2xx answer or raise a SmartcarError.

        *json_body* is sent as JSON, *form* as ``application/x-www-form-urlencoded``
        (the OAuth token endpoint); at most one of them may be given.

        Every secret this request sends (the ``Authorization`` credentials,
        plus the strings in *redact*: a client secret, a refresh token or code
        in the form) is removed from the answer before anything is built from
        it, and from the text of any error raised (see `_secrets`).
        """
        if json_body is not None and form is not None:
            raise ValueError("pass json_body or form, not both")
        secrets = secrets_for(headers.get("Authorization"), redact)
        started = time.perf_counter()
        data: bytes | None = None
        send_headers = dict(headers)
        if isinstance(json_body, bytes):  # already encoded (the batch body)
            data = json_body
            send_headers["Content-Type"] = "application/json"
        elif json_body is not None:
            data = json.dumps(json_body, separators=(",", ":")).encode()
            send_headers["Content-Type"] = "application/json"
        elif form is not None:
            data = urlencode(form).encode()
            send_headers["Content-Type"] = "application/x-www-form-urlencoded"
        failure: SmartcarError | None = None
        try:
            async with self._session.request(
                method,
                url,
                headers=send_headers,
                params=params,
                data=data,
                timeout=_client_timeout(timeout),
                raise_for_status=False,
                allow_redirects=False,
                middlewares=self._middlewares,
            ) as resp:
                raw = await resp.read()
                status = resp.status
                resp_headers = resp.headers
        except Exception as exc:  # CancelledError is a BaseException and passes through
            failure = map_transport_error(exc)
            if not (secrets and secrets.taints(exc)):
                raise failure from exc
            secrets.scrub_error(failure)
        if failure is not None:
            # aiohttp's own text quoted a secret (its HTTP parser quotes the
            # bytes it choked on): raised out here, our error comes without it.
            raise failure
        # Echoed secrets go before anything is parsed or built from the answer.
        if secrets:
            raw = secrets.scrub_bytes(raw)
            resp_headers = secrets.scrub_headers(resp_headers)
        elapsed = time.perf_counter() - started
        request_id = resp_headers.get("SC-Request-Id")
        try:
            body = _parse_body(raw, status, request_id)
            if 200 <= status < 300:
                return RawResponse(status, resp_headers, body, request_id, elapsed)
            raise error_from_response(status, body, resp_headers, request_id=request_id)
        except SmartcarError as exc:
            # Built from clean text already; this guards the message templates too.
            secrets.scrub_error(exc)
            raise


@functools.lru_cache(maxsize=8)
def _client_timeout(total: float | None) -> aiohttp.ClientTimeout:
    return aiohttp.ClientTimeout(total=total)


def _parse_body(raw: bytes, status: int, request_id: str | None) -> Any:
    if not raw:
        return None
    try:
        return json.loads(raw)
    except (ValueError, UnicodeDecodeError, RecursionError) as exc:
        # RecursionError: valid JSON nested deeper than the parser's stack.
        if 200 <= status < 300:
            raise InvalidResponseError(
                "The Smartcar API sent malformed JSON",
                status_code=status,
                request_id=request_id,
            ) from exc
        # An error page that is not JSON (a proxy's HTML, say) still has a
        # status worth classifying; hand its text on as the body.
        return raw[:500].decode("utf-8", "replace")
