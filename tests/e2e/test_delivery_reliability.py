"""Reliability of event delivery with real worker processes.

On PostgreSQL and MariaDB the workers use RabbitMQ (a namespace of their own per test); on
SQLite the in-process bus. A rule comments on every new case; whatever happens to the
workers, every case ends with exactly one such comment. Webhooks to a slow receiver are
sent once per attempt, however the workers share the jobs.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager

import httpx
import pytest
from sqlalchemy import text

from casedesk.store.database import nullpool_engine
from tests.e2e.test_cli_and_server import _env, served
from tests.e2e.test_worker import _demo_key, _setup, _unpublished
from tests.support.backends import ScratchDatabase
from tests.support.http_server import Reply, local_http_server
from tests.support.services import drop_broker_namespace, require_broker

pytestmark = pytest.mark.e2e


@pytest.fixture
async def worker_env(backend: str) -> AsyncIterator[dict[str, str]]:
    if backend == "sqlite":
        yield {}
        return
    broker = await require_broker()
    namespace = f"test-{uuid.uuid4().hex[:10]}"
    yield {"CASEDESK_BROKER_URL": broker, "CASEDESK_BROKER_NAMESPACE": namespace}
    await drop_broker_namespace(broker, namespace)


@contextmanager
def workers(url: str, count: int, env: dict[str, str]) -> Iterator[list[subprocess.Popen[str]]]:
    started = [
        subprocess.Popen(
            [sys.executable, "-m", "casedesk", "worker"],
            env=_env(url, **env),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        for _ in range(count)
    ]
    try:
        yield started
    finally:
        for process in started:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        stuck = []
        for process in started:
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
                stuck.append(process.pid)
        assert not stuck, f"workers {stuck} did not stop within 30 s of SIGTERM"


def _comments_per_case(http: httpx.Client, ids: list[str]) -> list[int]:
    counts = []
    for case_id in ids:
        comments = http.get(f"/api/v1/cases/{case_id}").json()["comments"]
        counts.append(sum(1 for c in comments if c["body"] == "auto"))
    return counts


async def _wait_for_exactly_once(url: str, http: httpx.Client, ids: list[str]) -> None:
    deadline = time.monotonic() + 60
    while True:
        counts = _comments_per_case(http, ids)
        if await _unpublished(url) == 0 and all(c >= 1 for c in counts):
            break
        if time.monotonic() > deadline:
            pytest.fail(f"not every case was handled: {counts}")
        time.sleep(0.2)
    time.sleep(1.0)  # give any duplicate delivery the time to show
    assert _comments_per_case(http, ids) == [1] * len(ids)


def _rule(http: httpx.Client) -> None:
    http.post(
        "/api/v1/rules",
        json={
            "name": "auto",
            "on": ["case.created"],
            "actions": [{"type": "add_comment", "body": "auto"}],
        },
    ).raise_for_status()


async def test_two_workers_never_run_a_rule_twice(
    empty_database: ScratchDatabase, worker_env: dict[str, str]
) -> None:
    url = empty_database.url
    key = _demo_key(url)
    with served(url, CASEDESK_SEPARATE_WORKERS="true", **worker_env) as base:
        http = _setup(base, key)
        _rule(http)
        with workers(url, 2, worker_env):
            ids = [
                http.post("/api/v1/cases", json={"template": "q", "title": f"c{n}"}).json()["id"]
                for n in range(30)
            ]
            await _wait_for_exactly_once(url, http, ids)


async def test_a_killed_worker_loses_and_repeats_nothing(
    empty_database: ScratchDatabase, worker_env: dict[str, str]
) -> None:
    url = empty_database.url
    key = _demo_key(url)
    with served(url, CASEDESK_SEPARATE_WORKERS="true", **worker_env) as base:
        http = _setup(base, key)
        _rule(http)
        with workers(url, 1, worker_env) as (first,):
            ids = [
                http.post("/api/v1/cases", json={"template": "q", "title": f"c{n}"}).json()["id"]
                for n in range(40)
            ]
            deadline = time.monotonic() + 30
            while sum(_comments_per_case(http, ids[:10])) == 0:
                if time.monotonic() > deadline:
                    pytest.fail("the first worker did not start working")
                time.sleep(0.05)
            os.kill(first.pid, signal.SIGKILL)
            first.wait(timeout=10)
        with workers(url, 1, worker_env):
            await _wait_for_exactly_once(url, http, ids)


async def _attempts_made(url: str) -> dict[str, tuple[str, list[int]]]:
    """Each delivery's id → its status and the numbers of its recorded attempts."""
    engine = nullpool_engine(url)
    try:
        async with asyncio.timeout(30), engine.connect() as connection:
            rows = (
                await connection.execute(
                    text(
                        "SELECT d.id, d.status, a.number FROM webhook_deliveries d"
                        " LEFT JOIN webhook_attempts a ON a.delivery_id = d.id"
                        " ORDER BY d.id, a.number"
                    )
                )
            ).all()
    finally:
        await engine.dispose()
    made: dict[str, tuple[str, list[int]]] = {}
    for delivery_id, status, number in rows:
        numbers = made.setdefault(str(delivery_id), (status, []))[1]
        if number is not None:
            numbers.append(number)
    return made


async def test_two_workers_make_every_webhook_attempt_exactly_once(
    empty_database: ScratchDatabase, worker_env: dict[str, str]
) -> None:
    """A case goes to six webhooks of a slow receiver that refuses each one's first attempt:
    an attempt takes most of a (short) job lease, so the workers hold batches of jobs longer
    than a lease, and every delivery needs a second attempt. Each attempt arrives once."""
    url = empty_database.url
    key = _demo_key(url)
    hooks = 6
    outbound = {"CASEDESK_OUTBOUND_ALLOWED_NETWORKS": "127.0.0.0/8"}
    env = worker_env | outbound | {"CASEDESK_JOB_LEASE_SECONDS": "2"}
    async with local_http_server() as receiver:
        paths = [f"/in/{n}" for n in range(hooks)]
        for path in paths:
            receiver.script(path, Reply(503, delay=1.2), Reply(200, delay=1.2))
        with served(url, CASEDESK_SEPARATE_WORKERS="true", **env) as base:
            http = _setup(base, key)
            for path in paths:
                http.post(
                    "/api/v1/webhooks",
                    json={"name": path, "url": receiver.url + path, "events": ["case.created"]},
                ).raise_for_status()
            http.post("/api/v1/cases", json={"template": "q", "title": "t"}).raise_for_status()
            with workers(url, 2, env):
                deadline = time.monotonic() + 90
                while True:
                    made = await _attempts_made(url)
                    statuses = [status for status, _ in made.values()]
                    if len(made) == hooks and set(statuses) == {"succeeded"}:
                        break
                    if time.monotonic() > deadline:
                        pytest.fail(f"the deliveries did not finish: {made}")
                    await asyncio.sleep(0.2)
                await asyncio.sleep(2.0)  # give a duplicate attempt the time to arrive
    assert [len(receiver.requests_to(path)) for path in paths] == [2] * hooks
    assert len({request.headers["webhook-id"] for request in receiver.received}) == 1
    made = await _attempts_made(url)
    assert [numbers for _, numbers in made.values()] == [[1, 2]] * hooks
