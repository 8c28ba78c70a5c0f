"""The body-size check before any handler: a Content-Length that is no ASCII number is a
400, one over the limit a 413, whatever else the header holds."""

from __future__ import annotations

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route

from casedesk.api.middleware import RequestContextMiddleware


async def _echo(request: Request) -> PlainTextResponse:
    return PlainTextResponse(str(len(await request.body())))


def _app() -> Starlette:
    app = Starlette(routes=[Route("/", _echo, methods=["POST"])])
    app.add_middleware(RequestContextMiddleware, max_body_bytes=10)
    return app


async def _send(content_length: bytes, body: bytes = b"") -> int:
    """The status for a request whose Content-Length header is these exact bytes."""
    sent: list[int] = []
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": "/",
        "raw_path": b"/",
        "query_string": b"",
        "root_path": "",
        "headers": [(b"content-length", content_length), (b"host", b"test")],
        "client": ("127.0.0.1", 1),
        "server": ("test", 80),
    }

    async def receive() -> dict[str, object]:
        return {"type": "http.request", "body": body, "more_body": False}

    async def send(message: dict[str, object]) -> None:
        if message["type"] == "http.response.start":
            sent.append(int(message["status"]))  # type: ignore[call-overload]

    await _app()(scope, receive, send)
    return sent[0]


@pytest.mark.parametrize(
    ("declared", "status"),
    [(b"3", 200), (b"\xb2", 400), (b"abc", 400), (b"11", 413), (b"9" * 40, 413)],
)
async def test_a_content_length_is_an_ascii_number_within_the_limit(
    declared: bytes, status: int
) -> None:
    assert await _send(declared, b"abc" if status == 200 else b"") == status
