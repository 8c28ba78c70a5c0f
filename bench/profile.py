"""Profile one case API scenario under load: py-spy on the server, and its SQL statements.

It seeds a database as ``bench.cases`` does, starts ``casedesk serve`` the same way (with
``bench.statements`` counting every statement its processes send), drives one scenario with
wrk, and records the server's processes with py-spy meanwhile. It prints

- the scenario's req/s, p50 and p99 while profiled (py-spy samples without pausing the
  server, so the figures are close to an unprofiled run, though not the same);
- the statements and transactions per request, by the statement's first word and table,
  counted over ``--requests`` requests sent one at a time after the load;
- where the server's CPU time goes by package (casedesk.api, casedesk.store, sqlalchemy,
  pydantic, starlette+fastapi, asyncpg, uvicorn, …): "self" is the share of samples whose
  innermost frame is in the package, "in stack" the share with the package anywhere on the
  stack.

The raw collapsed stacks (open them in https://www.speedscope.app/ or flamegraph.pl) are kept
beside the figures; ``--flamegraph`` also records an SVG over a second run.

    .venv/bin/python -m bench.profile --scenario create            # or detail, list, healthz
    .venv/bin/python -m bench.profile --scenario detail --backend sqlite --workers 1
    make profile PROFILE_ARGS="--scenario list --cases 100000"
"""

from __future__ import annotations

import asyncio
import os
import random
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import httpx
import typer
from rich.table import Table

from bench import statements
from bench.cases import (
    CREATE_BODY,
    LIST_PATH,
    Result,
    _wrk,
    console,
    drop_database,
    running_server,
    seed,
)

SCENARIOS = {  # name: (wrk script of bench.cases, path)
    "create": ("create", "/api/v1/cases"),
    "detail": ("read", "/"),
    "list": ("list", LIST_PATH),
    "healthz": ("healthz", "/healthz"),
}
_GROUPS = {
    "starlette": "starlette+fastapi",
    "fastapi": "starlette+fastapi",
    "pydantic_core": "pydantic",
    "pydantic": "pydantic",
    "pydantic_settings": "pydantic",
    "uvloop": "uvicorn+uvloop+httptools",
    "uvicorn": "uvicorn+uvloop+httptools",
    "httptools": "uvicorn+uvloop+httptools",
    "jsonschema": "jsonschema",
    "jsonschema_specifications": "jsonschema",
    "referencing": "jsonschema",
    "rpds": "jsonschema",
}
_FRAME = re.compile(r"\((?P<path>[^()]*?)(?::\d+)?\)$")


def package(frame: str) -> str:
    """The package a py-spy frame (``function (path:line)``, full file names) belongs to:
    ``casedesk.<layer>`` for our code, a distribution's import name (a few grouped) for a
    library, ``asyncio``, ``stdlib`` or ``other``."""
    match = _FRAME.search(frame)
    if match is None:
        return "other"
    path = match["path"]
    if "/site-packages/" in path:
        top = path.split("/site-packages/", 1)[1].split("/", 1)[0].removesuffix(".py")
        return _GROUPS.get(top, top)
    if "/casedesk/" in path:
        rest = path.rsplit("/casedesk/", 1)[1]
        return "casedesk." + rest.split("/", 1)[0].removesuffix(".py")
    if re.search(r"/lib/python3\.\d+/", path):
        top = re.split(r"/lib/python3\.\d+/", path, maxsplit=1)[1].split("/", 1)[0]
        return "asyncio" if top == "asyncio" else "stdlib"
    return "other"


def breakdown(collapsed: str) -> tuple[int, Counter[str], Counter[str]]:
    """From py-spy's raw output (``frame;frame;… count`` a line, outermost first): the
    samples of the servers' event loops, and per package the samples whose innermost frame
    is in it (self) and the samples with it anywhere on the stack (in stack). Other threads
    (the statement counter's writer, executor threads) and uvicorn's supervising process
    are left out: only stacks under uvicorn's ``Server.run`` count."""
    total, own, anywhere = 0, Counter[str](), Counter[str]()
    for line in collapsed.splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit() or "/uvicorn/server.py" not in stack:
            continue
        samples = int(count)
        packages = [package(frame) for frame in stack.split(";")]
        known = [name for name in packages if name != "other"] or ["other"]
        total += samples
        own[known[-1]] += samples
        for name in set(known):
            anywhere[name] += samples
    return total, own, anywhere


def _request(http: httpx.Client, scenario: str, ids: list[str]) -> None:
    if scenario == "create":
        answer = http.post(
            "/api/v1/cases", content=CREATE_BODY, headers={"Content-Type": "application/json"}
        )
    elif scenario == "detail":
        answer = http.get(f"/api/v1/cases/{random.choice(ids)}")
    else:
        answer = http.get(SCENARIOS[scenario][1])
    answer.raise_for_status()


def _statements_per_request(
    base: str, key: str, scenario: str, ids: list[str], directory: Path, requests: int
) -> tuple[dict[str, float], float]:
    """Statements per request by head, and the time one request took alone (median ms)."""
    times = []
    with httpx.Client(base_url=base, headers={"Authorization": f"Bearer {key}"}) as http:
        _request(http, scenario, ids)
        time.sleep(0.5)
        before = statements.read(directory)
        for _ in range(requests):
            start = time.perf_counter()
            _request(http, scenario, ids)
            times.append((time.perf_counter() - start) * 1000)
        time.sleep(0.5)  # every process has written its counts since
        after = statements.read(directory)
    after.subtract(before)
    return {name: n / requests for name, n in after.items() if n > 0}, statistics.median(times)


def _recorded(pid: int, output: Path, form: str, load: Callable[[], None]) -> None:
    """py-spy on ``pid`` and its children while ``load()`` runs."""
    spy = subprocess.Popen(
        [
            str(Path(sys.executable).with_name("py-spy")),
            "record",
            "--pid",
            str(pid),
            "--subprocesses",
            "--full-filenames",
            "--nonblocking",
            "--rate",
            "100",
            "--format",
            form,
            "--output",
            str(output),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    time.sleep(1.5)  # py-spy attaches to every process first
    try:
        load()
    finally:
        spy.send_signal(signal.SIGINT)  # py-spy writes its file on Ctrl-C
        _, error = spy.communicate(timeout=60)
    if not output.exists():
        raise RuntimeError(f"py-spy wrote nothing: {error.decode()[-2000:]}")


def main(
    scenario: str = typer.Option("create", help="create, detail, list or healthz"),
    backend: str = typer.Option("postgresql", help="postgresql, mariadb or sqlite"),
    cases: int = typer.Option(20_000, help="cases seeded before measuring"),
    workers: int = typer.Option(2, help="server processes"),
    concurrency: int = typer.Option(32, help="connections kept busy by wrk"),
    seconds: int = typer.Option(20, help="length of the profiled run"),
    requests: int = typer.Option(20, help="requests sent one at a time to count statements"),
    output: Path = typer.Option(Path("profile"), help="folder for the profile's files"),
    flamegraph: bool = typer.Option(False, help="also record an SVG flame graph (a second run)"),
) -> None:
    if scenario not in SCENARIOS:
        raise typer.BadParameter(f"one of {', '.join(SCENARIOS)}", param_hint="--scenario")
    for tool in ("wrk", str(Path(sys.executable).with_name("py-spy"))):
        if shutil.which(tool) is None:
            console.print(
                f"[red]{tool} is missing[/]: apt-get install -y wrk; pip install '.[bench]'"
            )
            raise typer.Exit(1)
    output.mkdir(parents=True, exist_ok=True)
    workdir = Path(tempfile.mkdtemp(prefix="casedesk-profile-"))
    database = f"casedesk_profile_{os.getpid()}"  # beside other benchmarks' databases
    seeded = seed(backend, cases, workdir, database, tenants=0)
    counts = workdir / "statements"
    counts.mkdir()
    script, path = SCENARIOS[scenario]
    raw = output / f"{scenario}-{backend}.txt"
    results: list[Result] = []
    with running_server(
        seeded.url,
        workers,
        workdir,
        command=[sys.executable, "-m", "bench.statements"],
        extra_env={statements.DIRECTORY: str(counts)},
    ) as (base, server):

        def load() -> None:
            results.append(_wrk(base, path, seeded.scripts[script], concurrency, seconds))

        _wrk(base, path, seeded.scripts[script], concurrency, 3)  # warm-up
        console.print(f"profiling {scenario} on {backend} for {seconds}s with py-spy…")
        _recorded(server.pid, raw, "raw", load)
        if flamegraph:
            _recorded(server.pid, output / f"{scenario}-{backend}.svg", "flamegraph", load)
        per_request, alone_ms = _statements_per_request(
            base, seeded.key, scenario, seeded.ids, counts, requests
        )
    asyncio.run(drop_database(backend, database))
    _report(scenario, backend, cases, workers, concurrency, results[0], per_request, alone_ms)
    _report_breakdown(raw.read_text())
    console.print(f"collapsed stacks: {raw} (speedscope.app or flamegraph.pl open them)")


def _report(
    scenario: str,
    backend: str,
    cases: int,
    workers: int,
    concurrency: int,
    result: Result,
    per_request: dict[str, float],
    alone_ms: float,
) -> None:
    console.print(
        f"[bold]{scenario}[/] on {backend}, {cases:,} cases, {workers} server processes, "
        f"wrk -c{concurrency} under py-spy: {result.rps:,.0f} req/s, p50 {result.p50_ms:.1f} ms, "
        f"p99 {result.p99_ms:.1f} ms, {result.errors} errors; one request alone "
        f"{alone_ms:.1f} ms (median)"
    )
    table = Table(title="SQL per request (requests one at a time)")
    table.add_column("statement")
    table.add_column("per request", justify="right")
    transactions = per_request.pop(statements.TRANSACTIONS, 0.0)
    for name, count in sorted(per_request.items(), key=lambda item: (-item[1], item[0])):
        table.add_row(name, f"{count:.2f}")
    table.add_row("[bold]statements[/]", f"[bold]{sum(per_request.values()):.2f}[/]")
    table.add_row("[bold]transactions[/]", f"[bold]{transactions:.2f}[/]")
    console.print(table)


def _report_breakdown(collapsed: str, rows: int = 16) -> None:
    total, own, anywhere = breakdown(collapsed)
    table = Table(title=f"server CPU by package ({total:,} samples of the event loops)")
    for column in ("package", "self %", "in stack %"):
        table.add_column(column, justify="left" if column == "package" else "right")
    for name, samples in own.most_common(rows):
        table.add_row(name, f"{100 * samples / total:.1f}", f"{100 * anywhere[name] / total:.1f}")
    console.print(table)


if __name__ == "__main__":
    typer.run(main)
