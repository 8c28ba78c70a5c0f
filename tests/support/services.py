"""Redis and RabbitMQ for the tests: real servers, skipped on a laptop, required in CI."""

from __future__ import annotations

import os

import pytest

from casedesk.store.probes import ping_broker, ping_redis
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
