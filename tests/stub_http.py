"""Shared by the test folders: building answers for the small ``aiohttp.web`` stub apps.

Importable as ``stub_http`` because pytest puts this folder (it holds the root
conftest.py) on ``sys.path``.
"""

from __future__ import annotations

import json
from typing import Any

from aiohttp import web


def json_response(
    payload: Any, *, status: int = 200, headers: dict[str, str] | None = None
) -> web.Response:
    return web.Response(
        status=status,
        body=json.dumps(payload).encode(),
        content_type="application/json",
        headers=headers,
    )
