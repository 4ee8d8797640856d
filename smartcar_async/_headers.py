"""Reading response headers the same way wherever they come from (HTTP or a batch item).

A leaf module: models and errors both read headers, and neither should
import the other for it.
"""

from collections.abc import Mapping

from multidict import CIMultiDict, CIMultiDictProxy

__all__ = ["pick_headers"]


def pick_headers(headers: Mapping[str, object] | None, names: frozenset[str]) -> dict[str, object]:
    """Return the wanted headers keyed by lower-case name, matching case-insensitively.

    Works for plain dicts (batch sub-responses use lower-case keys, a few
    fixtures use ``Retry-After``) and for multidicts alike; the first
    occurrence of a repeated header wins. *names* must be lower-case.
    """
    if isinstance(headers, CIMultiDictProxy | CIMultiDict):
        # An HTTP response's headers (every read): a few case-insensitive
        # lookups in C instead of lower-casing every header it carries.
        get = headers.get
        return {name: value for name in names if (value := get(name)) is not None}
    picked: dict[str, object] = {}
    if headers:
        for key, value in headers.items():
            if isinstance(key, str):
                lowered = key.lower()
                if lowered in names and lowered not in picked:
                    picked[lowered] = value
    return picked
