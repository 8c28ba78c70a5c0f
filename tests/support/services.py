"""Redis and RabbitMQ for the tests: real servers, skipped on a laptop, required in CI."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Iterable

import aio_pika
import pytest

from casedesk.store.probes import ping_broker, ping_redis
from casedesk.worker import automation, sla, timers, webhooks
from tests.support.backends import unavailable

REDIS_URL = os.environ.get("CASEDESK_TEST_REDIS_URL", "redis://127.0.0.1:6379/15")
BROKER_URL = os.environ.get("CASEDESK_TEST_BROKER_URL", "amqp://guest:guest@127.0.0.1:5672/")


async def require_redis() -> str:
    try:
        await ping_redis(REDIS_URL)
    except Exception as exc:
        unavailable("Redis", f"{type(exc).__name__}: {exc}")
    return REDIS_URL


async def require_broker() -> str:
    try:
        await ping_broker(BROKER_URL, seconds=5)
    except Exception as exc:
        unavailable("RabbitMQ", f"{type(exc).__name__}: {exc}")
    return BROKER_URL


@pytest.fixture
async def redis_url() -> str:
    return await require_redis()


@pytest.fixture
async def broker_url() -> str:
    return await require_broker()


async def drop_broker_names(
    broker_url: str, *, queues: Iterable[str] = (), exchanges: Iterable[str] = ()
) -> None:
    """Delete a test's queues and exchanges, so that nothing accumulates on the shared broker."""
    async with asyncio.timeout(30):
        connection = await aio_pika.connect(broker_url, timeout=10)
        async with connection, connection.channel() as channel:
            for queue in queues:
                # Quorum queues refuse if-unused/if-empty deletes with a connection error.
                await channel.queue_delete(queue, if_unused=False, if_empty=False)
            for exchange in exchanges:
                await channel.exchange_delete(exchange, if_unused=False)


async def drop_broker_namespace(broker_url: str, namespace: str) -> None:
    """Delete everything casedesk declares under ``CASEDESK_BROKER_NAMESPACE=namespace``."""
    groups = (automation.GROUP, sla.GROUP, timers.GROUP, webhooks.GROUP)
    await drop_broker_names(
        broker_url,
        queues=[
            *(f"{namespace}.{group}{suffix}" for group in groups for suffix in ("", ".dead")),
            f"{namespace}.traces",
        ],
        exchanges=[f"{namespace}.events", f"{namespace}.events.dead"],
    )
