"""A real HTTP server for tests of outbound calls.

uvicorn serves a small Starlette app on 127.0.0.1 (an ephemeral port) in the test's event
loop. Every request is recorded; replies are scripted per path and served in order, the
last one repeating, or made by a handler per path (a fake service with state of its own,
as ``oauth_server`` is). Other paths answer 200 ``ok``.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route
from starlette.types import ASGIApp

_METHODS = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]


@dataclass(frozen=True)
class Reply:
    status: int = 200
    body: bytes = b"ok"
    headers: Mapping[str, str] = field(default_factory=lambda: {"content-type": "text/plain"})
    delay: float = 0.0
    """Seconds before the status line and headers are sent."""
    body_delay: float = 0.0
    """Seconds between the headers and the body, and between its chunks."""
    chunks: int = 1
    """Pieces the body is sent in."""

    @classmethod
    def json(cls, document: Any, status: int = 200, headers: Mapping[str, str] = {}) -> Reply:
        return cls(status, orjson.dumps(document), {"content-type": "application/json", **headers})


@dataclass(frozen=True)
class Received:
    method: str
    path: str
    query: str
    headers: Mapping[str, str]
    body: bytes
    at: float
    """``time.perf_counter()`` when the request arrived."""


Handler = Callable[[Received], Awaitable[Reply]]


class LocalHTTPServer:
    def __init__(self, *, certfile: Path | None = None, keyfile: Path | None = None) -> None:
        self.received: list[Received] = []
        self.in_flight = 0
        self.max_in_flight = 0
        """The most requests the server held at once (waiting out a reply's ``delay``)."""
        self._scripts: dict[str, list[Reply]] = {}
        self._handlers: dict[str, Handler] = {}
        self._socket = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._socket.bind(("127.0.0.1", 0))
        self.port: int = self._socket.getsockname()[1]
        self.scheme = "http" if certfile is None else "https"
        app = Starlette(routes=[Route("/{path:path}", self._handle, methods=_METHODS)])
        config = uvicorn.Config(
            app,
            log_config=None,
            log_level="warning",
            access_log=False,
            lifespan="off",
            ssl_certfile=certfile,
            ssl_keyfile=keyfile,
        )
        self._server = _TestServer(config)
        self._task: asyncio.Task[None] | None = None

    @property
    def url(self) -> str:
        return f"{self.scheme}://127.0.0.1:{self.port}"

    def script(self, path: str, *replies: Reply) -> None:
        """Answer requests to ``path`` with ``replies`` in order; the last one repeats."""
        self._scripts[path] = list(replies)

    def handle(self, path: str, handler: Handler) -> None:
        """Answer each request to ``path`` with what ``handler`` makes of it (kept on reset)."""
        self._handlers[path] = handler

    def requests_to(self, path: str) -> list[Received]:
        return [received for received in self.received if received.path == path]

    def reset(self) -> None:
        self.received.clear()
        self._scripts.clear()
        self.max_in_flight = 0

    async def start(self) -> None:
        self._task = asyncio.create_task(self._server.serve(sockets=[self._socket]))
        async with asyncio.timeout(10):
            while not self._server.started:
                if self._task.done():
                    self._task.result()  # raises what stopped the server
                await asyncio.sleep(0.01)

    async def stop(self) -> None:
        self._server.should_exit = True
        if self._task is not None:
            await self._task
        self._socket.close()

    async def _handle(self, request: Request) -> Response:
        received = Received(
            method=request.method,
            path=request.url.path,
            query=request.url.query,
            headers=dict(request.headers),
            body=await request.body(),
            at=time.perf_counter(),
        )
        self.received.append(received)
        handler = self._handlers.get(request.url.path)
        reply = await handler(received) if handler else self._next_reply(request.url.path)
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            await asyncio.sleep(reply.delay)
        finally:
            self.in_flight -= 1
        if reply.body_delay:
            pieces = _split(reply.body, reply.chunks)
            return StreamingResponse(
                _trickle(pieces, reply.body_delay), reply.status, dict(reply.headers)
            )
        return Response(reply.body, reply.status, dict(reply.headers))

    def _next_reply(self, path: str) -> Reply:
        replies = self._scripts.get(path)
        if not replies:
            return Reply()
        return replies.pop(0) if len(replies) > 1 else replies[0]


class _TestServer(uvicorn.Server):
    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        # Ctrl+C stops the test run, not just this server.
        yield


def _split(body: bytes, chunks: int) -> list[bytes]:
    size = -(-len(body) // chunks)
    return [body[start : start + size] for start in range(0, len(body), size)]


async def _trickle(pieces: list[bytes], seconds: float) -> AsyncIterator[bytes]:
    for piece in pieces:
        await asyncio.sleep(seconds)
        yield piece


@contextlib.asynccontextmanager
async def local_http_server(
    *, certfile: Path | None = None, keyfile: Path | None = None
) -> AsyncIterator[LocalHTTPServer]:
    server = LocalHTTPServer(certfile=certfile, keyfile=keyfile)
    await server.start()
    try:
        yield server
    finally:
        await server.stop()


@contextlib.asynccontextmanager
async def serving(app: ASGIApp) -> AsyncIterator[int]:
    """``app`` served on a free local port for as long as the block runs; the port."""
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.bind(("127.0.0.1", 0))
    config = uvicorn.Config(
        app, log_config=None, log_level="warning", access_log=False, lifespan="off"
    )
    server = _TestServer(config)
    task = asyncio.create_task(server.serve(sockets=[listener]))
    try:
        async with asyncio.timeout(10):
            while not server.started:
                if task.done():
                    task.result()  # raises what stopped the server
                await asyncio.sleep(0.01)
        yield listener.getsockname()[1]
    finally:
        server.should_exit = True
        await task
        listener.close()
