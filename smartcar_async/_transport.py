"""The one place that speaks aiohttp.

Everything below the client's policy layers goes through :class:`Transport`:
it sends one HTTP request, parses the JSON answer, and turns every failure
(aiohttp's, asyncio's, the server's) into a :class:`SmartcarError` subclass.
:func:`map_transport_error` is the single translation table; a test walks every
aiohttp exception class through it so a new one cannot slip past unmapped.

A body is read up to ``max_response_size`` bytes (after decompression) and
no further: a larger one is refused, from its Content-Length when it declares
one, and the connection is dropped rather than drained.
"""

from __future__ import annotations

import functools
import json
import platform
import time
from collections.abc import Iterable, Mapping
from typing import Any, Final
from urllib.parse import parse_qsl, urlencode

import aiohttp
import attrs
from aiohttp.http_exceptions import (
    ContentLengthError,
    HttpProcessingError,
    TransferEncodingError,
)
from multidict import CIMultiDictProxy
from yarl import URL

from . import _json
from ._exceptions import (
    APIConnectionError,
    APITimeoutError,
    InvalidResponseError,
    SmartcarError,
    error_from_response,
)
from ._options import DEFAULT_MAX_RESPONSE_SIZE, check_response_size
from ._secrets import secrets_for
from ._version import __version__

__all__ = ["USER_AGENT", "ConnectionDropped", "RawResponse", "Transport", "map_transport_error"]

#: The default ``User-Agent`` of every request, the client's and the one-off calls'.
USER_AGENT: Final = (
    f"smartcar-async/{__version__} (Python {platform.python_version()}; "
    f"aiohttp {aiohttp.__version__})"
)


@attrs.define
class RawResponse:
    """A successful (2xx) answer: status, headers and the parsed JSON body.

    Not frozen, though nothing changes it: built on every request, and a
    frozen attrs class costs about 2.5 times as much to build.
    """

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
        if isinstance(exc.__cause__, HttpProcessingError):
            # aiohttp's parser refused the answer (a garbage status line, bad
            # headers, bytes after the body); its 400 is its own, not the server's.
            return _malformed(exc.__cause__)
        # Otherwise only reachable through a borrowed session's own machinery
        # (redirects, proxies): we never call raise_for_status ourselves.
        return InvalidResponseError(
            f"Invalid HTTP response from the Smartcar API: {type(exc).__name__}",
            status_code=exc.status or None,
        )
    if isinstance(exc, aiohttp.ClientPayloadError):
        return _broken_body(exc.__cause__ or exc)
    if isinstance(exc, _BODY_BROKE):
        # aiohttp's pure-Python parser raises these bare, not as ClientPayloadError.
        return _broken_body(exc)
    if isinstance(exc, HttpProcessingError):
        return _malformed(exc)
    if isinstance(exc, json.JSONDecodeError | UnicodeDecodeError):
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


# The body broke off after the headers: a reset, fewer bytes than Content-Length
# promised, bad chunking. A lost connection like any other, so a read is tried
# again (a write never is). A body that arrived whole but cannot be inflated
# is not: a retry would get the same bytes.
_BODY_BROKE: Final = (ContentLengthError, TransferEncodingError)


def _broken_body(cause: BaseException) -> SmartcarError:
    if isinstance(cause, HttpProcessingError) and not isinstance(cause, _BODY_BROKE):
        return InvalidResponseError(
            f"The Smartcar API sent a body that could not be read: {type(cause).__name__}"
        )
    return APIConnectionError(
        "The connection to the Smartcar API broke while the answer was read: "
        f"{type(cause).__name__}"
    )


def _malformed(exc: HttpProcessingError) -> InvalidResponseError:
    # Not the parser's message: it quotes what the server sent, which may echo a secret.
    return InvalidResponseError(f"The Smartcar API sent malformed HTTP: {type(exc).__name__}")


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


def _stop_silent_resend(session: aiohttp.ClientSession) -> bool:
    """Turn off aiohttp's resend of idempotent requests on a session we own.

    aiohttp (3.12 to 3.14 at least) keeps the switch in a private attribute
    that it sets to True and never exposes; when a release drops it, this
    returns False and the session gets the middleware like a borrowed one.
    A test pins both the attribute and the behaviour.
    """
    if not isinstance(getattr(session, "_retry_connection", None), bool) or session._middlewares:
        return False
    session._retry_connection = False
    return True


class Transport:
    """Sends requests over one aiohttp session (owned or borrowed).

    A borrowed session keeps its own defaults, but nothing we rely on: we pass
    absolute URLs (so its ``base_url`` is ignored), ``raise_for_status=False``,
    and its own middlewares followed by ours on every request.

    A session the library made for itself (``owned=True``) is told not to
    resend instead, which spares every request the middleware chain aiohttp
    builds around it (with the parsed URLs of `_urls`, 3% of a lone read's
    instructions).
    """

    __slots__ = ("_max_size", "_middlewares", "_session")

    def __init__(
        self,
        session: aiohttp.ClientSession,
        *,
        max_response_size: int = DEFAULT_MAX_RESPONSE_SIZE,
        owned: bool = False,
    ) -> None:
        self._session = session
        self._max_size = check_response_size(max_response_size)
        self._middlewares: tuple[aiohttp.ClientMiddlewareType, ...] | None
        if owned and _stop_silent_resend(session):
            self._middlewares = None  # the session's own: none
        else:
            # Per-request middlewares replace the session's; keep the user's first.
            own: tuple[aiohttp.ClientMiddlewareType, ...] = tuple(
                getattr(session, "_middlewares", ())
            )
            self._middlewares = (*own, _no_silent_resend)

    async def request(
        self,
        method: str,
        url: str | URL,
        *,
        headers: Mapping[str, str],
        params: Mapping[str, str] | None = None,
        json_body: Any = None,
        form: Mapping[str, str] | None = None,
        timeout: float | None,
        redact: Iterable[str] = (),
        form_answer: bool = False,
    ) -> RawResponse:
        """Send one request; return the parsed 2xx answer or raise a SmartcarError.

        *json_body* is sent as JSON, *form* as ``application/x-www-form-urlencoded``
        (the OAuth token endpoint); at most one of them may be given.

        Every secret this request sends (the ``Authorization`` credentials,
        plus the strings in *redact*: a client secret, a refresh token or code
        in the form) is removed from the answer before anything is built from
        it, and from the text of any error raised (see `_secrets`).

        ``form_answer`` also reads an ``application/x-www-form-urlencoded``
        body that is not JSON (some OAuth servers answer that way) as a dict.
        """
        if json_body is not None and form is not None:
            raise ValueError("pass json_body or form, not both")
        secrets = secrets_for(headers.get("Authorization"), redact)
        started = time.perf_counter()
        data: bytes | None = None
        # aiohttp copies the headers it is given: a GET passes them as they are.
        send_headers: Mapping[str, str] = headers
        if isinstance(json_body, bytes):  # already encoded (the batch body)
            data = json_body
            send_headers = {**headers, "Content-Type": "application/json"}
        elif json_body is not None:
            data = _json.dumps(json_body)
            send_headers = {**headers, "Content-Type": "application/json"}
        elif form is not None:
            data = urlencode(form).encode()
            send_headers = {**headers, "Content-Type": "application/x-www-form-urlencoded"}
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
                status = resp.status
                resp_headers = resp.headers
                raw = await _read_body(resp, self._max_size)
        except SmartcarError as exc:
            secrets.scrub_error(exc)
            raise
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
            body = _parse_body(raw, status, request_id, form_answer)
            if secrets and b"\\u" in raw:
                # Parsing decodes escapes the byte search above could not
                # know: a secret spelled "\u002B" for "+" is itself again.
                body = secrets.scrub_parsed(body)
            if 200 <= status < 300:
                return RawResponse(status, resp_headers, body, request_id, elapsed)
            raise error_from_response(status, body, resp_headers, request_id=request_id)
        except SmartcarError as exc:
            # Built from clean text already; this guards the message templates too.
            secrets.scrub_error(exc)
            raise


async def _read_body(resp: aiohttp.ClientResponse, limit: int) -> bytes:
    """The whole body, or InvalidResponseError as soon as it is known to pass ``limit``."""
    declared = resp.content_length
    if declared is not None and declared > limit:
        raise _too_large(resp, f"declares {declared} bytes, over the limit of {limit}")
    if declared is not None and "Content-Encoding" not in resp.headers:
        # aiohttp stops at Content-Length and nothing inflates the bytes: the
        # limit already holds, so take aiohttp's own (fastest) path.
        return await resp.read()
    body = bytearray()
    content = resp.content
    while chunk := await content.readany():
        body += chunk
        if len(body) > limit:
            raise _too_large(resp, f"passed the limit of {limit} bytes; reading stopped there")
    return bytes(body)


def _too_large(resp: aiohttp.ClientResponse, what: str) -> InvalidResponseError:
    # Drop the connection: draining it would read what we refuse to read.
    resp.close()
    return InvalidResponseError(
        f"The Smartcar API's answer (HTTP {resp.status}) {what} (max_response_size)",
        request_id=resp.headers.get("SC-Request-Id"),
    )


@functools.lru_cache(maxsize=8)
def _client_timeout(total: float | None) -> aiohttp.ClientTimeout:
    return aiohttp.ClientTimeout(total=total)


def _parse_body(raw: bytes, status: int, request_id: str | None, form: bool = False) -> Any:
    if not raw:
        return None
    try:
        return _json.loads(raw)
    except (ValueError, UnicodeDecodeError, RecursionError) as exc:
        # RecursionError: valid JSON nested deeper than the parser's stack.
        if form and (fields := _form_fields(raw)) is not None:
            return fields
        if 200 <= status < 300:
            raise InvalidResponseError(
                "The Smartcar API sent malformed JSON",
                status_code=status,
                request_id=request_id,
            ) from exc
        # An error page that is not JSON (a proxy's HTML, say) still has a
        # status worth classifying; hand its text on as the body.
        return raw[:500].decode("utf-8", "replace")


def _form_fields(raw: bytes) -> dict[str, str] | None:
    """A form-encoded body as a dict (the last of repeated names), or None if it is not one."""
    try:
        pairs = parse_qsl(raw.decode("utf-8"), keep_blank_values=True, strict_parsing=True)
    except (ValueError, UnicodeDecodeError):
        return None
    return dict(pairs) or None
