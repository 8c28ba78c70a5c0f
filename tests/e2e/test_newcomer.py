"""A newcomer's first steps, as the README gives them, and the HTTP edges a real server has.

``make run`` is run as it is (with the set-up step taken as done), on a fresh database and a
port other than 8000; then the README's shell blocks are run exactly as written, taken out of
the README, so this test breaks when the README and the product drift apart.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import httpx
import pytest

from tests.support.backends import TEST_SECRET_KEY, ScratchDatabase
from tests.support.servers import log_of, wait_until_serving

pytestmark = pytest.mark.e2e
ROOT = Path(__file__).resolve().parents[2]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = int(sock.getsockname()[1])
    assert port != 8000
    return port


def _env(database_url: str, port: int) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CASEDESK_")}
    env.update(CASEDESK_DATABASE_URL=database_url, CASEDESK_PORT=str(port))
    if not database_url.startswith("sqlite"):
        # A database server needs a key of its own; the embedded default runs without one.
        env["CASEDESK_SECRET_KEY"] = TEST_SECRET_KEY
    return env


@dataclass
class Running:
    base: str
    output: IO[str]

    def log(self) -> str:
        return log_of(self.output)


@contextmanager
def running(command: list[str], env: dict[str, str], port: int) -> Iterator[Running]:
    """A server process (and its children) until the block ends; its output in a file."""
    output = tempfile.TemporaryFile(mode="w+")  # noqa: SIM115 - closed after the process ends
    process = subprocess.Popen(
        command,
        cwd=ROOT,
        env=env,
        stdout=output,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,  # make and the server it starts are stopped together
    )
    server = Running(f"http://127.0.0.1:{port}", output)
    try:
        wait_until_serving(process, server.base, output)
        yield server
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            raise
        output.close()


def _readme_blocks_using_the_key() -> list[str]:
    readme = (ROOT / "README.md").read_text()
    blocks = re.findall(r"```sh\n(.*?)```", readme, flags=re.DOTALL)
    chosen = [block for block in blocks if "$KEY" in block]
    assert len(chosen) >= 3, (
        "the README should show calling /me, making a first case and a first workflow"
    )
    return chosen


def _documents(output: str) -> list[Any]:
    """The JSON documents curl printed one after another."""
    decoder, documents, at = json.JSONDecoder(), [], 0
    while at < len(output):
        if output[at].isspace():
            at += 1
            continue
        document, at = decoder.raw_decode(output, at)
        documents.append(document)
    return documents


# `make run` serves the embedded default; the storage under it is tested on every backend.
@pytest.mark.backends("sqlite")
async def test_make_run_then_the_readme_first_case_works_on_another_port(
    empty_database: ScratchDatabase,
) -> None:
    if shutil.which("curl") is None or shutil.which("make") is None:
        pytest.fail("the README's path needs curl and make on the PATH")
    port = _free_port()
    env = _env(empty_database.url, port)
    make_run = ["make", "--no-print-directory", "-o", ".venv/.run-deps", "run"]
    with running(make_run, env, port) as server:
        printed = server.log()
        export = next(
            line.strip() for line in printed.splitlines() if line.strip().startswith("export KEY=")
        )
        hints = [line for line in printed.splitlines() if "http://" in line]
        assert hints
        assert all(f":{port}" in line and ":8000" not in line for line in hints), hints

        # The first run ended with the workbench and the link that sets the admin's password.
        assert re.search(rf"workbench: http://127\.0\.0\.1:{port}/ .*workspace demo", printed)
        link = re.search(rf"(http://127\.0\.0\.1:{port}/set-password/\S+)", printed)
        assert link is not None, printed
        welcome = httpx.get(link[1])
        assert welcome.status_code == 200
        assert "Welcome to Demo" in welcome.text

        answers_of: dict[str, list[Any]] = {}
        for block in _readme_blocks_using_the_key():
            done = subprocess.run(
                ["bash", "-c", f"{export}\n{block}"],
                env=env,
                capture_output=True,
                text=True,
                timeout=90,
                check=False,
            )
            assert done.returncode == 0, done.stderr
            answers = _documents(done.stdout)
            assert answers, done.stderr
            failed = [a for a in answers if isinstance(a.get("status"), int) and a["status"] >= 400]
            assert failed == [], failed
            answers_of[block] = answers
        first_case = next(a for b, a in answers_of.items() if "$API/cases -d" in b)[-1]
        assert (first_case["number"], first_case["state"], first_case["title"]) == (
            1,
            "new",
            "Printer on fire",
        )
        # The workflow example: one delivery, sent twice, made one execution and one case.
        runs = next(a for b, a in answers_of.items() if "/workflows" in b)[-1]["items"]
        assert [run["status"] for run in runs] == ["succeeded"], runs
        key = export.split("=", 1)[1].strip().strip("'\"")
        listed = httpx.get(
            f"{server.base}/api/v1/cases", headers={"Authorization": f"Bearer {key}"}
        ).json()["items"]
        assert sorted(case["title"] for case in listed) == ["Kettle leaks", "Printer on fire"]

        # A second `make run` runs the same demo step: it says how to make a new key, as a
        # command that works from where `make run` was typed.
        again = subprocess.run(
            [".venv/bin/casedesk", "demo"],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
            check=True,
        )
        suggested = re.search(r"(\.venv/bin/casedesk apikey create [^\n]+)", again.stdout)
        assert suggested is not None, again.stdout
        made = subprocess.run(
            shlex.split(suggested[1]),
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
            check=True,
        )
        new_key = made.stdout.strip().splitlines()[-1].strip()
        me = httpx.get(f"{server.base}/api/v1/me", headers={"Authorization": f"Bearer {new_key}"})
        assert me.status_code == 200

        home = httpx.get(f"{server.base}/", follow_redirects=True)
        assert home.status_code == 200
        assert str(home.url).endswith("/sign-in")
        assert httpx.get(f"{server.base}/docs").status_code == 200


@pytest.fixture
def demo_server(empty_database: ScratchDatabase) -> Iterator[tuple[Running, str]]:
    """``casedesk serve`` on a fresh database with the demo tenant, and the demo key."""
    port = _free_port()
    env = _env(empty_database.url, port) | {"CASEDESK_LOG_FORMAT": "json"}
    casedesk = [sys.executable, "-m", "casedesk"]
    subprocess.run([*casedesk, "db", "upgrade"], env=env, check=True, capture_output=True)
    demo = subprocess.run([*casedesk, "demo"], env=env, check=True, capture_output=True, text=True)
    key = next(line for line in demo.stdout.splitlines() if line.startswith("cdk_"))
    with running([*casedesk, "serve"], env, port) as server:
        yield server, key


def _raw(port: int, request: bytes) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(request)
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
    return answer


# The HTTP server's edges, not storage: one backend.
@pytest.mark.backends("sqlite")
def test_a_request_the_http_parser_refuses_is_answered_with_a_problem(
    demo_server: tuple[Running, str],
) -> None:
    server, key = demo_server
    port = int(server.base.rsplit(":", 1)[1])
    request = (
        f"GET /api/v1/cases?customer=é HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {key}\r\n\r\n"
    ).encode()
    head, _, body = _raw(port, request).partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 400 ")
    assert b"content-type: application/problem+json" in head.lower()
    problem = json.loads(body)
    assert problem["status"] == 400
    assert problem["type"] == "/problems/malformed-request"
    encoded = httpx.get(
        f"{server.base}/api/v1/cases",
        params={"customer": "é"},
        headers={"Authorization": f"Bearer {key}"},
    )
    assert encoded.status_code == 200


# The HTTP server's edges, not storage: one backend.
@pytest.mark.backends("sqlite")
def test_a_client_leaving_the_live_tail_leaves_no_error(
    demo_server: tuple[Running, str],
) -> None:
    server, key = demo_server
    port = int(server.base.rsplit(":", 1)[1])
    request = (
        f"GET /api/v1/traces/stream HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {key}\r\n\r\n"
    ).encode()
    for _ in range(3):
        with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
            sock.sendall(request)
            received = b""
            while b"following traces" not in received:
                received += sock.recv(4096)
        assert received.startswith(b"HTTP/1.1 200 ")
    time.sleep(1.0)  # the server notices each departure on its own time
    assert httpx.get(f"{server.base}/healthz").status_code == 200
    log = server.log()
    assert "unhandled error" not in log
    assert "already running" not in log
    assert "Traceback" not in log
