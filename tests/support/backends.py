"""The databases the suite runs against, and fresh throw-away databases on each.

SQLite always runs. PostgreSQL and MariaDB are used at the URLs below (override with
``CASEDESK_TEST_POSTGRES_URL`` / ``CASEDESK_TEST_MARIADB_URL``). When one cannot be
reached, its tests are skipped with the reason on a laptop, and fail under ``CI=true``.
"""

from __future__ import annotations

import asyncio
import os
import uuid
from dataclasses import dataclass
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.engine import make_url

from casedesk.config import load_settings
from casedesk.store.database import nullpool_engine

IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")
TEST_SECRET_KEY = "casedesk-test-suite-secret-key"
"""The suite's CASEDESK_SECRET_KEY: on database servers the default key is refused."""
BACKENDS = ("sqlite", "postgresql", "mariadb")
ADMIN_URLS = {
    "postgresql": os.environ.get(
        "CASEDESK_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test"
    ),
    "mariadb": os.environ.get("CASEDESK_TEST_MARIADB_URL", "mysql://root@127.0.0.1:3306/test"),
}


def normalise(url: str) -> str:
    return load_settings(database_url=url).database_url


def unavailable(backend: str, reason: str) -> None:
    message = f"{backend} is not reachable ({reason}); start it or set its CASEDESK_TEST_* URL"
    if IN_CI:
        pytest.fail(f"CI requires every service: {message}", pytrace=False)
    pytest.skip(message)


@dataclass
class ScratchDatabase:
    backend: str
    url: str
    name: str
    admin_url: str | None

    async def drop(self) -> None:
        if self.admin_url is None:
            for suffix in ("", "-wal", "-shm"):
                Path(f"{self.name}{suffix}").unlink(missing_ok=True)
            return
        async with asyncio.timeout(60):
            await _admin(self.admin_url, self.backend, f"DROP DATABASE IF EXISTS {self.name}")


async def _admin(admin_url: str, backend: str, statement: str) -> None:
    options = {"isolation_level": "AUTOCOMMIT"}
    engine = nullpool_engine(admin_url)
    try:
        async with engine.connect() as connection:
            await connection.execution_options(**options)
            await connection.execute(text(statement))
    finally:
        await engine.dispose()


async def create_scratch(backend: str, tmp_dir: Path, label: str = "t") -> ScratchDatabase:
    """A new empty database on ``backend``; raises on an unreachable server."""
    name = f"casedesk_{label}_{uuid.uuid4().hex[:10]}"
    if backend == "sqlite":
        path = tmp_dir / f"{name}.db"
        return ScratchDatabase(backend, normalise(f"sqlite:///{path}"), str(path), None)
    admin_url = normalise(ADMIN_URLS[backend])
    async with asyncio.timeout(15):
        await _admin(admin_url, backend, f"CREATE DATABASE {name}")
    url = make_url(admin_url).set(database=name).render_as_string(hide_password=False)
    return ScratchDatabase(backend, url, name, admin_url)
