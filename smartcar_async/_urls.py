"""Request URLs as aiohttp takes them cheapest: already parsed.

Handing aiohttp a string makes yarl parse and percent-encode it on every
request, a few microseconds a lone read does not need to spend: the origin
is parsed once, and a tail made only of characters that need no encoding
(every endpoint path, a quoted vehicle id) is set as the URL's path as it is.
Anything else takes the old road, so the bytes on the wire never differ.
"""

from __future__ import annotations

import re
from typing import Final
from urllib.parse import quote

from yarl import URL

__all__ = ["UrlMaker"]

# RFC 3986 unreserved characters, "/" and the sub-delimiters that yarl leaves
# alone in a path; "%" is not here, so an escape is never taken as encoded.
_ENCODED: Final = re.compile(r"[A-Za-z0-9._~/!$&'()*+,;=:@-]*")


class UrlMaker:
    """URLs under one origin (which may carry a path prefix)."""

    __slots__ = ("_base", "_origin", "_prefix")

    def __init__(self, origin: str) -> None:
        self._origin = origin
        self._base: URL | None = None
        self._prefix = ""
        if origin:
            base = URL(origin)
            self._base = base
            self._prefix = base.raw_path.rstrip("/")

    def vehicle(self, version: str, vehicle_id: str, path: str) -> URL | str:
        """``{origin}/{version}/vehicles/{vehicle_id}{path}``, the id percent-encoded whole."""
        return self.make(f"/{version}/vehicles/{quote(vehicle_id, safe='')}{path}")

    def make(self, tail: str) -> URL | str:
        """The origin followed by *tail* (which starts with "/")."""
        if self._base is not None and _ENCODED.fullmatch(tail):
            return self._base.with_path(self._prefix + tail, encoded=True)
        return self._origin + tail
