"""Workbench pages benchmark: the case page and the case list served to a signed-in agent,
beside the API's case read and list as the baseline, in the same run.

It seeds a fresh database with N cases (100,000 by default) as ``bench.cases`` does, starts
``casedesk serve`` as in production (PostgreSQL, several server processes, a worker beside
them), signs an agent in (a real session cookie, as a browser holds it) and drives with wrk:

- ``GET /api/v1/cases/{id}`` (baseline) against ``GET /app/cases/{number}``, random cases;
- ``GET /api/v1/cases?queue=support&state=open&limit=50`` (baseline) against
  ``GET /app/cases?view=open&queue=support&state=open`` (50 a page, with the sidebar's counts).

Each scenario runs ``--repeat`` times; the median of req/s, p50 and p99 is reported with the
bytes of a response and the ratio to its baseline.

    .venv/bin/python -m bench.pages
    .venv/bin/python -m bench.pages --backend sqlite --cases 20000 --workers 1
"""

from __future__ import annotations

import asyncio
import os
import random
import re
import shutil
import statistics
import subprocess
import tempfile
import uuid
from dataclasses import dataclass
from pathlib import Path

import typer
from rich.console import Console
from rich.progress import Progress
from rich.table import Table

from bench.cases import (
    LIST_PATH,
    _configure,
    _fresh_database,
    _seed_cases,
    _seed_identity,
    running,
)
from casedesk.activities import sign_in as signing
from casedesk.bootstrap import build
from casedesk.config import load_settings
from casedesk.domain.identity import passwords

console = Console(width=150)
os.environ.setdefault("CASEDESK_SECRET_KEY", "casedesk-benchmark-secret-key")
PASSWORD = "bench password 2026"
PAGE_LIST_PATH = "/app/cases?view=open&queue=support&state=open"


@dataclass
class Result:
    rps: float
    p50_ms: float
    p99_ms: float
    errors: int
    bytes_per_response: float


async def _session_of(url: str, tenant_id: uuid.UUID, agent_id: uuid.UUID) -> str:
    """A signed-in session of the agent: the cookie's value, as the sign-in page sets it."""
    container = build(load_settings(database_url=url))
    try:
        async with container.unit_of_work(tenant_id) as uow:
            await uow.begin_write()
            agent = await uow.users.get(agent_id)
            agent.password_hash = passwords.hash_password(PASSWORD)
            email = agent.email
            await uow.commit()
        async with container.unit_of_work() as uow:
            signed = await signing.sign_in(
                uow,
                workspace="bench",
                email=email,
                password=PASSWORD,
                user_agent="wrk",
                address="127.0.0.1",
            )
    finally:
        await container.close()
    return signed.token


_REPORT = """
done = function(summary, latency, requests)
  io.write(string.format("RESULT %f %f %f %d %d %d\\n", summary.requests / (summary.duration / 1e6),
    latency:percentile(50) / 1000, latency:percentile(99) / 1000,
    summary.errors.status + summary.errors.connect + summary.errors.read + summary.errors.write
    + summary.errors.timeout, summary.requests, summary.bytes))
end
"""


def _scripts(workdir: Path, key: str, cookie: str, ids: list[str]) -> dict[str, Path]:
    (workdir / "ids.txt").write_text("\n".join(ids))
    (workdir / "numbers.txt").write_text("\n".join(str(n) for n in range(1, len(ids) + 1)))
    api = f'wrk.headers["Authorization"] = "Bearer {key}"\n'
    page = f'wrk.headers["Cookie"] = "casedesk_session={cookie}"\n'

    def random_path(prefix: str, source: str) -> str:
        return (
            f'items = {{}}\nfor line in io.lines("{workdir / source}") do items[#items + 1] = line end\n'
            f'request = function()\n  return wrk.format("GET", "{prefix}" .. items[math.random(#items)])\nend\n'
        )

    bodies = {
        "api_read": api + random_path("/api/v1/cases/", "ids.txt"),
        "page_read": page + random_path("/app/cases/", "numbers.txt"),
        "api_list": api,
        "page_list": page,
    }
    paths = {}
    for name, body in bodies.items():
        path = workdir / f"{name}.lua"
        path.write_text(body + _REPORT)
        paths[name] = path
    return paths


def _wrk(base: str, path: str, script: Path, concurrency: int, seconds: int) -> Result:
    command = ["wrk", "-t2", f"-c{concurrency}", f"-d{seconds}s", "--timeout", "10s"]
    output = subprocess.run(
        [*command, "-s", str(script), base + path], capture_output=True, text=True, check=True
    ).stdout
    match = re.search(r"RESULT (\S+) (\S+) (\S+) (\d+) (\d+) (\d+)", output)
    if match is None:
        raise RuntimeError(f"wrk printed no result:\n{output}")
    rps, p50, p99, errors, requests, size = match.groups()
    return Result(
        float(rps), float(p50), float(p99), int(errors), int(size) / max(1, int(requests))
    )


def main(
    backend: str = typer.Option("postgresql", help="postgresql, mariadb or sqlite"),
    cases: int = typer.Option(100_000, help="cases seeded before measuring"),
    workers: int = typer.Option(2, help="server processes"),
    concurrency: int = typer.Option(16, help="connections kept busy by wrk"),
    seconds: int = typer.Option(10, help="length of one measurement"),
    repeat: int = typer.Option(3, help="measurements per scenario; the median is reported"),
) -> None:
    if shutil.which("wrk") is None:
        console.print(
            "[red]wrk is not installed[/]: apt-get install -y wrk (or `make bench-pages`)"
        )
        raise typer.Exit(1)
    workdir = Path(tempfile.mkdtemp(prefix="casedesk-bench-pages-"))
    url = asyncio.run(_fresh_database(backend, workdir))
    tenant_id, key, agents = asyncio.run(_seed_identity(url))
    with running(url, workers, workdir) as base:
        _configure(base, {"Authorization": f"Bearer {key}"})
        ids = asyncio.run(_seed_cases(url, tenant_id, agents, cases))
        cookie = asyncio.run(_session_of(url, tenant_id, random.Random(7).choice(agents)))
        scripts = _scripts(workdir, key, cookie, ids)
        scenarios = [
            ("GET /api/v1/cases/{id} (baseline)", "/", "api_read"),
            ("case page /app/cases/{number}", "/", "page_read"),
            ("GET /api/v1/cases?queue&state (baseline)", LIST_PATH, "api_list"),
            ("list page /app/cases?view&queue&state", PAGE_LIST_PATH, "page_list"),
        ]
        _wrk(base, "/", scripts["page_read"], concurrency, 2)  # warm-up
        results: dict[str, list[Result]] = {name: [] for name, _, _ in scenarios}
        with Progress(console=console) as progress:
            job = progress.add_task("measuring", total=len(scenarios) * repeat)
            for _ in range(repeat):
                for name, path, script in scenarios:
                    results[name].append(_wrk(base, path, scripts[script], concurrency, seconds))
                    progress.advance(job)
    _report(
        results,
        f"{backend}, {cases:,} cases, {workers} workers, concurrency {concurrency}",
        repeat,
        seconds,
    )


def _report(results: dict[str, list[Result]], setup: str, repeat: int, seconds: int) -> None:
    table = Table(title=f"casedesk workbench pages on {setup}, median of {repeat} x {seconds}s")
    for column in ("scenario", "req/s", "p50 ms", "p99 ms", "bytes", "errors", "vs baseline"):
        table.add_column(column, justify="right" if column != "scenario" else "left")
    baseline = 0.0
    for index, (name, runs) in enumerate(results.items()):
        rps = statistics.median(r.rps for r in runs)
        if index % 2 == 0:
            baseline = rps
        table.add_row(
            name,
            f"{rps:,.0f}",
            f"{statistics.median(r.p50_ms for r in runs):.1f}",
            f"{statistics.median(r.p99_ms for r in runs):.1f}",
            f"{statistics.median(r.bytes_per_response for r in runs):,.0f}",
            str(sum(r.errors for r in runs)),
            f"{rps / baseline:.2f}x",
        )
    console.print(table)


if __name__ == "__main__":
    typer.run(main)
