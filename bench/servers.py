"""Which server, which event loop, how many processes: case detail and create under each.

One database is seeded as ``bench.cases`` does; then every configuration is started in turn
(with one ``casedesk worker`` beside it, as in production) and measured with wrk, in rounds
(each round starts every configuration once, in the same order), ``--repeat`` rounds; the
medians are printed. The configurations: ``casedesk serve`` (uvicorn, httptools) on uvloop and
on asyncio, granian on uvloop (``bench.granian_server``, when granian is installed), each
with ``--workers`` processes, and ``casedesk serve`` with 1 to ``--max-processes`` processes.

    .venv/bin/python -m bench.servers                       # PostgreSQL, 20,000 cases
    .venv/bin/python -m bench.servers --seconds 5 --repeat 1 --max-processes 3
"""

from __future__ import annotations

import asyncio
import importlib.util
import os
import shutil
import statistics
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import typer
from rich.progress import Progress
from rich.table import Table

from bench.cases import Result, _wrk, console, drop_database, running, seed


@dataclass
class Configuration:
    name: str
    processes: int
    command: list[str] | None = None
    env: dict[str, str] = field(default_factory=dict)


def configurations(workers: int, max_processes: int) -> list[Configuration]:
    serve = [
        Configuration(f"uvicorn + uvloop, {workers} processes", workers),
        Configuration(
            f"uvicorn + asyncio, {workers} processes",
            workers,
            env={"CASEDESK_SERVER_LOOP": "asyncio"},
        ),
    ]
    if importlib.util.find_spec("granian") is not None:
        serve.append(
            Configuration(
                f"granian + uvloop, {workers} processes",
                workers,
                command=[sys.executable, "-m", "bench.granian_server"],
            )
        )
    serve += [
        Configuration(f"uvicorn + uvloop, {n} process{'es' if n > 1 else ''}", n)
        for n in range(1, max_processes + 1)
        if n != workers
    ]
    return serve


def main(
    backend: str = typer.Option("postgresql", help="postgresql, mariadb or sqlite"),
    cases: int = typer.Option(20_000, help="cases seeded before measuring"),
    workers: int = typer.Option(2, help="server processes when servers and loops are compared"),
    max_processes: int = typer.Option(4, help="process counts measured: 1 to this"),
    concurrency: int = typer.Option(32, help="connections kept busy by wrk"),
    seconds: int = typer.Option(10, help="length of one measurement"),
    repeat: int = typer.Option(3, help="rounds; the median is reported"),
) -> None:
    if shutil.which("wrk") is None:
        console.print("[red]wrk is not installed[/]: apt-get install -y wrk")
        raise typer.Exit(1)
    workdir = Path(tempfile.mkdtemp(prefix="casedesk-servers-"))
    database = f"casedesk_servers_{os.getpid()}"  # beside other benchmarks' databases
    seeded = seed(backend, cases, workdir, database, tenants=0)
    scenarios = [("detail", "read", "/"), ("create", "create", "/api/v1/cases")]
    chosen = configurations(workers, max_processes)
    results: dict[tuple[str, str], list[Result]] = {}
    try:
        with Progress(console=console) as progress:
            job = progress.add_task("measuring", total=len(chosen) * repeat)
            for _ in range(repeat):
                for configuration in chosen:
                    with running(
                        seeded.url,
                        configuration.processes,
                        workdir,
                        configuration.command,
                        configuration.env,
                    ) as base:
                        for _, script, path in scenarios:  # warm-up
                            _wrk(base, path, seeded.scripts[script], concurrency, 2)
                        for name, script, path in scenarios:
                            results.setdefault((configuration.name, name), []).append(
                                _wrk(base, path, seeded.scripts[script], concurrency, seconds)
                            )
                    progress.advance(job)
    finally:
        asyncio.run(drop_database(backend, database))
    table = Table(
        title=f"servers on {backend}, {cases:,} cases, 1 casedesk worker beside, wrk -c"
        f"{concurrency}, median of {repeat} rounds x {seconds}s"
    )
    table.add_column("configuration")
    for name, _, _ in scenarios:
        for column in ("req/s", "p50 ms", "p99 ms", "errors", "runs req/s"):
            table.add_column(f"{name} {column}", justify="right")
    for configuration in chosen:
        cells = []
        for name, _, _ in scenarios:
            runs = results[(configuration.name, name)]
            cells += [
                f"{statistics.median(r.rps for r in runs):,.1f}",
                f"{statistics.median(r.p50_ms for r in runs):,.1f}",
                f"{statistics.median(r.p99_ms for r in runs):,.1f}",
                str(sum(r.errors for r in runs)),
                " / ".join(f"{r.rps:,.0f}" for r in runs),
            ]
        table.add_row(configuration.name, *cells)
    console.print(table)


if __name__ == "__main__":
    typer.run(main)
