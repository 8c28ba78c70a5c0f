"""Integration platform benchmark: instant ingress and webhook → case beside n8n, and 10,000
polling subscriptions on one worker.

On PostgreSQL, against ``casedesk serve`` run as in production (two server processes, the
background work in ``casedesk worker`` processes):

- **ingress**: wrk POSTs deliveries, each with its own id, to a generic-webhook workflow's
  ``/hooks/{token}`` with a bearer token the trigger checks; no worker runs, so this is
  verification plus the durable store (inbox row and job, committed) before each answer;
- **webhook → case**: the same while one ``casedesk worker`` turns deliveries into cases;
  cases made per second over the run until the backlog is done;
- **n8n**: its Webhook → Set workflow driven by the same wrk settings through the harness in
  ``../shared/peers/n8n`` (installed on first use), in the same run, and the ratios;
- **polling**: 10,000 subscriptions of the generic REST poller at a one-minute interval
  against a local HTTP server in its own process, run by one scheduler loop (one worker);
  the schedule lag (started - due) of every run, p50 / p99 / max.

    .venv/bin/python -m bench.platform
    .venv/bin/python -m bench.platform --subscriptions 2000 --poll-minutes 2 --no-n8n
"""

from __future__ import annotations

import asyncio
import os
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import typer
from rich.console import Console
from rich.progress import Progress
from rich.table import Table
from sqlalchemy import func, insert, select

from bench.cases import _configure, _free_port, _fresh_database, _seed_identity, _serve
from casedesk.bootstrap import build, poller
from casedesk.config import load_settings
from casedesk.kit.clock import utcnow
from casedesk.kit.ids import uuid7
from casedesk.platform.polling import POLL, poll_key
from casedesk.store.models import (
    Case,
    Connection,
    Execution,
    InboxDelivery,
    ScheduledJob,
    Subscription,
    Workflow,
    WorkflowVersion,
)
from casedesk.worker.scheduler import Scheduler

console = Console(width=150)
os.environ.setdefault("CASEDESK_SECRET_KEY", "casedesk-benchmark-secret-key")
ROOT = Path(__file__).resolve().parents[1]
N8N = ROOT.parent / "shared" / "peers" / "n8n"
HOOK_TOKEN = "bench-hook-token-0123456789"
WORKFLOW = {
    "code": "inbound",
    "name": "Inbound",
    "trigger": {
        "connector": "webhook",
        "trigger": "delivery",
        "settings": {"verify": {"type": "bearer"}},
    },
    "steps": [
        {
            "name": "open",
            "kind": "create_case",
            "template": "question",
            "title": "{{ trigger.body.name }}",
            "customer_email": "bench@example.com",
            "form": {"product": "P-1"},
        }
    ],
}
# Each wrk thread numbers its deliveries under a prefix of its own, so every id is new.
INGRESS_LUA = f"""
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer {HOOK_TOKEN}"
counter = 0
prefix = tostring({{}}):sub(8)
request = function()
  counter = counter + 1
  local body = string.format('{{"id": "%s-%d", "name": "Order %d", "amount": 12}}',
    prefix, counter, counter)
  return wrk.format(nil, nil, nil, body)
end
done = function(summary, latency, requests)
  io.write(string.format("RESULT %f %f %f %d %d\\n", summary.requests / (summary.duration / 1e6),
    latency:percentile(50) / 1000, latency:percentile(99) / 1000,
    summary.errors.status + summary.errors.connect + summary.errors.read + summary.errors.write
    + summary.errors.timeout, summary.requests))
end
"""
SOURCE_APP = """
from starlette.applications import Starlette
from starlette.responses import Response
from starlette.routing import Route

async def items(request):
    return Response(b"[]", media_type="application/json")

app = Starlette(routes=[Route("/items", items)])
"""


def _wrk(url: str, script: Path, seconds: int, concurrency: int) -> tuple[float, float, float, int]:
    command = ["wrk", "-t2", f"-c{concurrency}", f"-d{seconds}s", "--timeout", "10s"]
    done = subprocess.run(
        [*command, "-s", str(script), url], capture_output=True, text=True, check=True
    )
    match = re.search(r"RESULT (\S+) (\S+) (\S+) (\d+) (\d+)", done.stdout)
    if match is None:
        raise RuntimeError(f"wrk printed no result:\n{done.stdout}")
    rps, p50, p99, errors, _ = match.groups()
    return float(rps), float(p50), float(p99), int(errors)


def _worker(url: str, log: Path) -> subprocess.Popen[bytes]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CASEDESK_")}
    env.update(
        CASEDESK_DATABASE_URL=url,
        CASEDESK_SECRET_KEY=os.environ["CASEDESK_SECRET_KEY"],
        CASEDESK_LOG_LEVEL="warning",
    )
    return subprocess.Popen(
        [sys.executable, "-m", "casedesk", "worker"],
        env=env,
        stdout=log.open("ab"),
        stderr=subprocess.STDOUT,
    )


def _stop(process: subprocess.Popen[bytes]) -> None:
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout=60)
    except subprocess.TimeoutExpired:
        process.kill()


async def _count(url: str, model: type[Any], *where: Any) -> int:
    container = build(load_settings(database_url=url))
    try:
        async with container.database.engine.connect() as connection:
            statement = select(func.count()).select_from(model).where(*where)
            return int(await connection.scalar(statement) or 0)
    finally:
        await container.close()


async def _until_done(url: str, seconds: float = 600) -> None:
    """Until every stored delivery is handled and every execution has ended."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        pending = await _count(url, InboxDelivery, InboxDelivery.status == "pending")
        running = await _count(url, Execution, Execution.status.in_(("queued", "running")))
        if not pending and not running:
            return
        await asyncio.sleep(0.5)
    raise RuntimeError("the worker did not finish the backlog in time")


def _hook(base: str, key: str) -> str:
    """Save and publish the webhook workflow; give its subscription the token; its URL."""
    headers = {"Authorization": f"Bearer {key}"}
    with httpx.Client(base_url=base, headers=headers, timeout=30) as http:
        http.post("/api/v1/workflows", json=WORKFLOW).raise_for_status()
        published = http.post("/api/v1/workflows/inbound/publish")
        published.raise_for_status()
        subscription = published.json()["subscription"]
        http.put(
            f"/api/v1/subscriptions/{subscription['id']}/hook/secrets",
            json={"secrets": {"hook_token": HOOK_TOKEN}},
        ).raise_for_status()
        hook_url: str = subscription["hook_url"]
    return hook_url


def _n8n(seconds: int, concurrency: int) -> tuple[float, float] | None:
    """n8n's answers and finished executions per second for the same wrk settings, through
    its harness."""
    if not (N8N / "bench.sh").exists():
        console.print(f"[yellow]no n8n harness at {N8N}: n8n is not measured[/]")
        return None
    env = os.environ | {
        "SCENARIOS": "save_all",
        "DURATION": f"{seconds}s",
        "CONNECTIONS": str(concurrency),
    }
    done = subprocess.run(
        ["bash", str(N8N / "bench.sh")], env=env, capture_output=True, text=True, check=False
    )
    # scenario req/s p50 p99 errors | requests exec_ran exec_saved srv_cpu% fail/log rss
    match = re.search(r"^save_all\s+(\S+)(?:\s+\S+){3}\s+\|\s+\S+\s+(\d+)", done.stdout, flags=re.M)
    if done.returncode != 0 or match is None:
        console.print(f"[yellow]the n8n harness failed:[/]\n{done.stderr[-2000:]}")
        return None
    return float(match.group(1)), int(match.group(2)) / seconds


def _source(workdir: Path) -> tuple[subprocess.Popen[bytes], int]:
    """The polled API: a Starlette app in its own process, answering an empty list."""
    port = _free_port()
    (workdir / "source_app.py").write_text(SOURCE_APP)
    command = [sys.executable, "-m", "uvicorn", "source_app:app", "--port", str(port)]
    return subprocess.Popen([*command, "--log-level", "warning"], cwd=workdir), port


async def _poll_lag(url: str, port: int, subscriptions: int, minutes: float) -> list[float]:
    """Lags (seconds) of every polling run of ``subscriptions`` subscriptions at a one-minute
    interval over ``minutes`` minutes, run by one scheduler loop as one worker runs them."""
    await _wait_for(f"http://127.0.0.1:{port}/items")
    settings = load_settings(
        database_url=url, outbound_allowed_networks="127.0.0.0/8", log_level="warning"
    )
    container = build(settings)
    try:
        await _subscriptions(container, f"http://127.0.0.1:{port}", subscriptions)
        lags: list[float] = []
        runs = poller(container)

        async def timed(job: ScheduledJob) -> str | None:
            lags.append(max(0.0, (utcnow() - job.due_at).total_seconds()))
            return await runs.run_job(job)

        scheduler = Scheduler(
            container.database, {POLL: timed}, concurrency=settings.job_concurrency
        )
        stop = asyncio.Event()
        loop = asyncio.create_task(scheduler.run(stop))
        await asyncio.sleep(minutes * 60)
        stop.set()
        await loop
        return lags
    finally:
        await container.close()


async def _wait_for(url: str) -> None:
    deadline = time.monotonic() + 30
    async with httpx.AsyncClient() as http:
        while time.monotonic() < deadline:
            try:
                if (await http.get(url)).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            await asyncio.sleep(0.2)
    raise RuntimeError(f"{url} did not answer")


async def _subscriptions(container: Any, source: str, count: int) -> None:
    """``count`` published workflows on the generic REST poller, their first runs spread over
    the first minute, written straight to the store."""
    async with container.unit_of_work() as uow:
        tenant = await uow.tenants.by_slug("bench")
    tenant_id = tenant.id
    async with container.database.engine.begin() as connection:
        connection_id = uuid7()
        await connection.execute(
            insert(Connection).values(
                id=connection_id,
                tenant_id=tenant_id,
                name="source",
                connector="rest",
                connector_version=1,
                settings={"base_url": source},
                status="active",
                version=1,
                created_at=utcnow(),
                updated_at=utcnow(),
            )
        )
        definition = {
            "name": "poll",
            "trigger": {
                "connector": "rest",
                "trigger": "new_item",
                "connection_id": str(connection_id),
                "settings": {"path": "/items", "interval_seconds": 60},
            },
            "steps": [
                {"name": "open", "kind": "create_case", "template": "question", "title": "x"}
            ],
        }
        start = utcnow()
        with Progress(console=console) as progress:
            task = progress.add_task(f"{count:,} polling subscriptions", total=count)
            for first in range(0, count, 1000):
                rows = range(first, min(first + 1000, count))
                workflows = [uuid7() for _ in rows]
                subs = [uuid7() for _ in rows]
                now = utcnow()
                await connection.execute(
                    insert(Workflow),
                    [
                        {
                            "id": w,
                            "tenant_id": tenant_id,
                            "code": f"poll-{n}",
                            "name": "poll",
                            "enabled": True,
                            "draft": definition,
                            "latest_version": 1,
                            "created_at": now,
                            "updated_at": now,
                        }
                        for n, w in zip(rows, workflows, strict=True)
                    ],
                )
                await connection.execute(
                    insert(WorkflowVersion),
                    [
                        {
                            "id": uuid7(),
                            "tenant_id": tenant_id,
                            "workflow_id": w,
                            "version": 1,
                            "definition": definition,
                            "published_at": now,
                        }
                        for w in workflows
                    ],
                )
                await connection.execute(
                    insert(Subscription),
                    [
                        {
                            "id": s,
                            "tenant_id": tenant_id,
                            "workflow_id": w,
                            "connection_id": connection_id,
                            "trigger": "new_item",
                            "settings": definition["trigger"]["settings"],
                            "enabled": True,  # type: ignore[index]
                            "status": "active",
                            "consecutive_failures": 0,
                            "version": 1,
                            "created_at": now,
                            "updated_at": now,
                        }
                        for s, w in zip(subs, workflows, strict=True)
                    ],
                )
                await connection.execute(
                    insert(ScheduledJob),
                    [
                        {
                            "id": uuid7(),
                            "tenant_id": tenant_id,
                            "kind": POLL,
                            "key": poll_key(s),
                            "due_at": start + timedelta(seconds=60 * n / count),
                            "payload": {"subscription_id": str(s)},
                            "traceparent": f"00-{uuid.uuid4().hex}-{uuid.uuid4().hex[:16]}-01",
                            "status": "pending",
                            "attempts": 0,
                            "created_at": now,
                            "updated_at": now,
                        }
                        for n, s in zip(rows, subs, strict=True)
                    ],
                )
                progress.advance(task, len(subs))


def _percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))] if ordered else 0.0


def main(
    seconds: int = typer.Option(20, help="length of each wrk run"),
    concurrency: int = typer.Option(32, help="wrk connections"),
    subscriptions: int = typer.Option(10_000, help="polling subscriptions"),
    poll_minutes: float = typer.Option(3.0, help="how long the polling scenario runs"),
    n8n: bool = typer.Option(True, help="measure n8n beside casedesk"),
) -> None:
    workdir = Path(tempfile.mkdtemp(prefix="casedesk-bench-platform-"))
    log = workdir / "casedesk.log"
    script = workdir / "ingress.lua"
    script.write_text(INGRESS_LUA)
    url = asyncio.run(_fresh_database("postgresql", workdir))
    _tenant, key, _agents = asyncio.run(_seed_identity(url))
    port = _free_port()
    server = _serve(url, port, 2, log)
    rows: list[tuple[str, str, str]] = []
    try:
        base = f"http://127.0.0.1:{port}"
        _configure(base, {"Authorization": f"Bearer {key}"})
        hook = _hook(base, key)
        _wrk(hook, script, 3, concurrency)  # warm-up
        stored_before = asyncio.run(_count(url, InboxDelivery))
        ingress, p50, p99, errors = _wrk(hook, script, seconds, concurrency)
        stored = asyncio.run(_count(url, InboxDelivery)) - stored_before
        rows.append(
            (
                "ingress: verified and stored, no worker running",
                f"{ingress:,.0f}/s, p50 {p50:.0f} ms, p99 {p99:.0f} ms",
                f"{stored:,} stored, {errors} errors",
            )
        )
        worker = _worker(url, log)
        try:
            asyncio.run(_until_done(url))  # the warm-up's and the first run's deliveries
            cases_before = asyncio.run(_count(url, Case))
            began = time.perf_counter()
            rate, p50, p99, errors = _wrk(hook, script, seconds, concurrency)
            asyncio.run(_until_done(url))
            took = time.perf_counter() - began
            made = asyncio.run(_count(url, Case)) - cases_before
        finally:
            _stop(worker)
        rows.append(
            (
                "webhook → case, 1 worker (ingress at the same time)",
                f"{made / took:,.0f} cases/s",
                f"{made:,} cases in {took:.1f} s; ingress {rate:,.0f}/s, p99 {p99:.0f} ms",
            )
        )
    finally:
        _stop(server)
    if n8n:
        peer = _n8n(seconds, concurrency)
        if peer is not None:
            answers, executions = peer
            rows.append(
                (
                    "n8n 2.8.4, Webhook → Set (save_all)",
                    f"{executions:,.1f} executions/s",
                    f"{answers:,.1f} answers/s",
                )
            )
            rows.append(
                (
                    "ratio: casedesk ingress / n8n executions",
                    f"{ingress / executions:.1f}x",
                    "aim ≥ 10x",
                )
            )
            rows.append(
                (
                    "ratio: casedesk webhook → case / n8n executions",
                    f"{made / took / executions:.1f}x",
                    "aim ≥ 10x",
                )
            )
    source, source_port = _source(workdir)
    try:
        lags = asyncio.run(_poll_lag(url, source_port, subscriptions, poll_minutes))
    finally:
        source.terminate()
        source.wait(timeout=30)
    steady = lags[subscriptions:]  # after each subscription's first run
    rows.append(
        (
            f"polling: {subscriptions:,} subscriptions at 60 s, one worker, {poll_minutes:g} min",
            f"lag p50 {statistics.median(lags) if lags else 0:.2f} s, "
            f"p99 {_percentile(lags, 0.99):.2f} s, max {max(lags, default=0):.2f} s",
            f"{len(lags):,} runs ({len(lags) / (poll_minutes * 60):,.0f}/s); after the first "
            f"round p99 {_percentile(steady, 0.99):.2f} s; aim p99 < 5 s",
        )
    )
    table = Table(title="casedesk integration platform on PostgreSQL (2 server processes)")
    for column in ("scenario", "result", "detail"):
        table.add_column(column)
    for row in rows:
        table.add_row(*row)
    console.print(table)


if __name__ == "__main__":
    typer.run(main)
