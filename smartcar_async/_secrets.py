"""Knowing the secrets a request carried, and removing them from what comes back.

A server may echo a credential anywhere: a 401's description quoting the
``Authorization`` header, a proxy's HTML error page, a batch item's body, a
header, an OAuth ``error_description`` ("Invalid refresh_token: <token>."),
even a successful body. Whatever is built from an answer (models, errors,
log lines, hook events, the CLI's output) is built from text this module has
already cleaned, so the rule holds on every path without each one knowing it.

`Transport.request` builds one :class:`Secrets` per request from the
credentials it sends (the ``Authorization`` header's token, or the Basic
value and the password inside it) plus whatever its caller names (a client
secret, a refresh token or code in a form body), and scrubs the raw body
before it is parsed, the headers it hands on, and the text of any error it
raises. Each secret is looked for as sent and as a server could re-encode it:
JSON-escaped, percent-encoded, HTML-escaped.
"""

from __future__ import annotations

import base64
import binascii
import html
import json
import re
from collections.abc import Iterable, Mapping
from typing import Any, Final
from urllib.parse import quote, quote_plus

import attrs
from multidict import CIMultiDict, CIMultiDictProxy

from ._exceptions import SmartcarError

__all__ = ["MIN_SECRET_LENGTH", "NO_SECRETS", "REDACTED", "Secrets", "secrets_for"]

#: What a secret is replaced with, everywhere.
REDACTED: Final = "<redacted>"
_REDACTED_BYTES: Final = REDACTED.encode()

#: Shorter values are not looked for: real tokens, secrets and management
#: tokens are UUID-sized, and replacing a word of a few letters would mangle
#: every body that happens to contain it ("t", "token", "amt").
MIN_SECRET_LENGTH: Final = 8

# Characters that JSON, percent-encoding and HTML all leave as they are: a
# secret made only of these has one form (the usual case: UUIDs, JWTs).
_PLAIN: Final = re.compile(r"[A-Za-z0-9._~-]+")
_PERCENT: Final = re.compile(r"%[0-9A-F]{2}")
# How deep a cause/context chain is searched, and how deep values nest.
_MAX_DEPTH: Final = 16
# A parsed body is searched deeper: past this, no model reads it.
_MAX_BODY_DEPTH: Final = 64


def _forms(secret: str) -> set[str]:
    """The secret as sent, and as a server could echo it back re-encoded."""
    if _PLAIN.fullmatch(secret):
        return {secret}
    json_forms = {json.dumps(secret)[1:-1], json.dumps(secret, ensure_ascii=False)[1:-1]}
    # JSON may escape "/" (base64 has them), and percent-encoding may use lower-case hex.
    json_forms |= {form.replace("/", "\\/") for form in json_forms}
    # quote()'s default leaves "/" alone: what a server building a redirect
    # URL or a path with Python's or yarl's quoting sends.
    percent = {
        quote(secret, safe=""),
        quote_plus(secret, safe=""),
        quote(secret),
        quote_plus(secret),
    }
    percent |= {_PERCENT.sub(lambda m: m.group().lower(), form) for form in percent}
    # Quotes may be left alone in HTML text, or written as "&#39;".
    html_forms = {html.escape(secret), html.escape(secret, quote=False)}
    html_forms |= {form.replace("&#x27;", "&#39;") for form in html_forms}
    return {secret, *html_forms, *json_forms, *percent}


class Secrets:
    """The secrets of one exchange, in every form worth looking for.

    Falsy when there is nothing to look for, so callers test it before doing
    any work.
    """

    __slots__ = ("_raw", "_text")

    def __init__(self, values: Iterable[str | None]) -> None:
        forms: set[str] = set()
        for value in values:
            if isinstance(value, str) and len(value) >= MIN_SECRET_LENGTH:
                forms |= _forms(value)
        # Longest first, so a secret containing another is replaced whole.
        self._text: tuple[str, ...] = tuple(sorted(forms, key=len, reverse=True))
        self._raw: tuple[bytes, ...] = tuple(form.encode() for form in self._text)

    def __bool__(self) -> bool:
        return bool(self._text)

    def __repr__(self) -> str:
        return f"<Secrets: {len(self._text)} forms>"

    # ------------------------------------------------------------- scrubbing

    def scrub_bytes(self, raw: bytes) -> bytes:
        """*raw* with every secret replaced; the same object when none occurs."""
        for form in self._raw:
            # The membership test is the whole cost of the usual, clean answer.
            if form in raw:
                raw = raw.replace(form, _REDACTED_BYTES)
        return raw

    def scrub_text(self, text: str) -> str:
        for form in self._text:
            if form in text:
                text = text.replace(form, REDACTED)
        return text

    def found_in(self, text: str) -> bool:
        return any(form in text for form in self._text)

    def scrub_headers(self, headers: CIMultiDictProxy[str]) -> CIMultiDictProxy[str]:
        """The headers, rebuilt with clean values only when one of them holds a secret."""
        # One search over all the values: the usual answer has no hit.
        if not self.found_in("\n".join(headers.values())):
            return headers
        clean: CIMultiDict[str] = CIMultiDict()
        for name, value in headers.items():
            clean.add(name, self.scrub_text(value))
        return CIMultiDictProxy(clean)

    def scrub_parsed(self, value: Any) -> Any:
        """A parsed body with every secret in its strings (keys too) replaced.

        JSON may escape any character as ``\\uXXXX`` (.NET escapes "+",
        Go "<", ">" and "&"): no list of forms finds every spelling in the
        raw bytes, but once parsed the secret is spelled as it was sent.
        """
        return self._scrub_value(value, 0, _MAX_BODY_DEPTH)

    def scrub_error(self, exc: SmartcarError) -> SmartcarError:
        """Blank out, in place, every secret in an error's fields and args; returns *exc*."""
        if not self:
            return exc
        for name, value in list(vars(exc).items()):
            clean = self._scrub_value(value, 0)
            if clean is not value:
                setattr(exc, name, clean)
        exc.args = tuple(self._scrub_value(arg, 0) for arg in exc.args)
        return exc

    def taints(self, exc: BaseException) -> bool:
        """Whether the text of *exc*, or of an exception it was chained from, holds a secret.

        Lower-level errors are not ours to rewrite: when one quotes a secret
        (an HTTP parser error quoting the bytes it choked on, say), the caller
        drops the chain instead.
        """
        seen: set[int] = set()
        current: BaseException | None = exc
        while current is not None and id(current) not in seen and len(seen) < _MAX_DEPTH:
            seen.add(id(current))
            try:
                text = f"{current} {current.args!r}"
            except Exception:  # a broken __str__ shows nothing, and hides nothing
                text = ""
            if self.found_in(text):
                return True
            current = current.__cause__ or current.__context__
        return False

    def _scrub_value(self, value: Any, depth: int, limit: int = _MAX_DEPTH) -> Any:
        if isinstance(value, str):
            return self.scrub_text(value)
        if depth >= limit:
            return value
        if isinstance(value, tuple | list):
            items = [self._scrub_value(item, depth + 1, limit) for item in value]
            if all(new is old for new, old in zip(items, value, strict=True)):
                return value
            return type(value)(items)
        if isinstance(value, Mapping):
            pairs = {
                self._scrub_value(k, depth + 1, limit): self._scrub_value(v, depth + 1, limit)
                for k, v in value.items()
            }
            return pairs if pairs != value else value
        if attrs.has(type(value)):  # Resolution, and any other attrs value an error holds
            changes = {}
            for field in attrs.fields(type(value)):
                old = getattr(value, field.name)
                new = self._scrub_value(old, depth + 1, limit)
                if new is not old and field.init:
                    changes[field.alias or field.name] = new
            return attrs.evolve(value, **changes) if changes else value
        return value


#: Nothing to look for: what requests without credentials share.
NO_SECRETS: Final = Secrets(())


def secrets_for(authorization: str | None, extra: Iterable[str] = ()) -> Secrets:
    """The secrets one request sends: its ``Authorization`` credentials, plus *extra*.

    For ``Bearer <token>`` that is the token; for ``Basic <base64>`` the
    base64 value and the password inside it (the client secret, or the
    management token of ``default:<amt>``). The client id is not a secret.
    """
    scheme, _, credential = (authorization or "").partition(" ")
    if (
        scheme == "Bearer"
        and not extra
        and len(credential) >= MIN_SECRET_LENGTH
        and _PLAIN.fullmatch(credential)
    ):
        # The hot path (every vehicle request): one token with one form.
        plain = Secrets.__new__(Secrets)
        plain._text = (credential,)
        plain._raw = (credential.encode(),)
        return plain
    values: list[str] = list(extra)
    if credential:
        credential = credential.strip()
        values.append(credential)
        if scheme.lower() == "basic":
            password = _basic_password(credential)
            if password is not None:
                values.append(password)
    if not values:
        return NO_SECRETS
    return Secrets(values)


def _basic_password(credential: str) -> str | None:
    try:
        decoded = base64.b64decode(credential, validate=True).decode("utf-8")
    except (binascii.Error, ValueError):
        return None
    _user, colon, password = decoded.partition(":")
    return password if colon else None
