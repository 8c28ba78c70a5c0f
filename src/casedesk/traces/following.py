"""Following the hot tier's tail for a live view: the calls that match a query, as they come,
with a beat while none does, until the reader goes away."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable

from casedesk.traces.documents import Document
from casedesk.traces.query import TraceQuery


async def matching(
    tail: AsyncGenerator[tuple[str, Document], None],
    query: TraceQuery,
    gone: Callable[[], Awaitable[bool]],
    heartbeat_seconds: float,
) -> AsyncIterator[tuple[str, Document] | None]:
    """Each new call that ``query`` matches, with its tail position; None when nothing came
    for ``heartbeat_seconds`` (a stream sends a comment so proxies keep it open). Ends when
    ``gone()`` says the reader left; ``HotStoreUnavailable`` from the tail passes through."""
    pending: asyncio.Task[tuple[str, Document]] | None = None
    try:
        while not await gone():
            pending = pending or asyncio.ensure_future(anext(tail))
            done, _ = await asyncio.wait({pending}, timeout=heartbeat_seconds)
            if not done:
                yield None
                continue
            position, doc = pending.result()
            pending = None
            if query.matches(doc):
                yield position, doc
    finally:
        # While a read is in flight the tail is running inside ``pending``, and a generator
        # cannot be closed from outside while it runs: cancelling the task ends the tail in
        # the task itself. Only a tail at rest is closed from here.
        if pending is not None and not pending.done():
            pending.cancel()
        else:
            await tail.aclose()
