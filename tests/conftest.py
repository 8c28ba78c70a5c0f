"""Fixtures shared by the whole suite.

``backend`` is parametrised over SQLite, PostgreSQL and MariaDB; every test that asks
for a database (directly or through ``container``/``client``) runs once per backend,
each backend on its own freshly created and migrated database.
"""

from __future__ import annotations

import os
import tempfile
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from casedesk.activities import identity
from casedesk.app import create_app
from casedesk.bootstrap import Container, build
from casedesk.config import Settings, load_settings
from casedesk.domain.identity.roles import Role
from casedesk.store import migrate
from casedesk.store.database import nullpool_engine
from tests.support.backends import (
    BACKENDS,
    TEST_SECRET_KEY,
    ScratchDatabase,
    create_scratch,
    unavailable,
)

pytest_plugins = ["tests.support.services", "tests.support.dovecot", "tests.support.s3"]
# As a deployment on a database server must, the suite sets a key of its own.
os.environ.setdefault("CASEDESK_SECRET_KEY", TEST_SECRET_KEY)
# Attachments go to a folder of the run's own, never into the working directory.
os.environ.setdefault("CASEDESK_ATTACHMENTS_DIR", tempfile.mkdtemp(prefix="casedesk-blobs-"))


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Keep a test marked ``backends(...)`` only on the backends it names: a page's rendering
    or a form's checks run once, where the storage they stand on is tested on all three."""
    kept, dropped = [], []
    for item in items:
        marker = item.get_closest_marker("backends")
        callspec = getattr(item, "callspec", None)
        param = callspec.params.get("backend_url") if callspec is not None else None
        if marker is not None and param is not None and param not in marker.args:
            dropped.append(item)
        else:
            kept.append(item)
    if dropped:
        config.hook.pytest_deselected(items=dropped)
        items[:] = kept


BROWSER_TESTS = "tests/browser/"


def pytest_xdist_make_scheduler(config: pytest.Config, log: object) -> object:
    """Under ``pytest -n N --dist loadgroup`` (``make test``), each test goes to whichever
    process is free, except the browser tests: they form one unit, so that one process starts
    their server and Chromium once. (The unit is named here, by path: pytest-xdist's
    ``xdist_group`` marks do not reach its scheduler under pytest 9.2.)"""
    if config.getvalue("dist") != "loadgroup":
        return None
    from xdist.scheduler import LoadGroupScheduling

    class Scheduling(LoadGroupScheduling):
        def _split_scope(self, nodeid: str) -> str:
            return "browser" if nodeid.startswith(BROWSER_TESTS) else super()._split_scope(nodeid)

    return Scheduling(config, log)  # type: ignore[arg-type]


@pytest.fixture(scope="session")
def scratch_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("db")


_migrated: dict[str, ScratchDatabase] = {}


@pytest.fixture(scope="session", params=BACKENDS)
async def backend_url(request: pytest.FixtureRequest, scratch_dir: Path) -> AsyncIterator[str]:
    """A migrated database on one backend, shared by the session's tests of that backend."""
    backend: str = request.param
    try:
        scratch = await create_scratch(backend, scratch_dir, label="suite")
    except Exception as exc:  # any connection failure means the service is not there
        unavailable(backend, f"{type(exc).__name__}: {exc}")
        raise
    engine = nullpool_engine(scratch.url)
    try:
        await migrate.upgrade(engine)
    finally:
        await engine.dispose()
    yield scratch.url
    await scratch.drop()


@pytest.fixture(scope="session")
def backend(backend_url: str) -> str:
    return backend_url.split("+", 1)[0].replace("mysql", "mariadb")


@pytest.fixture
async def empty_database(
    request: pytest.FixtureRequest, backend: str, scratch_dir: Path
) -> AsyncIterator[ScratchDatabase]:
    """A brand-new, unmigrated database on the current backend, dropped afterwards."""
    scratch = await create_scratch(backend, scratch_dir, label="empty")
    yield scratch
    await scratch.drop()


def settings_for(url: str, **overrides: object) -> Settings:
    return load_settings(database_url=url, log_format="console", log_level="warning", **overrides)


@pytest.fixture(scope="session")
async def container(backend_url: str) -> AsyncIterator[Container]:
    # Loopback is allowed: tests send webhooks to receivers on 127.0.0.1.
    container = build(
        settings_for(backend_url, api_key_touch_seconds=0, outbound_allowed_networks="127.0.0.0/8")
    )
    yield container
    await container.close()


@pytest.fixture(scope="session")
def app(container: Container):  # type: ignore[no-untyped-def]
    return create_app(container=container)


@pytest.fixture
async def client(app) -> AsyncIterator[httpx.AsyncClient]:  # type: ignore[no-untyped-def]
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://casedesk.test") as http:
        yield http


@dataclass
class TenantHandle:
    """A fresh tenant with an admin and the admin's API key."""

    id: uuid.UUID
    slug: str
    admin_id: uuid.UUID
    admin_key: str

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.admin_key}"}


@dataclass
class Member:
    id: uuid.UUID
    key: str
    role: Role

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.key}"}


class Tenants:
    def __init__(self, container: Container) -> None:
        self.container = container

    async def create(self, edition: str = "standard") -> TenantHandle:
        slug = f"t-{uuid.uuid4().hex[:12]}"
        async with self.container.unit_of_work() as uow:
            tenant = await identity.create_tenant(uow, slug=slug, name=slug, edition=edition)
        member = await self.member(tenant.id, Role.ADMIN)
        return TenantHandle(tenant.id, slug, member.id, member.key)

    async def member(self, tenant_id: uuid.UUID, role: Role) -> Member:
        async with self.container.unit_of_work(tenant_id) as uow:
            user = await identity.create_user(
                uow, None, email=f"{role}-{uuid.uuid4().hex[:8]}@example.com", name=role, role=role
            )
        async with self.container.unit_of_work(tenant_id) as uow:
            created = await identity.create_api_key(uow, None, name="test", user_id=user.id)
        return Member(user.id, created.plaintext, role)


@pytest.fixture
def tenants(container: Container) -> Tenants:
    return Tenants(container)


@pytest.fixture
async def desk(client: httpx.AsyncClient, tenants: Tenants):  # type: ignore[no-untyped-def]
    from tests.support.cases import make_desk

    return await make_desk(client, await tenants.create(), tenants.container)
