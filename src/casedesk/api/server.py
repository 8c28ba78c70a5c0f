"""How ``casedesk serve`` runs uvicorn, and its HTTP protocol: uvicorn's own, except for one
answer.

A request that uvicorn's parser refuses (raw UTF-8 in the query string, a broken request
line) never reaches the app, and uvicorn answers it with a ``text/plain`` 400. This subclass
of the parser uvicorn picks (httptools, which ``uvicorn[standard]`` installs) answers it with
a problem document instead, like every other error of the API.
"""

from __future__ import annotations

from typing import Any, Literal

import orjson
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

PROTOCOL = f"{__name__}:ProblemHttpToolsProtocol"
"""What ``uvicorn.run(http=...)`` is given."""


def uvicorn_options(
    host: str, port: int, workers: int, loop: Literal["uvloop", "asyncio"]
) -> dict[str, Any]:
    """The arguments of ``uvicorn.run`` for ``casedesk serve``: the app factory, our protocol
    on httptools, and the event loop named, not uvicorn's "auto" (which falls back to
    asyncio without a word when uvloop is missing)."""
    return {
        "app": "casedesk.app:create_app",
        "factory": True,
        "host": host,
        "port": port,
        "workers": workers,
        "loop": loop,
        "http": PROTOCOL,
        "log_config": None,
        "access_log": False,
        "server_header": False,
        "proxy_headers": True,
    }


def problem_400(default_headers: list[tuple[bytes, bytes]]) -> bytes:
    """The whole answer to a request that is not valid HTTP, as bytes for the socket."""
    body = orjson.dumps(
        {
            "type": "/problems/malformed-request",
            "title": "Malformed request",
            "status": 400,
            "detail": "the request is not valid HTTP/1.1; characters outside ASCII in the "
            "path or the query must be percent-encoded",
        }
    )
    head = [b"HTTP/1.1 400 Bad Request\r\n"]
    head += [name + b": " + value + b"\r\n" for name, value in default_headers]
    head += [
        b"content-type: application/problem+json\r\n",
        b"content-length: " + str(len(body)).encode("ascii") + b"\r\n",
        b"connection: close\r\n\r\n",
    ]
    return b"".join(head) + body


class ProblemHttpToolsProtocol(HttpToolsProtocol):
    def send_400_response(self, msg: str) -> None:
        self.transport.write(problem_400(self.server_state.default_headers))
        self.transport.close()
