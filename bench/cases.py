"""Case API benchmark: create, read and filtered list over HTTP against a real server.

It makes a fresh database, seeds it with N cases, starts ``casedesk serve`` the way the
README runs it in production (PostgreSQL, several server processes, the event relay and
automation in a ``casedesk worker`` beside them), and drives it with wrk at a
fixed concurrency. ``GET /healthz`` is measured in the same run as the baseline: the cost
of the HTTP stack alone. Every scenario runs ``--repeat`` times; the median is reported.

    .venv/bin/python -m bench.cases                 # PostgreSQL, 100,000 cases
    .venv/bin/python -m bench.cases --backend sqlite --cases 20000 --workers 1
"""

from __future__ import annotations

import asyncio
import os
import random
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import typer
from rich.console import Console
from rich.progress import Progress
from rich.table import Table
from sqlalchemy import insert, text, update
from sqlalchemy.engine import make_url

from casedesk.activities import identity
from casedesk.bootstrap import build
from casedesk.config import load_settings
from casedesk.domain.identity.roles import Role
from casedesk.kit.ids import uuid7
from casedesk.store import migrate
from casedesk.store.cases import CaseFilter
from casedesk.store.database import nullpool_engine
from casedesk.store.models import Case, CaseCounter, Comment, Customer, Task

console = Console(width=150)
# Benchmarks run on database servers, where casedesk refuses its default key.
os.environ.setdefault("CASEDESK_SECRET_KEY", "casedesk-benchmark-secret-key")
ADMIN_URLS = {
    "postgresql": os.environ.get("BENCH_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test"),
    "mariadb": os.environ.get("BENCH_MARIADB_URL", "mysql://root@127.0.0.1:3306/test"),
}
MACHINE = {
    "code": "basic",
    "name": "Basic",
    "states": [
        {"code": "new", "name": "New", "type": "start"},
        {"code": "open", "name": "Open", "type": "normal"},
        {"code": "waiting", "name": "Waiting", "type": "pending"},
        {"code": "solved", "name": "Solved", "type": "end"},
    ],
    "transitions": [
        {"action": "start", "name": "Start", "from": "new", "to": "open"},
        {"action": "wait", "name": "Wait", "from": "open", "to": "waiting"},
        {"action": "resume", "name": "Resume", "from": "waiting", "to": "open"},
        {"action": "close", "name": "Close", "from": "open", "to": "solved"},
        {"action": "reopen", "name": "Reopen", "from": "solved", "to": "open", "reopen": True},
    ],
}
CREATE_BODY = (
    '{"template": "question", "title": "Printer on fire", "description": "It smokes.",'
    ' "customer": {"email": "bench@example.com", "name": "Bench"},'
    ' "form": {"product": "P-100", "quantity": 2}, "tags": ["hardware"]}'
)
LIST_PATH = "/api/v1/cases?queue=support&state=open&limit=50"


@dataclass(frozen=True)
class CaseText:
    """The words of one seeded case: its title, description and comments (public)."""

    title: str
    description: str | None = None
    comments: tuple[str, ...] = ()


@dataclass
class Result:
    rps: float
    p50_ms: float
    p99_ms: float
    errors: int


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def _fresh_database(backend: str, workdir: Path, name: str = "casedesk_bench") -> str:
    if backend == "sqlite":
        return f"sqlite+aiosqlite:///{workdir / 'bench.db'}"
    admin = load_settings(database_url=ADMIN_URLS[backend]).database_url
    engine = nullpool_engine(admin)
    async with engine.connect() as connection:
        await connection.execution_options(isolation_level="AUTOCOMMIT")
        await connection.execute(text(f"DROP DATABASE IF EXISTS {name}"))
        await connection.execute(text(f"CREATE DATABASE {name}"))
    await engine.dispose()
    return make_url(admin).set(database=name).render_as_string(hide_password=False)


async def drop_database(backend: str, name: str) -> None:
    """Drop a database ``_fresh_database`` made on a server (a SQLite file goes with its
    folder)."""
    if backend == "sqlite":
        return
    engine = nullpool_engine(load_settings(database_url=ADMIN_URLS[backend]).database_url)
    async with engine.connect() as connection:
        await connection.execution_options(isolation_level="AUTOCOMMIT")
        await connection.execute(text(f"DROP DATABASE IF EXISTS {name}"))
    await engine.dispose()


async def _tenant_key(url: str, slug: str) -> str:
    """A further tenant with an admin key, for the many-tenants scenario."""
    container = build(load_settings(database_url=url))
    try:
        async with container.unit_of_work() as uow:
            tenant = await identity.create_tenant(uow, slug=slug, name=slug, edition="standard")
        async with container.unit_of_work(tenant.id) as uow:
            admin = await identity.create_user(
                uow, None, email=f"admin@{slug}.io", name="Admin", role=Role.ADMIN
            )
        async with container.unit_of_work(tenant.id) as uow:
            key = await identity.create_api_key(uow, None, name="bench", user_id=admin.id)
    finally:
        await container.close()
    return key.plaintext


async def _seed_identity(url: str) -> tuple[uuid.UUID, str, list[uuid.UUID]]:
    container = build(load_settings(database_url=url))
    try:
        await migrate.upgrade(container.database.engine)
        async with container.unit_of_work() as uow:
            tenant = await identity.create_tenant(
                uow, slug="bench", name="Bench", edition="standard"
            )
        async with container.unit_of_work(tenant.id) as uow:
            admin = await identity.create_user(
                uow, None, email="admin@bench.io", name="Admin", role=Role.ADMIN
            )
        agents = []
        for n in range(5):
            async with container.unit_of_work(tenant.id) as uow:
                agent = await identity.create_user(
                    uow, None, email=f"agent{n}@bench.io", name=f"Agent {n}", role=Role.AGENT
                )
                agents.append(agent.id)
        async with container.unit_of_work(tenant.id) as uow:
            key = await identity.create_api_key(uow, None, name="bench", user_id=admin.id)
    finally:
        await container.close()
    return tenant.id, key.plaintext, agents


def _configure(base: str, headers: dict[str, str]) -> None:
    with httpx.Client(base_url=base, headers=headers, timeout=30) as http:
        for code in ("support", "billing"):
            http.post("/api/v1/queues", json={"code": code, "name": code}).raise_for_status()
        http.post("/api/v1/state-machines", json=MACHINE).raise_for_status()
        http.post("/api/v1/state-machines/basic/publish").raise_for_status()
        http.post(
            "/api/v1/templates",
            json={
                "code": "question",
                "name": "Question",
                "state_machine": "basic",
                "default_queue": "support",
                "form_schema": {
                    "type": "object",
                    "properties": {
                        "product": {"type": "string"},
                        "quantity": {"type": "integer", "minimum": 1},
                    },
                },
            },
        ).raise_for_status()
        created = http.post(
            "/api/v1/cases", content=CREATE_BODY, headers={"Content-Type": "application/json"}
        )
        created.raise_for_status()


async def _seed_cases(
    url: str,
    tenant_id: uuid.UUID,
    agents: list[uuid.UUID],
    count: int,
    texts: Callable[[int], CaseText] | None = None,
) -> list[str]:
    """Bulk-insert ``count`` cases with their tasks, spread over states, queues and people;
    ``texts`` gives the n-th case (from 0) its title, description and comments."""
    container = build(load_settings(database_url=url))
    rng = random.Random(7)
    ids: list[str] = []
    try:
        async with container.unit_of_work(tenant_id) as uow:
            await uow.begin_write()  # it writes after reading: on SQLite, BEGIN IMMEDIATE
            template = (await uow.templates.all())[0]
            queues = await uow.queues.all()
            existing = await uow.cases.list_page(
                CaseFilter(), sort="-created", limit=1, cursor=None
            )
            machine_version_id = existing.items[0].machine_version_id
            customers = [
                uow.customers.add(Customer(id=uuid7(), email=f"c{n}@customers.io", name=f"C{n}"))
                for n in range(1000)
            ]
            await uow.commit()
        session_factory = container.database
        states = (
            [("new", False)] * 3
            + [("open", False)] * 4
            + [("waiting", False)] * 2
            + [("solved", True)] * 3
        )
        start = datetime.now(UTC) - timedelta(days=365)
        batch = 2000
        number = 1
        with Progress(console=console) as progress:
            job = progress.add_task(f"seeding {count:,} cases", total=count)
            for offset in range(0, count, batch):
                rows, tasks = [], []
                comments: list[dict[str, object]] = []
                for _ in range(min(batch, count - offset)):
                    number += 1
                    words = texts(number - 2) if texts else CaseText(f"Seeded case {number}")
                    state, closed = rng.choice(states)
                    case_id = uuid7()
                    queue = rng.choice(queues)
                    assignee = rng.choice([*agents, None])
                    created = start + timedelta(seconds=number * 300)
                    rows.append(
                        {
                            "id": case_id,
                            "tenant_id": tenant_id,
                            "number": number,
                            "template_id": template.id,
                            "machine_version_id": machine_version_id,
                            "state": state,
                            "closed": closed,
                            "title": words.title,
                            "description": words.description,
                            "priority": rng.choice([0, 1, 1, 1, 2, 3]),
                            "queue_id": queue.id,
                            "assignee_id": assignee,
                            "customer_id": rng.choice(customers).id,
                            "channel": "email",
                            "external_ref": None,
                            "parent_id": None,
                            "form": {"product": f"P-{rng.randint(1, 500)}", "quantity": 1},
                            "tags": [],
                            "version": 1,
                            "created_at": created,
                            "updated_at": created,
                            "closed_at": created if closed else None,
                            "rating_score": None,
                            "rating_comment": None,
                            "rated_at": None,
                        }
                    )
                    tasks.append(
                        {
                            "id": uuid7(),
                            "tenant_id": tenant_id,
                            "case_id": case_id,
                            "queue_id": queue.id,
                            "assignee_id": assignee,
                            "status": "done" if closed else "pending",
                            "status_before_close": None,
                            "accepted_at": None,
                            "done_at": created if closed else None,
                            "created_at": created,
                            "updated_at": created,
                        }
                    )
                    comments.extend(
                        {
                            "id": uuid7(),
                            "tenant_id": tenant_id,
                            "case_id": case_id,
                            "body": body,
                            "public": True,
                            "author_type": "user",
                            "author_id": assignee,
                            "created_at": created + timedelta(minutes=n + 1),
                        }
                        for n, body in enumerate(words.comments)
                    )
                    ids.append(str(case_id))
                async with session_factory.engine.begin() as connection:
                    await connection.execute(insert(Case), rows)
                    await connection.execute(insert(Task), tasks)
                    if comments:
                        await connection.execute(insert(Comment), comments)
                progress.advance(job, len(rows))
        async with container.database.engine.begin() as connection:
            await connection.execute(
                update(CaseCounter)
                .where(CaseCounter.tenant_id == tenant_id)
                .values(last_number=number)
            )
            if connection.dialect.name == "postgresql":
                await connection.execute(text("ANALYZE"))
    finally:
        await container.close()
    return ids


@dataclass
class Seeded:
    """A database seeded for the case API scenarios, and the wrk scripts that drive them."""

    url: str
    key: str
    ids: list[str]
    other_keys: list[str]
    scripts: dict[str, Path]


def seed(
    backend: str,
    cases: int,
    workdir: Path,
    database: str = "casedesk_bench",
    tenants: int = 8,
    texts: Callable[[int], CaseText] | None = None,
) -> Seeded:
    """A fresh database with the bench tenant, its ``cases`` (their words from ``texts``)
    and ``tenants`` further tenants (configured through the API of a server started for
    it), and the wrk scripts."""
    url = asyncio.run(_fresh_database(backend, workdir, database))
    tenant_id, key, agents = asyncio.run(_seed_identity(url))
    with running(url, 1, workdir) as base:
        _configure(base, {"Authorization": f"Bearer {key}"})
        other_keys = [asyncio.run(_tenant_key(url, f"bench-{n}")) for n in range(tenants)]
        for other in other_keys:
            _configure(base, {"Authorization": f"Bearer {other}"})
    ids = asyncio.run(_seed_cases(url, tenant_id, agents, cases, texts))
    return Seeded(url, key, ids, other_keys, _lua(workdir, key, ids, other_keys))


def _lua(workdir: Path, key: str, ids: list[str], other_keys: list[str]) -> dict[str, Path]:
    auth = f'wrk.headers["Authorization"] = "Bearer {key}"\n'
    (workdir / "ids.txt").write_text("\n".join(ids))
    scripts = {
        "healthz": "",
        "create": auth
        + 'wrk.method = "POST"\nwrk.headers["Content-Type"] = "application/json"\n'
        + f"wrk.body = [[{CREATE_BODY}]]\n",
        "read": auth
        + f'ids = {{}}\nfor line in io.lines("{workdir / "ids.txt"}") do ids[#ids + 1] = line end\n'
        + 'request = function()\n  return wrk.format("GET", "/api/v1/cases/" .. ids[math.random(#ids)])\nend\n',
        "list": auth,
        "create_many": 'wrk.method = "POST"\nwrk.headers["Content-Type"] = "application/json"\n'
        + f"wrk.body = [[{CREATE_BODY}]]\n"
        + "keys = {"
        + ", ".join(f'"{k}"' for k in other_keys)
        + "}\n"
        + "counter = 0\nrequest = function()\n  counter = counter + 1\n"
        + '  wrk.headers["Authorization"] = "Bearer " .. keys[counter % #keys + 1]\n'
        + "  return wrk.format()\nend\n",
    }
    paths = {}
    for name, body in scripts.items():
        path = workdir / f"{name}.lua"
        path.write_text(body + _REPORT)
        paths[name] = path
    return paths


_REPORT = """
done = function(summary, latency, requests)
  io.write(string.format("RESULT %f %f %f %d %d\\n", summary.requests / (summary.duration / 1e6),
    latency:percentile(50) / 1000, latency:percentile(99) / 1000,
    summary.errors.status + summary.errors.connect + summary.errors.read + summary.errors.write
    + summary.errors.timeout, summary.requests))
end
"""


def _wrk(
    base: str, path: str, script: Path, concurrency: int, seconds: int, timeout: int = 10
) -> Result:
    command = [
        "wrk",
        f"-t{min(2, concurrency)}",  # wrk needs a connection per thread
        f"-c{concurrency}",
        f"-d{seconds}s",
        "--timeout",
        f"{timeout}s",
        "-s",
        str(script),
        base + path,
    ]
    output = subprocess.run(command, capture_output=True, text=True, check=True).stdout
    match = re.search(r"RESULT (\S+) (\S+) (\S+) (\d+) (\d+)", output)
    if match is None:
        raise RuntimeError(f"wrk printed no result:\n{output}")
    rps, p50, p99, errors, _ = match.groups()
    return Result(float(rps), float(p50), float(p99), int(errors))


def _serve(
    url: str,
    port: int,
    workers: int,
    log: Path,
    command: list[str] | None = None,
    extra_env: dict[str, str] | None = None,
) -> subprocess.Popen[bytes]:
    """``casedesk serve`` (or ``command``, given the port and the process count after it)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("CASEDESK_")}
    env.update(
        CASEDESK_DATABASE_URL=url,
        CASEDESK_SECRET_KEY=os.environ["CASEDESK_SECRET_KEY"],
        CASEDESK_DATABASE_POOL_SIZE="16",
        CASEDESK_SEPARATE_WORKERS="true",
    )
    env.update(extra_env or {})
    process = subprocess.Popen(
        [
            *(command or [sys.executable, "-m", "casedesk", "serve"]),
            "--port",
            str(port),
            "--workers",
            str(workers),
        ],
        env=env,
        stdout=log.open("wb"),
        stderr=subprocess.STDOUT,
        start_new_session=True,  # its server processes can be stopped with it, as a group
    )
    # Each server process imports the whole app: on a busy machine that takes a while.
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline and process.poll() is None:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                return process
        except httpx.TransportError:
            time.sleep(0.2)
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGKILL)
    raise RuntimeError(f"casedesk serve did not start; see {log}")


@contextmanager
def running(
    url: str,
    workers: int,
    workdir: Path,
    command: list[str] | None = None,
    extra_env: dict[str, str] | None = None,
) -> Iterator[str]:
    """``casedesk serve`` with ``workers`` processes and, as in production, the event relay
    and automation in a ``casedesk worker`` beside them; the base URL while they run."""
    with running_server(url, workers, workdir, command, extra_env) as (base, _):
        yield base


@contextmanager
def running_server(
    url: str,
    workers: int,
    workdir: Path,
    command: list[str] | None = None,
    extra_env: dict[str, str] | None = None,
) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    """As :func:`running`, with the server's process too (for a profiler to attach to);
    ``command`` and ``extra_env`` start the server another way (another ASGI server, a
    statement counter) with the same worker beside it."""
    port = _free_port()
    server = _serve(url, port, workers, workdir / "server.log", command, extra_env)
    worker_env = {k: v for k, v in os.environ.items() if not k.startswith("CASEDESK_")}
    worker_env.update(
        CASEDESK_DATABASE_URL=url, CASEDESK_SECRET_KEY=os.environ["CASEDESK_SECRET_KEY"]
    )
    worker = subprocess.Popen(
        [sys.executable, "-m", "casedesk", "worker"],
        env=worker_env,
        stdout=(workdir / "worker.log").open("wb"),
        stderr=subprocess.STDOUT,
    )
    try:
        yield f"http://127.0.0.1:{port}", server
    finally:
        for process in (server, worker):
            process.send_signal(signal.SIGTERM)
        server.wait(timeout=30)
        worker.wait(timeout=30)


def main(
    backend: str = typer.Option("postgresql", help="postgresql, mariadb or sqlite"),
    cases: int = typer.Option(100_000, help="cases seeded before measuring"),
    workers: int = typer.Option(2, help="server processes"),
    concurrency: int = typer.Option(32, help="connections kept busy by wrk"),
    seconds: int = typer.Option(10, help="length of one measurement"),
    repeat: int = typer.Option(3, help="measurements per scenario; the median is reported"),
) -> None:
    if shutil.which("wrk") is None:
        console.print("[red]wrk is not installed[/]: apt-get install -y wrk (or `make bench`)")
        raise typer.Exit(1)
    workdir = Path(tempfile.mkdtemp(prefix="casedesk-bench-"))
    url = asyncio.run(_fresh_database(backend, workdir))
    tenant_id, key, agents = asyncio.run(_seed_identity(url))
    with running(url, workers, workdir) as base:
        _configure(base, {"Authorization": f"Bearer {key}"})
        other_keys = [asyncio.run(_tenant_key(url, f"bench-{n}")) for n in range(8)]
        for other in other_keys:
            _configure(base, {"Authorization": f"Bearer {other}"})
        ids = asyncio.run(_seed_cases(url, tenant_id, agents, cases))
        scripts = _lua(workdir, key, ids, other_keys)
        scenarios = [
            ("GET /healthz (baseline)", "/healthz", "healthz"),
            ("POST /api/v1/cases", "/api/v1/cases", "create"),
            ("POST /api/v1/cases, 8 tenants", "/api/v1/cases", "create_many"),
            ("GET /api/v1/cases/{id}", "/", "read"),
            ("GET /api/v1/cases?queue&state", LIST_PATH, "list"),
        ]
        _wrk(base, "/healthz", scripts["healthz"], concurrency, 2)  # warm-up
        results: dict[str, list[Result]] = {name: [] for name, _, _ in scenarios}
        with Progress(console=console) as progress:
            job = progress.add_task("measuring", total=len(scenarios) * repeat)
            for _ in range(repeat):
                for name, path, script in scenarios:
                    results[name].append(_wrk(base, path, scripts[script], concurrency, seconds))
                    progress.advance(job)
    _report(results, backend, cases, workers, concurrency, seconds, repeat)


def _report(
    results: dict[str, list[Result]],
    backend: str,
    cases: int,
    workers: int,
    concurrency: int,
    seconds: int,
    repeat: int,
) -> None:
    table = Table(
        title=f"casedesk case API on {backend}, {cases:,} cases, {workers} workers, "
        f"concurrency {concurrency}, median of {repeat} x {seconds}s"
    )
    for column in ("scenario", "req/s", "p50 ms", "p99 ms", "errors", "vs baseline", "runs req/s"):
        table.add_column(column, justify="right" if column != "scenario" else "left")
    baseline = statistics.median(r.rps for r in next(iter(results.values())))
    for name, runs in results.items():
        rps = statistics.median(r.rps for r in runs)
        table.add_row(
            name,
            f"{rps:,.0f}",
            f"{statistics.median(r.p50_ms for r in runs):.1f}",
            f"{statistics.median(r.p99_ms for r in runs):.1f}",
            str(sum(r.errors for r in runs)),
            f"{rps / baseline:.2f}x",
            " / ".join(f"{r.rps:,.0f}" for r in runs),
        )
    console.print(table)


if __name__ == "__main__":
    typer.run(main)
