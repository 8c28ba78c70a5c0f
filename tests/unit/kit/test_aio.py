"""The event loop a long-running command runs on."""

from __future__ import annotations

import asyncio

import pytest
import uvloop

from casedesk.kit.aio import run_on


async def _loop_type() -> type[asyncio.AbstractEventLoop]:
    return type(asyncio.get_running_loop())


def test_uvloop_is_the_loop_asked_for() -> None:
    assert issubclass(run_on("uvloop", _loop_type()), uvloop.Loop)


def test_asyncio_is_the_standard_loop() -> None:
    assert not issubclass(run_on("asyncio", _loop_type()), uvloop.Loop)


def test_the_result_and_the_error_come_back() -> None:
    async def fails() -> None:
        raise LookupError("gone")

    async def answers() -> int:
        await asyncio.sleep(0)
        return 42

    assert run_on("uvloop", answers()) == 42
    with pytest.raises(LookupError, match="gone"):
        run_on("uvloop", fails())
