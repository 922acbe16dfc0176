"""An ASGI application served over loopback HTTP by aiohttp's server, for tests that need a
real URL (a webhook sender posts to it). uvicorn would do it too; it is not a test dependency,
aiohttp already is. HTTP only (no lifespan: the test runs the app's lifespan itself, no
websockets), and each response is buffered whole: enough for small JSON answers.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from aiohttp import web
from multidict import CIMultiDict
from starlette.types import ASGIApp, Message

_HOP_BY_HOP = frozenset({b"content-length", b"transfer-encoding", b"connection"})


@asynccontextmanager
async def serve_asgi(app: ASGIApp) -> AsyncIterator[str]:
    """Serves ``app`` on 127.0.0.1 (a free port) while the block runs; yields its origin,
    ``http://127.0.0.1:PORT``."""

    async def handle(request: web.Request) -> web.StreamResponse:
        return await _call(app, request)

    server = web.Application()
    server.router.add_route("*", "/{tail:.*}", handle)
    runner = web.AppRunner(server, access_log=None, handle_signals=False, shutdown_timeout=0.5)
    await runner.setup()
    try:
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port = runner.addresses[0][1]
        yield f"http://127.0.0.1:{port}"
    finally:
        await runner.cleanup()


async def _call(app: ASGIApp, request: web.Request) -> web.StreamResponse:
    body = await request.read()
    host, port = request.transport.get_extra_info("sockname")[:2] if request.transport else ("", 0)
    scope: dict[str, Any] = {
        "type": "http",
        "asgi": {"version": "3.0", "spec_version": "2.3"},
        "http_version": f"{request.version.major}.{request.version.minor}",
        "method": request.method,
        "scheme": "http",
        "path": request.path,
        "raw_path": request.raw_path.split("?")[0].encode(),
        "query_string": request.query_string.encode(),
        "root_path": "",
        "headers": [(name.lower(), value) for name, value in request.raw_headers],
        "client": (request.remote or "", 0),
        "server": (host, port),
    }
    answered = asyncio.Event()
    delivered = False
    start: Message | None = None
    chunks: list[bytes] = []

    async def receive() -> Message:
        nonlocal delivered
        if not delivered:
            delivered = True
            return {"type": "http.request", "body": body, "more_body": False}
        await answered.wait()
        return {"type": "http.disconnect"}

    async def send(message: Message) -> None:
        nonlocal start
        if message["type"] == "http.response.start":
            start = message
        elif message["type"] == "http.response.body":
            chunks.append(message.get("body", b""))
            if not message.get("more_body", False):
                answered.set()

    await app(scope, receive, send)
    answered.set()
    assert start is not None, "the application sent no response"
    headers = CIMultiDict(
        (name.decode("latin-1"), value.decode("latin-1"))
        for name, value in start.get("headers", ())
        if name.lower() not in _HOP_BY_HOP
    )
    return web.Response(status=start["status"], body=b"".join(chunks), headers=headers)
