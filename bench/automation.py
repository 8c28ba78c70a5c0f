"""Event delivery and automation benchmark: from a committed change to the rule's effect.

A tenant has one rule: on ``case.updated``, add an internal comment. The benchmark writes
``case.updated`` events straight into the outbox (as a committed change would) and runs real
``casedesk worker`` processes. It measures:

- throughput: a backlog of events drained by one worker, then by two, in events/s; the
  baseline is the same backlog drained with no rule (relay, bus and consumer only);
- latency: events written at a steady rate; for each, the time from the event's commit to
  the commit of the comment its rule made (the action record carries the event's trace id).

    .venv/bin/python -m bench.automation                      # PostgreSQL + RabbitMQ
    .venv/bin/python -m bench.automation --backend sqlite     # embedded: SQLite, in-process
"""

from __future__ import annotations

import asyncio
import os
import secrets
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import typer
from rich.console import Console
from rich.progress import Progress
from rich.table import Table
from sqlalchemy import func, insert, select, text
from sqlalchemy.ext.asyncio import AsyncEngine

from bench.cases import _fresh_database, _seed_identity
from casedesk.activities.rules import EVENT_RULES
from casedesk.bootstrap import build
from casedesk.config import load_settings
from casedesk.domain.automation.rules import RuleSpec
from casedesk.domain.identity.principal import Principal
from casedesk.domain.identity.roles import Role
from casedesk.kit.ids import uuid7
from casedesk.store.database import nullpool_engine
from casedesk.store.models import ActionRecord, Case, OutboxEvent, Queue, StateMachine, Template

console = Console(width=150)
# Benchmarks run on database servers, where casedesk refuses its default key.
os.environ.setdefault("CASEDESK_SECRET_KEY", "casedesk-benchmark-secret-key")
BROKER = os.environ.get("BENCH_BROKER_URL", "amqp://guest:guest@127.0.0.1:5672/")


async def _prepare(url: str, cases: int) -> tuple[uuid.UUID, list[uuid.UUID]]:
    """A tenant with a queue, a machine, a template and ``cases`` cases to update."""
    tenant_id, _key, _agents = await _seed_identity(url)
    container = build(load_settings(database_url=url))
    ids = [uuid7() for _ in range(cases)]
    try:
        async with container.unit_of_work(tenant_id) as uow:
            await uow.begin_write()
            queue = uow.queues.add(Queue(id=uuid7(), code="support", name="Support"))
            definition = {
                "states": [
                    {"code": "open", "name": "Open", "type": "start"},
                    {"code": "done", "name": "Done", "type": "end"},
                ],
                "transitions": [{"action": "close", "name": "Close", "from": "open", "to": "done"}],
            }
            machine = uow.machines.add(
                StateMachine(id=uuid7(), code="m", name="M", draft=definition, latest_version=1)
            )
            await uow.flush()
            from casedesk.store.models import StateMachineVersion

            version = uow.machines.add_version(
                StateMachineVersion(
                    id=uuid7(), machine_id=machine.id, version=1, definition=definition
                )
            )
            template = uow.templates.add(
                Template(
                    id=uuid7(),
                    code="t",
                    name="T",
                    machine_id=machine.id,
                    form_schema={"type": "object"},
                    default_queue_id=queue.id,
                    default_priority=1,
                )
            )
            await uow.flush()
            for number, case_id in enumerate(ids, start=1):
                uow.cases.add(
                    Case(
                        id=case_id,
                        number=number,
                        template_id=template.id,
                        machine_version_id=version.id,
                        state="open",
                        closed=False,
                        title=f"Case {number}",
                        description=None,
                        priority=1,
                        queue_id=queue.id,
                        assignee_id=None,
                        customer_id=None,
                        channel="api",
                        external_ref=None,
                        parent_id=None,
                        form={},
                        tags=[],
                    )
                )
            await uow.commit()
    finally:
        await container.close()
    return tenant_id, ids


async def _set_rule(url: str, tenant_id: uuid.UUID, enabled: bool) -> None:
    container = build(load_settings(database_url=url))
    admin = Principal(
        tenant_id,
        "bench",
        "Bench",
        "standard",
        uuid.uuid4(),
        "a@b.io",
        "A",
        Role.ADMIN,
        uuid.uuid4(),
    )
    try:
        async with container.unit_of_work(tenant_id) as uow:
            existing = await uow.rules.in_order()
        spec = RuleSpec(
            name="note",
            enabled=enabled,
            on=["case.updated"],
            actions=[{"type": "add_comment", "body": "seen"}],
        )  # type: ignore[list-item]
        async with container.unit_of_work(tenant_id) as uow:
            if existing:
                await EVENT_RULES.replace(uow, admin, existing[0].id, spec)
            else:
                await EVENT_RULES.create(uow, admin, spec)
    finally:
        await container.close()


def _event(tenant_id: uuid.UUID, case_id: uuid.UUID) -> dict[str, object]:
    trace = secrets.token_hex(16)
    return {
        "tenant_id": tenant_id,
        "event_id": uuid7(),
        "type": "case.updated",
        "source": f"/tenants/{tenant_id}/cases",
        "subject_id": case_id,
        "time": datetime.now(UTC),
        "traceparent": f"00-{trace}-{secrets.token_hex(8)}-01",
        "data": {
            "case": {"id": str(case_id), "priority": "normal", "state": "open", "tags": []},
            "actor": {"type": "user", "id": None},
            "chain_depth": 0,
            "changes": {"title": {"from": "a", "to": "b"}},
        },
    }


async def _write_events(
    url: str, tenant_id: uuid.UUID, ids: list[uuid.UUID], count: int, rate: float | None
) -> float:
    """Write the events, paced at ``rate`` when given; returns the rate achieved."""
    container = build(load_settings(database_url=url))
    try:
        batch = 1 if rate else 500
        interval = (1 / rate) if rate else 0.0
        start = time.perf_counter()
        for offset in range(0, count, batch):
            rows = [
                _event(tenant_id, ids[(offset + n) % len(ids)])
                for n in range(min(batch, count - offset))
            ]
            async with container.database.engine.begin() as connection:
                await connection.execute(insert(OutboxEvent), rows)
            if rate:
                delay = start + (offset + 1) * interval - time.perf_counter()
                if delay > 0:
                    await asyncio.sleep(delay)
        return count / (time.perf_counter() - start)
    finally:
        await container.close()


_PROBES: dict[str, AsyncEngine] = {}


def _probe(url: str) -> AsyncEngine:
    """One small engine per database for the progress checks, made once: a check builds
    nothing, so polling takes no CPU from the workers measured beside it."""
    engine = _PROBES.get(url)
    if engine is None:
        engine = _PROBES[url] = nullpool_engine(load_settings(database_url=url).database_url)
    return engine


async def _count(url: str, query: Any) -> int:
    async with _probe(url).connect() as connection:
        return int(await connection.scalar(query) or 0)


async def _pending(url: str) -> int:
    query = select(func.count()).select_from(OutboxEvent).where(OutboxEvent.published_at.is_(None))
    return await _count(url, query)


async def _acted(url: str) -> int:
    query = (
        select(func.count()).select_from(ActionRecord).where(ActionRecord.operator_type == "rule")
    )
    return await _count(url, query)


async def _latencies(url: str) -> list[float]:
    """Milliseconds from each event's commit to its rule's committed comment."""
    container = build(load_settings(database_url=url))
    try:
        async with container.database.engine.connect() as connection:
            events = (
                await connection.execute(
                    select(OutboxEvent.traceparent, OutboxEvent.time).where(
                        OutboxEvent.type == "case.updated"
                    )
                )
            ).all()
            records = (
                await connection.execute(
                    select(ActionRecord.trace_id, ActionRecord.created_at).where(
                        ActionRecord.operator_type == "rule"
                    )
                )
            ).all()
    finally:
        await container.close()
    made = {trace: at for trace, at in records}
    return [
        (made[tp.split("-")[1]] - at).total_seconds() * 1000
        for tp, at in events
        if tp.split("-")[1] in made
    ]


async def _reset(url: str) -> None:
    container = build(load_settings(database_url=url))
    try:
        async with container.database.engine.begin() as connection:
            for table in (
                "comments",
                "action_records",
                "processed_events",
                "outbox_events",
                "dead_letters",
            ):
                await connection.execute(text(f"DELETE FROM {table}"))
    finally:
        await container.close()


def _workers(url: str, count: int, env: dict[str, str], log: Path) -> list[subprocess.Popen[bytes]]:
    base = {k: v for k, v in os.environ.items() if not k.startswith("CASEDESK_")}
    base.update(CASEDESK_SECRET_KEY=os.environ["CASEDESK_SECRET_KEY"])
    base.update(CASEDESK_DATABASE_URL=url, CASEDESK_LOG_LEVEL="warning", **env)
    return [
        subprocess.Popen(
            [sys.executable, "-m", "casedesk", "worker"],
            env=base,
            stdout=log.open("ab"),
            stderr=subprocess.STDOUT,
        )
        for _ in range(count)
    ]


def _stop(processes: list[subprocess.Popen[bytes]]) -> None:
    for process in processes:
        process.send_signal(signal.SIGTERM)
    for process in processes:
        process.wait(timeout=60)


async def _until(check, seconds: float = 300) -> float:  # type: ignore[no-untyped-def]
    start = time.perf_counter()
    while not await check():
        if time.perf_counter() - start > seconds:
            raise RuntimeError("the workers did not keep up within the time limit")
        await asyncio.sleep(0.2)
    return time.perf_counter() - start


async def _drain(
    url: str,
    tenant_id: uuid.UUID,
    ids: list[uuid.UUID],
    workers: int,
    backlog: int,
    env: dict[str, str],
    log: Path,
    rule: bool,
) -> float:
    await _reset(url)
    await _set_rule(url, tenant_id, enabled=rule)
    await _write_events(url, tenant_id, ids, backlog, rate=None)
    processes = _workers(url, workers, env, log)
    try:

        async def done() -> bool:
            if await _pending(url):
                return False
            return not rule or await _acted(url) >= backlog

        seconds = await _until(done)
    finally:
        _stop(processes)
    return backlog / seconds


async def _steady(
    url: str,
    tenant_id: uuid.UUID,
    ids: list[uuid.UUID],
    rate: float,
    seconds: int,
    env: dict[str, str],
    log: Path,
) -> tuple[list[float], float]:
    """Latencies of the rule's effects, and the rate the events were really written at."""
    await _reset(url)
    await _set_rule(url, tenant_id, enabled=True)
    processes = _workers(url, 1, env, log)
    try:
        await asyncio.sleep(2)  # connected and subscribed
        count = int(rate * seconds)
        achieved = await _write_events(url, tenant_id, ids, count, rate=rate)

        async def done() -> bool:
            return await _acted(url) >= count

        await _until(done)
    finally:
        _stop(processes)
    return await _latencies(url), achieved


def _percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def main(
    backend: str = typer.Option("postgresql", help="postgresql (with RabbitMQ), mariadb or sqlite"),
    backlog: int = typer.Option(3000, help="events drained for the throughput figures"),
    rates: str = typer.Option(
        "100,200,500", help="steady rates (events/s) for the latency figures"
    ),
    seconds: int = typer.Option(10, help="length of one steady-rate run"),
    repeat: int = typer.Option(3, help="runs per figure; the median is reported"),
) -> None:
    workdir = Path(tempfile.mkdtemp(prefix="casedesk-bench-"))
    log = workdir / "workers.log"
    url = asyncio.run(_fresh_database(backend, workdir))
    tenant_id, ids = asyncio.run(_prepare(url, 500))
    env = (
        {}
        if backend == "sqlite"
        else {
            "CASEDESK_BROKER_URL": BROKER,
            "CASEDESK_BROKER_NAMESPACE": f"bench-{uuid.uuid4().hex[:8]}",
        }
    )
    bus = "in-process bus" if backend == "sqlite" else "RabbitMQ"
    rows: list[tuple[str, str, str, str]] = []
    steady_rates = [float(r) for r in rates.split(",") if r]
    with Progress(console=console) as progress:
        job = progress.add_task("measuring", total=repeat * (3 + len(steady_rates)))
        baseline, one, two = [], [], []
        for _ in range(repeat):
            baseline.append(
                asyncio.run(_drain(url, tenant_id, ids, 1, backlog, env, log, rule=False))
            )
            progress.advance(job)
            one.append(asyncio.run(_drain(url, tenant_id, ids, 1, backlog, env, log, rule=True)))
            progress.advance(job)
            two.append(asyncio.run(_drain(url, tenant_id, ids, 2, backlog, env, log, rule=True)))
            progress.advance(job)
        base = statistics.median(baseline)
        for label, runs in (
            ("no rule, 1 worker (baseline)", baseline),
            ("rule, 1 worker", one),
            ("rule, 2 workers", two),
        ):
            value = statistics.median(runs)
            rows.append(
                (
                    label,
                    f"{value:,.0f} events/s",
                    f"{value / base:.2f}x",
                    " / ".join(f"{r:,.0f}" for r in runs),
                )
            )
        for rate in steady_rates:
            p50s, p99s, offered = [], [], []
            for _ in range(repeat):
                latencies, achieved = asyncio.run(
                    _steady(url, tenant_id, ids, rate, seconds, env, log)
                )
                p50s.append(_percentile(latencies, 0.50))
                p99s.append(_percentile(latencies, 0.99))
                offered.append(achieved)
                progress.advance(job)
            rows.append(
                (
                    # The writer shares the database with the workers; on SQLite's single
                    # write lock it may not reach the rate asked for, so say what it reached.
                    f"commit → rule effect at {rate:,.0f} events/s "
                    f"(written at {statistics.median(offered):,.0f}/s)",
                    f"p50 {statistics.median(p50s):.0f} ms, p99 {statistics.median(p99s):.0f} ms",
                    "",
                    " / ".join(f"{p:.0f}" for p in p99s) + " (p99 ms)",
                )
            )
    table = Table(title=f"casedesk event delivery on {backend} with {bus}, median of {repeat}")
    for column in ("scenario", "result", "vs baseline", "runs"):
        table.add_column(column)
    for row in rows:
        table.add_row(*row)
    console.print(table)


if __name__ == "__main__":
    typer.run(main)
