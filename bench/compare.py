"""casedesk's case API against django-helpdesk, on PostgreSQL and on SQLite, in one run.

For each database it seeds casedesk as ``bench.cases`` does (100,000 cases) and starts it the
same way (``casedesk serve`` with a ``casedesk worker`` beside it), starts django-helpdesk
through its shared harness (``bench.peer``: 2 gunicorn workers, its own ``dh_peer`` database
on the same PostgreSQL server, or its own SQLite file), and drives both with the same wrk
settings: concurrency 32, the same duration, the same timeout. Create, detail and list are
measured in alternating runs (casedesk, peer, casedesk, peer, …), each ``--repeat`` times,
and the medians printed with the ratio casedesk/peer; ``GET /healthz`` of both is the
baseline of their HTTP stacks. The peer creates first, then is seeded to 10,000 tickets as
its harness does before its reads are measured: its detail and list cost time in proportion
to its ticket count (a query per ticket), which is printed beside its figures.

    .venv/bin/python -m bench.compare                     # PostgreSQL and SQLite, full size
    .venv/bin/python -m bench.compare --quick             # a few minutes: smaller, shorter
    .venv/bin/python -m bench.compare --backend sqlite --no-peer
"""

from __future__ import annotations

import asyncio
import os
import shutil
import statistics
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import typer
from rich.table import Table
from sqlalchemy import func, select
from sqlalchemy.exc import DBAPIError

from bench import peer as helpdesk
from bench.cases import LIST_PATH, Result, _wrk, console, drop_database, running, seed
from casedesk.config import load_settings
from casedesk.store.database import nullpool_engine
from casedesk.store.models import OutboxEvent

PATHS = [  # label, casedesk script and path, peer mode
    ("create", "create", "/api/v1/cases", "create"),
    ("detail", "read", "/", "detail"),
    ("list", "list", LIST_PATH, "list"),
]
PEER_BACKENDS = {"postgresql": "postgres", "sqlite": "sqlite"}


@dataclass
class Side:
    runs: dict[str, list[Result]] = field(default_factory=dict)

    def add(self, path: str, result: Result) -> None:
        self.runs.setdefault(path, []).append(result)

    def median(self, path: str) -> Result | None:
        runs = self.runs.get(path)
        if not runs:
            return None
        return Result(
            statistics.median(r.rps for r in runs),
            statistics.median(r.p50_ms for r in runs),
            statistics.median(r.p99_ms for r in runs),
            sum(r.errors for r in runs),
        )


@dataclass
class Outcome:
    backend: str
    workers: int
    cases: int
    ours: Side = field(default_factory=Side)
    theirs: Side = field(default_factory=Side)
    peer_tickets: int | None = None
    peer_note: str = ""


async def _unpublished(url: str) -> int:
    engine = nullpool_engine(load_settings(database_url=url).database_url)
    try:
        async with engine.connect() as connection:
            query = select(func.count()).where(
                OutboxEvent.published_at.is_(None), OutboxEvent.dead_at.is_(None)
            )
            return int((await connection.execute(query)).scalar_one())
    finally:
        await engine.dispose()


def _settle(url: str, limit: float = 120) -> None:
    """Wait until the worker has relayed what the creates wrote, so that its work does not
    fall into the next measurement (the peer's, or ours)."""
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        try:
            if asyncio.run(_unpublished(url)) == 0:
                return
        except DBAPIError:  # a busy server refusing a connection: ask again
            pass
        time.sleep(0.5)


def _measure(
    backend: str,
    cases: int,
    workers: int,
    peer_tickets: int,
    with_peer: bool,
    concurrency: int,
    seconds: int,
    repeat: int,
    timeout: int,
) -> Outcome:
    outcome = Outcome(backend, workers, cases)
    workdir = Path(tempfile.mkdtemp(prefix=f"casedesk-compare-{backend}-"))
    database = f"casedesk_compare_{os.getpid()}"  # beside other benchmarks' databases
    seeded = seed(backend, cases, workdir, database, tenants=0)
    peer = None
    if with_peer:
        try:
            peer = helpdesk.start(PEER_BACKENDS[backend], workdir / "dh-peer")
        except helpdesk.PeerUnavailable as exc:
            outcome.peer_note = str(exc).splitlines()[0]
            console.print(f"[yellow]peer not measured on {backend}: {exc}[/]")
    try:
        with running(seeded.url, workers, workdir) as base:

            def ours(script: str, path: str) -> Callable[[], Result]:
                return lambda: _wrk(
                    base, path, seeded.scripts[script], concurrency, seconds, timeout
                )

            for script, path in [("healthz", "/healthz"), *((s, p) for _, s, p, _ in PATHS)]:
                _wrk(base, path, seeded.scripts[script], concurrency, 2, timeout)  # warm-up
            _settle(seeded.url)
            for _ in range(repeat):
                outcome.ours.add(
                    "healthz",
                    _wrk(base, "/healthz", seeded.scripts["healthz"], concurrency, seconds),
                )
                if peer is not None:
                    outcome.theirs.add(
                        "healthz",
                        _wrk(
                            helpdesk.URL,
                            "/healthz",
                            seeded.scripts["healthz"],
                            concurrency,
                            seconds,
                        ),
                    )
            for label, script, path, mode in PATHS:
                if peer is not None and label == "detail":
                    outcome.peer_tickets = peer.seed(peer_tickets)
                for _ in range(repeat):
                    outcome.ours.add(label, ours(script, path)())
                    if label == "create":
                        _settle(seeded.url)
                    if peer is not None:
                        outcome.theirs.add(label, peer.wrk(mode, concurrency, seconds, timeout))
    finally:
        if peer is not None:
            peer.stop()
        asyncio.run(drop_database(backend, database))
    return outcome


def main(
    backend: list[str] = typer.Option(
        ["postgresql", "sqlite"], help="postgresql and/or sqlite (the peer runs on both)"
    ),
    cases: int = typer.Option(100_000, help="cases seeded into casedesk before its reads"),
    peer_tickets: int = typer.Option(10_000, help="tickets the peer holds before its reads"),
    workers: int = typer.Option(2, help="casedesk server processes on PostgreSQL"),
    sqlite_workers: int = typer.Option(
        2, help="casedesk server processes on SQLite (2, as the peer has 2 gunicorn workers)"
    ),
    concurrency: int = typer.Option(32, help="connections kept busy by wrk, on both"),
    seconds: int = typer.Option(20, help="length of one measurement, on both"),
    repeat: int = typer.Option(3, help="alternating runs per path; the median is reported"),
    timeout: int = typer.Option(30, help="wrk's request timeout, on both (the peer's harness: 30)"),
    quick: bool = typer.Option(
        False, help="a few minutes: 5,000 cases, the peer at 1,000 tickets, 1 run of 5 s"
    ),
    peer: bool = typer.Option(True, help="measure django-helpdesk beside casedesk"),
) -> None:
    if shutil.which("wrk") is None:
        console.print("[red]wrk is not installed[/]: apt-get install -y wrk (or `make bench`)")
        raise typer.Exit(1)
    unknown = [name for name in backend if name not in PEER_BACKENDS]
    if unknown:
        raise typer.BadParameter(f"{unknown[0]!r}: postgresql or sqlite", param_hint="--backend")
    if quick:
        cases, peer_tickets, seconds, repeat = 5_000, 1_000, 5, 1
    for name in backend:  # each backend's table as soon as it is measured
        outcome = _measure(
            name,
            cases,
            workers if name == "postgresql" else sqlite_workers,
            peer_tickets,
            peer,
            concurrency,
            seconds,
            repeat,
            timeout,
        )
        _report(outcome, concurrency, seconds, repeat)


def _cells(result: Result | None) -> list[str]:
    if result is None:
        return ["-"] * 4
    return [
        f"{result.rps:,.1f}",
        f"{result.p50_ms:,.1f}",
        f"{result.p99_ms:,.1f}",
        str(result.errors),
    ]


def _report(outcome: Outcome, concurrency: int, seconds: int, repeat: int) -> None:
    table = Table(
        title=f"casedesk ({outcome.workers} server process(es) + 1 worker, {outcome.cases:,} "
        f"cases) against {helpdesk.NAME} on {outcome.backend}; wrk -t2 -c{concurrency} "
        f"{seconds}s, median of {repeat} alternating runs"
    )
    table.add_column("path")
    for who in ("casedesk", "peer"):
        for column in ("req/s", "p50 ms", "p99 ms", "errors"):
            table.add_column(f"{who} {column}", justify="right")
    table.add_column("casedesk/peer", justify="right")
    for label in ["healthz", *(label for label, _, _, _ in PATHS)]:
        ours, theirs = outcome.ours.median(label), outcome.theirs.median(label)
        ratio = f"{ours.rps / theirs.rps:.2f}x" if ours and theirs and theirs.rps else "-"
        table.add_row(label, *_cells(ours), *_cells(theirs), ratio)
    console.print(table)
    if outcome.peer_tickets is not None:
        console.print(
            f"  the peer's detail and list ran at {outcome.peer_tickets:,} tickets (casedesk at "
            f"{outcome.cases:,} cases and those it created): django-helpdesk's ticket GETs cost "
            "time in proportion to its ticket count (a query per ticket in "
            "TicketViewSet.get_queryset), so its figures hold only at that count. Its list is "
            "25 a page (status=3), casedesk's 50 (queue and state)."
        )
    elif outcome.peer_note:
        console.print(f"  peer not measured: {outcome.peer_note}")


if __name__ == "__main__":
    typer.run(main)
