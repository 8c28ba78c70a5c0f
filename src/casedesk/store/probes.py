"""Reachability checks of the optional infrastructure, for ``/readyz`` and start-up."""

from __future__ import annotations

import asyncio

import aio_pika
import redis.asyncio as aioredis


async def ping_redis(url: str, seconds: float = 2.0) -> None:
    client = aioredis.Redis.from_url(url, socket_connect_timeout=seconds, socket_timeout=seconds)
    try:
        await client.ping()
    finally:
        await client.aclose()


async def ping_broker(url: str, seconds: float = 2.0) -> None:
    async with asyncio.timeout(seconds):
        connection = await aio_pika.connect(url, timeout=seconds)
    await connection.close()
