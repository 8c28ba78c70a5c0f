"""Action-trace benchmark: what tracing costs a call, and how much the store takes in.

It prints, in one run:

1. call overhead: the same GET to a local HTTP server (in its own process) through a hub
   that records and through one that does not, interleaved; median and p99 of each and of
   the difference; plus the cost of recording alone on the call path (the capture and the
   append; redaction waits for the flusher), measured without the network;
2. sustained ingest: attempts captured as the hub captures them, appended as fast as the
   flusher takes them, redacted there, through the buffer to Redis and RabbitMQ and on to
   PostgreSQL, with the persister's limit above the rate;
   records per second written to SQL;
3. queryable latency: the time from the end of a call to its record being readable from
   the hot tier (p50, p99), at a steady rate;
4. a burst of 10x the persister's rate: the SQL write rate per second while the queue
   drains (held at the limit) and whether every record arrived.

    .venv/bin/python -m bench.traces
"""

from __future__ import annotations

import asyncio
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import aio_pika
import httpx
import typer
from rich.console import Console
from rich.progress import Progress
from rich.table import Table
from sqlalchemy import func, select, text

from bench.cases import _free_port, _fresh_database, _seed_identity
from casedesk.config import load_settings
from casedesk.integrations.hub import Hub
from casedesk.kit.tracing import new_trace
from casedesk.store.database import Database
from casedesk.store.models import TraceRow
from casedesk.store.trace_queue import RabbitMQTraceQueue
from casedesk.store.unit_of_work import UnitOfWork
from casedesk.traces.buffer import TraceBuffer
from casedesk.traces.capture import CapturedAttempt, ExchangeCapture
from casedesk.traces.flusher import TraceFlusher
from casedesk.traces.hot_redis import RedisHotStore
from casedesk.traces.persister import TracePersister
from casedesk.traces.records import CallOrigin
from casedesk.traces.redaction import Redactor

console = Console(width=140)
# Benchmarks run on database servers, where casedesk refuses its default key.
os.environ.setdefault("CASEDESK_SECRET_KEY", "casedesk-benchmark-secret-key")
BROKER = os.environ.get("BENCH_BROKER_URL", "amqp://guest:guest@127.0.0.1:5672/")
REDIS = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/14")
SERVER = """
from starlette.applications import Starlette
from starlette.responses import Response
from starlette.routing import Route
import uvicorn, sys

async def items(request):
    return Response(b'{"items":[{"id":1,"name":"printer"}],"next":null}',
                    media_type="application/json", headers={"x-request-id": "abc"})

app = Starlette(routes=[Route("/v1/items", items)])
uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[1]), log_level="error", access_log=False)
"""


def _pct(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def _exchange() -> tuple[httpx.Request, httpx.Response]:
    request = httpx.Request(
        "POST",
        "https://api.example.com/v1/tickets?api_key=k&page=2",
        headers={"Authorization": "Bearer t", "Content-Type": "application/json"},
        json={"subject": "Printer on fire", "password": "p", "tags": ["urgent", "hw"]},
    )
    response = httpx.Response(
        201,
        headers={"Content-Type": "application/json", "X-Request-Id": "r-1"},
        json={"id": 42, "status": "open", "token": "t"},
        request=request,
    )
    return request, response


def _sample_record(
    tenant_id: uuid.UUID,
    capture: ExchangeCapture,
    exchange: tuple[httpx.Request, httpx.Response] | None = None,
) -> CapturedAttempt:
    """A realistic attempt, captured the way the hub captures one."""
    request, response = exchange or _exchange()
    origin = CallOrigin(
        tenant_id=tenant_id,
        connector="example",
        connection_id=None,
        action="create_ticket",
        execution_id="exec-1",
    )
    return capture.attempt(
        origin=origin,
        span=new_trace(),
        parent_span_id=None,
        attempt=1,
        request=request,
        response=response,
        started_at=datetime.now(UTC),
        duration_ms=12.0,
        ttfb_ms=10.0,
        error=None,
    )


async def _overhead(calls: int) -> dict[str, float]:
    port = _free_port()
    server = subprocess.Popen([sys.executable, "-c", SERVER, str(port)])  # noqa: ASYNC220
    try:
        url = f"http://127.0.0.1:{port}/v1/items?token=abc"
        settings = load_settings(outbound_allowed_networks="127.0.0.0/8")
        buffer = TraceBuffer(calls * 2 + 10)
        traced_hub, plain_hub = Hub(settings, recorder=buffer), Hub(settings)
        tenant = uuid.uuid4()
        traced = traced_hub.connection(tenant_id=tenant, connector="bench")
        plain = plain_hub.connection(tenant_id=tenant, connector="bench")
        for _ in range(100):
            try:
                await plain.request("GET", url)
                break
            except Exception:  # the server is still starting
                await asyncio.sleep(0.1)
        timings: dict[str, list[float]] = {"traced": [], "plain": []}
        for _ in range(200):  # warm both pools
            await traced.request("GET", url)
            await plain.request("GET", url)
        buffer.drain(10**6)
        for i in range(calls):
            order = (
                (("traced", traced), ("plain", plain))
                if i % 2
                else (("plain", plain), ("traced", traced))
            )
            for name, connection in order:
                began = time.perf_counter()
                await connection.request("GET", url)
                timings[name].append((time.perf_counter() - began) * 1e6)
        await traced_hub.aclose()
        await plain_hub.aclose()
    finally:
        server.terminate()
        server.wait()
    capture = ExchangeCapture(Redactor.declaring([]), 65_536)
    sink = TraceBuffer(1000)
    recording: list[float] = []
    exchange = _exchange()  # the hub has the request and response already
    for _ in range(calls):
        began = time.perf_counter()
        sink.append(_sample_record(tenant, capture, exchange))
        recording.append((time.perf_counter() - began) * 1e6)
    return {
        "plain_p50": statistics.median(timings["plain"]),
        "plain_p99": _pct(timings["plain"], 0.99),
        "traced_p50": statistics.median(timings["traced"]),
        "traced_p99": _pct(timings["traced"], 0.99),
        "record_p50": statistics.median(recording),
        "record_p99": _pct(recording, 0.99),
    }


async def _rows(database: Database) -> int:
    async with UnitOfWork(database) as uow:
        statement = (
            select(func.count()).select_from(TraceRow).execution_options(casedesk_all_tenants=True)
        )
        return int(await uow.session.scalar(statement) or 0)


async def _truncate(database: Database) -> None:
    async with database.engine.begin() as connection:
        await connection.execute(text("TRUNCATE trace_records"))


class Pipeline:
    """The calling side in this process, the persister in another, as servers and workers
    are deployed."""

    def __init__(self, url: str, namespace: str, rate: float, batch_size: int = 1000) -> None:
        self.url, self.namespace, self.rate = url, namespace, rate
        self.database = Database(url, pool_size=2)
        self.hot = RedisHotStore(REDIS, namespace=namespace, ttl=timedelta(hours=1))
        self.queue = RabbitMQTraceQueue(BROKER, namespace=namespace)
        self.buffer = TraceBuffer(200_000)
        self.flusher = TraceFlusher(self.buffer, self.hot, self.queue, batch_size=batch_size)
        self.persister: subprocess.Popen[bytes] | None = None

    async def start(self) -> None:
        await self.queue.start()
        env = os.environ | {
            PERSIST: "1",
            "CASEDESK_DATABASE_URL": self.url,
            "BENCH_NAMESPACE": self.namespace,
            "BENCH_RATE": str(self.rate),
        }
        command = [sys.executable, "-m", "bench.traces"]
        self.persister = subprocess.Popen(command, env=env)  # noqa: ASYNC220
        self.flusher.start()

    async def stop(self) -> None:
        await self.flusher.stop()
        if self.persister is not None:
            self.persister.terminate()
            self.persister.wait()
        await self.queue.close()
        await self.hot.aclose()
        await self.database.dispose()
        connection = await aio_pika.connect(BROKER)
        async with connection, connection.channel() as channel:
            await channel.queue_delete(f"{self.namespace}.traces", if_unused=False, if_empty=False)


async def _persist_forever() -> None:
    """The persister process of a pipeline: what ``casedesk worker`` runs for traces."""
    database = Database(os.environ["CASEDESK_DATABASE_URL"], pool_size=8)
    queue = RabbitMQTraceQueue(BROKER, namespace=os.environ["BENCH_NAMESPACE"])
    await queue.start()
    await TracePersister(database, queue, rate=float(os.environ["BENCH_RATE"])).start()
    await asyncio.Event().wait()


async def _ingest(url: str, tenant: uuid.UUID, seconds: float) -> dict[str, float]:
    pipeline = Pipeline(url, f"bench-{uuid.uuid4().hex[:6]}", rate=1_000_000)
    capture = ExchangeCapture(Redactor.declaring([]), 65_536)
    template = _sample_record(tenant, capture)
    await pipeline.start()
    try:
        start_rows = await _rows(pipeline.database)
        began = time.perf_counter()
        produced = 0
        while time.perf_counter() - began < seconds:
            # Keep the buffer fed without letting it overflow: the flusher sets the pace.
            while len(pipeline.buffer) < 20_000:
                for _ in range(1000):
                    pipeline.buffer.append(_fresh(template))
                produced += 1000
            await asyncio.sleep(0.005)
        produced -= len(pipeline.buffer)
        persisted = await _rows(pipeline.database) - start_rows
        elapsed = time.perf_counter() - began
        return {
            "flushed_per_s": produced / elapsed,
            "persisted_per_s": persisted / elapsed,
            "dropped": float(pipeline.buffer.dropped),
        }
    finally:
        await pipeline.stop()


def _fresh(template: CapturedAttempt) -> CapturedAttempt:
    from dataclasses import replace

    return replace(template, id=uuid.uuid4(), started_at=datetime.now(UTC))


async def _queryable(url: str, tenant: uuid.UUID, rate: float, seconds: float) -> list[float]:
    pipeline = Pipeline(url, f"bench-{uuid.uuid4().hex[:6]}", rate=1_000_000)
    capture = ExchangeCapture(Redactor.declaring([]), 65_536)
    template = _sample_record(tenant, capture)
    await pipeline.start()
    ended: dict[str, float] = {}
    latencies: list[float] = []

    async def follow() -> None:
        async for _position, doc in pipeline.hot.tail(tenant):
            at = ended.pop(doc["id"], None)
            if at is not None:
                latencies.append((time.perf_counter() - at) * 1000)

    follower = asyncio.create_task(follow())
    await asyncio.sleep(0.2)
    try:
        interval = 1 / rate
        began = time.perf_counter()
        sent = 0
        while time.perf_counter() - began < seconds:
            record = _fresh(template)
            ended[str(record.id)] = time.perf_counter()
            pipeline.buffer.append(record)
            sent += 1
            delay = began + sent * interval - time.perf_counter()
            await asyncio.sleep(max(0.0, delay))
        await asyncio.sleep(1.0)
    finally:
        follower.cancel()
        await pipeline.stop()
    return latencies


async def _burst(url: str, tenant: uuid.UUID, rate: float) -> dict[str, object]:
    await _truncate(Database(url))
    pipeline = Pipeline(url, f"bench-{uuid.uuid4().hex[:6]}", rate=rate, batch_size=200)
    capture = ExchangeCapture(Redactor.declaring([]), 65_536)
    template = _sample_record(tenant, capture)
    await pipeline.start()
    total = int(rate * 10)
    try:
        began = time.perf_counter()
        for start in range(0, total, 1000):
            for _ in range(min(1000, total - start)):
                pipeline.buffer.append(_fresh(template))
            await asyncio.sleep(0)  # the whole burst arrives within about a second
        pushed_in = time.perf_counter() - began
        per_second: list[int] = []
        last = 0
        while last < total and time.perf_counter() - began < 60:
            await asyncio.sleep(1.0)
            now = await _rows(pipeline.database)
            per_second.append(now - last)
            last = now
        return {
            "pushed": total,
            "pushed_in_s": pushed_in,
            "persisted": last,
            "per_second": per_second,
            "dropped": pipeline.buffer.dropped,
        }
    finally:
        await pipeline.stop()


def main(
    calls: int = typer.Option(3000, help="calls per side for the overhead figure"),
    seconds: float = typer.Option(10.0, help="length of the ingest and latency runs"),
    latency_rate: float = typer.Option(2000.0, help="records/s for the queryable latency"),
    burst_rate: float = typer.Option(2000.0, help="the persister's limit in the burst run"),
    repeat: int = typer.Option(3, help="runs per figure; the median is reported"),
) -> None:
    workdir = Path(tempfile.mkdtemp(prefix="casedesk-bench-"))

    async def run() -> None:
        url = await _fresh_database("postgresql", workdir)
        subprocess.run(  # noqa: ASYNC221 - once, before anything is measured
            [sys.executable, "-m", "casedesk", "db", "upgrade"],
            env=os.environ | {"CASEDESK_DATABASE_URL": url},
            check=True,
            capture_output=True,
        )
        tenant, _key, _agents = await _seed_identity(url)
        overhead: list[dict[str, float]] = []
        ingest: list[dict[str, float]] = []
        latency: list[list[float]] = []
        with Progress(console=console, transient=True) as progress:
            task = progress.add_task("measuring", total=repeat * 3 + 1)
            for _ in range(repeat):
                overhead.append(await _overhead(calls))
                progress.advance(task)
                ingest.append(await _ingest(url, tenant, seconds))
                progress.advance(task)
                latency.append(await _queryable(url, tenant, latency_rate, seconds))
                progress.advance(task)
            burst = await _burst(url, tenant, burst_rate)
            progress.advance(task)
        _report(overhead, ingest, latency, burst, latency_rate, burst_rate)

    asyncio.run(run())


def _median(runs: list[dict[str, float]], key: str) -> float:
    return statistics.median(run[key] for run in runs)


def _report(
    overhead: list[dict[str, float]],
    ingest: list[dict[str, float]],
    latency: list[list[float]],
    burst: dict[str, object],
    latency_rate: float,
    burst_rate: float,
) -> None:
    table = Table(title=f"Action trace (median of {len(overhead)} runs)")
    table.add_column("figure")
    table.add_column("value", justify="right")
    table.add_column("baseline / aim", justify="right")
    plain50, traced50 = _median(overhead, "plain_p50"), _median(overhead, "traced_p50")
    plain99, traced99 = _median(overhead, "plain_p99"), _median(overhead, "traced_p99")
    table.add_row(
        "call, traced - untraced, p50",
        f"{traced50 - plain50:.1f} µs",
        f"untraced {plain50:.0f} µs ({traced50 / plain50:.3f}x); aim < 50 µs",
    )
    table.add_row(
        "call, traced - untraced, p99",
        f"{traced99 - plain99:.1f} µs",
        f"untraced {plain99:.0f} µs ({traced99 / plain99:.3f}x)",
    )
    table.add_row(
        "recording alone on the call path (capture + append), p50 / p99",
        f"{_median(overhead, 'record_p50'):.1f} / {_median(overhead, 'record_p99'):.1f} µs",
        "aim < 50 µs",
    )
    table.add_row(
        "sustained ingest, flushed to Redis + RabbitMQ",
        f"{_median(ingest, 'flushed_per_s'):,.0f} records/s",
        "aim 20,000/s",
    )
    table.add_row(
        "sustained ingest, written to PostgreSQL",
        f"{_median(ingest, 'persisted_per_s'):,.0f} records/s",
        f"dropped {max(run['dropped'] for run in ingest):.0f}",
    )
    p50s = [_pct(run, 0.5) for run in latency if run]
    p99s = [_pct(run, 0.99) for run in latency if run]
    table.add_row(
        f"end of call → queryable (hot tier) at {latency_rate:,.0f}/s, p50 / p99",
        f"{statistics.median(p50s):.1f} / {statistics.median(p99s):.1f} ms",
        "aim p99 < 250 ms",
    )
    per_second = burst["per_second"]
    assert isinstance(per_second, list)
    table.add_row(
        f"burst of {burst['pushed']:,} (10x the limit of {burst_rate:,.0f}/s) in "
        f"{burst['pushed_in_s']:.2f} s",
        f"{burst['persisted']:,} persisted, {burst['dropped']} dropped",
        "SQL rows per second: " + ", ".join(f"{n:,}" for n in per_second[:14]),
    )
    console.print(table)


PERSIST = "BENCH_TRACES_PERSISTER"

if __name__ == "__main__":
    if os.environ.get(PERSIST):
        asyncio.run(_persist_forever())
    else:
        typer.run(main)
