"""Shared by the application-token tests: credentials and a scripted token server."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable

from aiohttp import web

CLIENT_ID = "client_v3auth"
# Long and unusual, so a leak anywhere is unmistakable.
CLIENT_SECRET = "s3cret-V3AUTH-7f1c9a2e4b6d"

Answer = Callable[[web.Request], web.Response]


class TokenServer:
    """An ``aiohttp.web`` server whose ``POST /oauth2/token`` answers as ``answer`` says."""

    def __init__(self, answer: Answer) -> None:
        self.answer = answer
        self.requests = 0
        self.url = ""

    async def _handle(self, request: web.Request) -> web.Response:
        self.requests += 1
        await request.read()
        return self.answer(request)


@contextlib.asynccontextmanager
async def token_server(answer: Answer) -> AsyncIterator[TokenServer]:
    server = TokenServer(answer)
    app = web.Application()
    app.router.add_post("/oauth2/token", server._handle)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    server.url = f"http://127.0.0.1:{port}"
    try:
        yield server
    finally:
        await runner.cleanup()


def json_answer(text: str, status: int = 200) -> Answer:
    """Always the same raw JSON text (so values Python's json cannot write, like 1e400, go out)."""
    return lambda _request: web.Response(text=text, status=status, content_type="application/json")
