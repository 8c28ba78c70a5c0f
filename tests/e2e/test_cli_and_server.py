"""The README path on every backend: migrate, create the demo, serve, call the API.

These run the real ``casedesk`` command and a real server process over HTTP.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

from tests.support.backends import TEST_SECRET_KEY, ScratchDatabase
from tests.support.servers import wait_until_serving

pytestmark = pytest.mark.e2e


def _env(database_url: str, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CASEDESK_")}
    env["CASEDESK_SECRET_KEY"] = TEST_SECRET_KEY
    env.update(CASEDESK_DATABASE_URL=database_url, CASEDESK_LOG_FORMAT="json", **extra)
    return env


def casedesk(database_url: str, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "casedesk", *args],
        env=_env(database_url, **env),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def served(database_url: str, workers: int = 1, **env: str) -> Iterator[str]:
    port = _free_port()
    # A file, not a pipe: a pipe nobody reads fills up and blocks the server's logging.
    output = tempfile.TemporaryFile(mode="w+")  # noqa: SIM115 - closed after the process ends
    process = subprocess.Popen(
        [sys.executable, "-m", "casedesk", "serve", "--port", str(port), "--workers", str(workers)],
        env=_env(database_url, **env),
        stdout=output,
        stderr=subprocess.STDOUT,
        text=True,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        wait_until_serving(process, base, output)
        yield base
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            raise
    output.seek(0)
    log = output.read()
    output.close()
    # uvicorn finishes its graceful shutdown, then re-raises SIGTERM as its exit status
    assert process.returncode in (0, -signal.SIGTERM), log
    assert "Application shutdown complete" in log


def _last_line(result: subprocess.CompletedProcess[str]) -> str:
    return result.stdout.strip().splitlines()[-1].strip()


async def test_the_readme_path_serves_the_demo_key(empty_database: ScratchDatabase) -> None:
    url = empty_database.url
    refused = casedesk(url, "serve", "--port", str(_free_port()))
    assert refused.returncode != 0
    assert "casedesk db upgrade" in refused.stderr

    assert casedesk(url, "db", "upgrade").returncode == 0
    demo = casedesk(url, "demo")
    assert demo.returncode == 0, demo.stderr
    key = next(line for line in demo.stdout.splitlines() if line.startswith("cdk_"))
    again = casedesk(url, "demo")
    assert again.returncode == 0
    assert "cdk_" not in again.stdout

    with served(url) as base:
        me = httpx.get(f"{base}/api/v1/me", headers={"Authorization": f"Bearer {key}"})
        assert me.status_code == 200
        assert me.json()["tenant"]["slug"] == "demo"
        assert me.json()["role"] == "admin"
        assert me.headers["x-request-id"]
        ready = httpx.get(f"{base}/readyz")
        assert ready.json()["checks"]["database"] == "ok"


# The CLI's commands and exit codes; what they store is tested on every backend.
@pytest.mark.backends("sqlite")
async def test_cli_manages_tenants_users_and_keys(empty_database: ScratchDatabase) -> None:
    url = empty_database.url
    assert casedesk(url, "db", "upgrade").returncode == 0
    assert casedesk(url, "tenant", "create", "acme", "--edition", "ecommerce").returncode == 0
    duplicate = casedesk(url, "tenant", "create", "acme")
    assert duplicate.returncode == 1
    assert "already exists" in duplicate.stderr
    for email, role in (("boss@acme.io", "admin"), ("view@acme.io", "viewer")):
        made = casedesk(url, "user", "create", "--tenant", "acme", "--email", email, "--role", role)
        assert made.returncode == 0, made.stderr
    admin_key = _last_line(
        casedesk(url, "apikey", "create", "--tenant", "acme", "--user", "boss@acme.io")
    )
    viewer_key = _last_line(
        casedesk(url, "apikey", "create", "--tenant", "acme", "--user", "view@acme.io")
    )
    missing = casedesk(url, "user", "create", "--tenant", "nope", "--email", "x@y.io")
    assert missing.returncode == 1
    assert "tenant list" in missing.stderr

    with served(url, CASEDESK_AUTH_CACHE_SECONDS="1") as base:
        viewer = {"Authorization": f"Bearer {viewer_key}"}
        admin = {"Authorization": f"Bearer {admin_key}"}
        forbidden = httpx.post(
            f"{base}/api/v1/users", json={"email": "n@acme.io", "name": "N"}, headers=viewer
        )
        assert forbidden.status_code == 403
        me = httpx.get(f"{base}/api/v1/me", headers=admin).json()
        assert me["tenant"]["edition"] == "ecommerce"

        revoked = casedesk(url, "apikey", "revoke", "--tenant", "acme", me["api_key_id"])
        assert revoked.returncode == 0, revoked.stderr
        # another process revoked it: the server refuses it within its cache time
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            if httpx.get(f"{base}/api/v1/me", headers=admin).status_code == 401:
                break
            time.sleep(0.1)
        assert httpx.get(f"{base}/api/v1/me", headers=admin).status_code == 401
        assert httpx.get(f"{base}/api/v1/me", headers=viewer).status_code == 200


async def test_cli_sets_and_shows_a_tenant_s_attachment_limits(
    empty_database: ScratchDatabase,
) -> None:
    url = empty_database.url
    assert casedesk(url, "db", "upgrade").returncode == 0
    assert casedesk(url, "tenant", "create", "acme").returncode == 0
    shown = casedesk(url, "tenant", "limits", "acme", CASEDESK_ATTACHMENT_MAX_BYTES="1048576")
    assert shown.returncode == 0, shown.stderr
    assert "1,048,576 bytes a file (the deployment's)" in shown.stdout
    assert "its files use 0 bytes" in shown.stdout
    made = casedesk(url, "tenant", "limits", "acme", "--max-file", "10KiB", "--quota", "1.5 MB")
    assert made.returncode == 0, made.stderr
    assert "10,240 bytes a file (its own)" in made.stdout
    assert "a quota of 1,500,000 bytes (its own)" in made.stdout
    above = casedesk(
        url,
        "tenant",
        "limits",
        "acme",
        "--max-file",
        "2MiB",
        CASEDESK_ATTACHMENT_MAX_BYTES="1048576",
    )
    assert "1,048,576 bytes a file (its own)" in above.stdout
    assert "above the deployment's CASEDESK_ATTACHMENT_MAX_BYTES" in above.stdout
    wrong = casedesk(url, "tenant", "limits", "acme", "--quota", "lots")
    assert wrong.returncode == 2
    assert "'lots' is no size" in wrong.stderr
    huge = casedesk(url, "tenant", "limits", "acme", "--quota", "99999999999TiB")
    assert huge.returncode == 2
    assert "more than any store holds" in huge.stderr
    reset = casedesk(url, "tenant", "limits", "acme", "--reset")
    assert "(the deployment's)" in reset.stdout
    assert "no quota (the deployment's)" in reset.stdout or "quota of" in reset.stdout


async def test_several_workers_share_the_database(empty_database: ScratchDatabase) -> None:
    url = empty_database.url
    assert casedesk(url, "db", "upgrade").returncode == 0
    key = next(
        line for line in casedesk(url, "demo").stdout.splitlines() if line.startswith("cdk_")
    )
    with served(url, workers=2) as base:
        headers = {"Authorization": f"Bearer {key}"}
        with httpx.Client(base_url=base, headers=headers) as http:
            codes = [http.get("/api/v1/me").status_code for _ in range(20)]
            metrics = http.get("/metrics").text
    assert codes == [200] * 20
    assert 'casedesk_http_requests_total{method="GET",route="/api/v1/me",status="200"}' in metrics


def test_a_wrong_setting_stops_the_command_and_names_the_variable() -> None:
    result = casedesk("sqlite:///x.db", "db", "current", CASEDESK_PORT="99999")
    assert result.returncode == 2
    assert "CASEDESK_PORT" in result.stderr
    bad_url = casedesk("oracle://nowhere/db", "db", "current")
    assert bad_url.returncode == 2
    assert "CASEDESK_DATABASE_URL" in bad_url.stderr


def test_an_unreachable_database_says_what_to_check() -> None:
    result = casedesk("postgresql://postgres@127.0.0.1:1/nothing", "db", "current")
    assert result.returncode == 1
    assert "CASEDESK_DATABASE_URL" in result.stderr


def test_a_malformed_request_is_a_problem_on_the_asyncio_loop_too(tmp_path: Path) -> None:
    # uvloop, the default, is covered by the newcomer's test of the same answer
    url = f"sqlite:///{tmp_path / 'loop.db'}"
    assert casedesk(url, "db", "upgrade").returncode == 0
    with served(url, CASEDESK_SERVER_LOOP="asyncio") as base:
        host, port = base.removeprefix("http://").rsplit(":", 1)
        with socket.create_connection((host, int(port)), timeout=10) as sock:
            sock.sendall("GET /api/v1/cases?customer=é HTTP/1.1\r\nHost: x\r\n\r\n".encode())
            answer = b""
            while chunk := sock.recv(65536):
                answer += chunk
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 400 ")
    assert b"content-type: application/problem+json" in head.lower()
    assert json.loads(body)["type"] == "/problems/malformed-request"
