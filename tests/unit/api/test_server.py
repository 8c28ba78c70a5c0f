"""The options ``casedesk serve`` gives uvicorn."""

from __future__ import annotations

import pytest

from casedesk.api.server import PROTOCOL, uvicorn_options
from casedesk.config import load_settings


def test_serve_runs_the_app_factory_on_our_protocol_and_uvloop_by_default(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("CASEDESK_SERVER_LOOP", raising=False)
    settings = load_settings()
    options = uvicorn_options("127.0.0.1", 8000, 2, settings.server_loop)
    assert options["loop"] == "uvloop"
    assert options["http"] == PROTOCOL
    assert (options["app"], options["factory"], options["workers"]) == (
        "casedesk.app:create_app",
        True,
        2,
    )


def test_the_asyncio_loop_can_be_chosen(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CASEDESK_SERVER_LOOP", "asyncio")
    options = uvicorn_options("127.0.0.1", 8000, 1, load_settings().server_loop)
    assert options["loop"] == "asyncio"
    assert options["http"] == PROTOCOL
