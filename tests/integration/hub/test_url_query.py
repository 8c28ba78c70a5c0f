"""A URL that carries its own query (a delta or next-page link) keeps it, beside any params."""

from __future__ import annotations

from collections.abc import Callable
from urllib.parse import parse_qs

import pytest

from casedesk.integrations.hub import Connection
from tests.support.http_server import LocalHTTPServer

Connect = Callable[..., Connection]


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({}, {"$deltatoken": ["abc"], "page": ["2"]}),
        ({"top": "10"}, {"$deltatoken": ["abc"], "page": ["2"], "top": ["10"]}),
        ({"page": "3"}, {"$deltatoken": ["abc"], "page": ["3"]}),
    ],
)
async def test_a_urls_own_query_is_kept_and_params_are_merged_into_it(
    connect: Connect, server: LocalHTTPServer, params: dict[str, str], expected: object
) -> None:
    connection = connect()

    await connection.request("GET", f"{server.url}/delta?$deltatoken=abc&page=2", params=params)
    await connection.request("GET", "/delta?$deltatoken=abc&page=2", params=params)

    assert [parse_qs(r.query) for r in server.requests_to("/delta")] == [expected, expected]
