"""The read paths: the statements a case detail and a case list run, and the callers kept
per API key for a few seconds (``CASEDESK_AUTH_CACHE_SECONDS``)."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import event, select, update

from casedesk.activities import identity
from casedesk.app import create_app
from casedesk.bootstrap import Container, build
from casedesk.domain.identity.roles import Role
from casedesk.kit.clock import utcnow
from casedesk.store.models import ApiKey, Tenant, User
from tests.conftest import Tenants, settings_for
from tests.support.cases import Desk, make_desk

CACHE_SECONDS = 5.0


class Clock:
    """The cache's clock, moved by the test instead of waiting."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@dataclass
class Server:
    """A server process of its own: its own engine, its own cache of callers."""

    http: httpx.AsyncClient
    container: Container
    clock: Clock


@pytest.fixture
async def server(backend_url: str) -> AsyncIterator[Server]:
    container = build(
        settings_for(backend_url, auth_cache_seconds=CACHE_SECONDS, api_key_touch_seconds=3600)
    )
    clock = Clock()
    container.principals.clock = clock
    transport = httpx.ASGITransport(app=create_app(container=container))
    async with httpx.AsyncClient(transport=transport, base_url="http://casedesk.test") as http:
        yield Server(http, container, clock)
    await container.close()


@contextmanager
def statements(container: Container) -> Iterator[list[str]]:
    """The SQL statements run on the container's engine meanwhile (not BEGIN, COMMIT...)."""
    seen: list[str] = []

    def note(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        words = statement.split(None, 1)
        verb = words[0].upper() if words else ""
        if verb in {"SELECT", "INSERT", "UPDATE", "DELETE", "WITH"} and words[1:] != ["1"]:
            seen.append(statement)

    engine = container.database.engine.sync_engine
    event.listen(engine, "before_cursor_execute", note)
    try:
        yield seen
    finally:
        event.remove(engine, "before_cursor_execute", note)


async def _me(server: Server, key: str) -> httpx.Response:
    return await server.http.get("/api/v1/me", headers={"Authorization": f"Bearer {key}"})


async def _key_id(container: Container, tenant_id: uuid.UUID, user_id: uuid.UUID) -> uuid.UUID:
    async with container.unit_of_work(tenant_id) as uow:
        found = await uow.session.scalar(select(ApiKey.id).where(ApiKey.user_id == user_id))
    assert found is not None
    return found


async def _revoke(other: Container, tenant_id: uuid.UUID, user_id: uuid.UUID) -> None:
    key_id = await _key_id(other, tenant_id, user_id)
    async with other.unit_of_work(tenant_id) as uow:
        await identity.revoke_api_key(uow, None, key_id)


async def _deactivate(other: Container, tenant_id: uuid.UUID, user_id: uuid.UUID) -> None:
    async with other.unit_of_work(tenant_id) as uow:
        await uow.session.execute(update(User).where(User.id == user_id).values(active=False))
        await uow.commit()


async def _disable_tenant(other: Container, tenant_id: uuid.UUID, _user_id: uuid.UUID) -> None:
    async with other.unit_of_work() as uow:
        await uow.session.execute(
            update(Tenant).where(Tenant.id == tenant_id).values(enabled=False)
        )
        await uow.commit()


@pytest.mark.parametrize(
    ("change", "detail"),
    [
        (_revoke, "revoked"),
        (_deactivate, "deactivated"),
        (_disable_tenant, "disabled"),
    ],
)
async def test_a_caller_refused_by_another_process_is_refused_once_the_cache_time_passed(
    server: Server, container: Container, tenants: Tenants, change: Any, detail: str
) -> None:
    tenant = await tenants.create()
    agent = await tenants.member(tenant.id, Role.AGENT)
    assert (await _me(server, agent.key)).status_code == 200

    # ``container`` is another engine, as the CLI or another server process would be.
    await change(container, tenant.id, agent.id)
    server.clock.now += CACHE_SECONDS - 0.1
    assert (await _me(server, agent.key)).status_code == 200, "kept for the cache time"
    server.clock.now += 0.2
    refused = await _me(server, agent.key)
    assert refused.status_code == 401
    assert detail in refused.json()["detail"]


async def test_a_role_changed_by_another_process_holds_once_the_cache_time_passed(
    server: Server, container: Container, tenants: Tenants
) -> None:
    tenant = await tenants.create()
    agent = await tenants.member(tenant.id, Role.AGENT)
    assert (await _me(server, agent.key)).json()["role"] == "agent"
    async with container.unit_of_work(tenant.id) as uow:
        await uow.session.execute(update(User).where(User.id == agent.id).values(role="viewer"))
        await uow.commit()
    server.clock.now += CACHE_SECONDS + 0.1
    assert (await _me(server, agent.key)).json()["role"] == "viewer"


async def test_a_key_revoked_through_this_process_is_refused_at_once(
    server: Server, tenants: Tenants
) -> None:
    tenant = await tenants.create()
    agent = await tenants.member(tenant.id, Role.AGENT)
    assert (await _me(server, agent.key)).status_code == 200
    key_id = await _key_id(server.container, tenant.id, agent.id)
    revoked = await server.http.delete(f"/api/v1/api-keys/{key_id}", headers=tenant.headers)
    assert revoked.status_code == 204
    assert (await _me(server, agent.key)).status_code == 401


async def test_a_key_is_not_kept_past_its_own_expiry(server: Server, tenants: Tenants) -> None:
    tenant = await tenants.create()
    agent = await tenants.member(tenant.id, Role.AGENT)
    async with server.container.unit_of_work(tenant.id) as uow:
        await uow.session.execute(
            update(ApiKey).where(ApiKey.user_id == agent.id).values(expires_at=_in(0.5))
        )
        await uow.commit()
    assert (await _me(server, agent.key)).status_code == 200
    entry = next(iter(server.container.principals._entries.values()))
    assert entry.fresh_until <= server.clock.now + 0.5


def _in(seconds: float) -> datetime:
    return utcnow() + timedelta(seconds=seconds)


async def test_the_cache_is_found_by_the_keys_hash_not_its_text(
    server: Server, tenants: Tenants
) -> None:
    tenant = await tenants.create()
    assert (await _me(server, tenant.admin_key)).status_code == 200
    assert tenant.admin_key not in server.container.principals._entries
    assert all(len(key) == 64 for key in server.container.principals._entries)


async def test_a_cached_key_reads_no_other_tenants_case(
    server: Server, client: httpx.AsyncClient, tenants: Tenants
) -> None:
    mine = await make_desk(client, await tenants.create(), tenants.container)
    theirs = await make_desk(client, await tenants.create(), tenants.container)
    their_case = await theirs.new_case(title="theirs")
    my_case = await mine.new_case(title="mine")
    for _ in range(2):  # the second with the cache warm
        found = await server.http.get(f"/api/v1/cases/{my_case['id']}", headers=mine.headers)
        assert found.status_code == 200
        other = await server.http.get(f"/api/v1/cases/{their_case['id']}", headers=mine.headers)
        assert other.status_code == 404
        for path in ("history", "comments"):
            url = f"/api/v1/cases/{their_case['id']}/{path}"
            assert (await server.http.get(url, headers=mine.headers)).status_code == 404
        listed = await server.http.get("/api/v1/cases?limit=200", headers=mine.headers)
        assert [item["id"] for item in listed.json()["items"]] == [my_case["id"]]


async def test_the_use_of_a_cached_key_is_still_recorded(
    backend_url: str, tenants: Tenants
) -> None:
    container = build(settings_for(backend_url, auth_cache_seconds=60, api_key_touch_seconds=0))
    transport = httpx.ASGITransport(app=create_app(container=container))
    tenant = await tenants.create()
    key_id = await _key_id(container, tenant.id, tenant.admin_id)
    try:
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as http:
            seen = []
            for _ in range(2):
                assert (await http.get("/api/v1/me", headers=tenant.headers)).status_code == 200
                async with container.unit_of_work(tenant.id) as uow:
                    seen.append(
                        await uow.session.scalar(
                            select(ApiKey.last_used_at).where(ApiKey.id == key_id)
                        )
                    )
        assert len(container.principals) == 1
        assert seen[0] is not None
        assert seen[1] is not None
        assert seen[1] > seen[0]
    finally:
        await container.close()


async def _desk_on(client: httpx.AsyncClient, tenants: Tenants) -> Desk:
    return await make_desk(client, await tenants.create(), tenants.container)


async def test_the_detail_of_a_case_is_one_statement_and_one_for_its_comments(
    server: Server, client: httpx.AsyncClient, tenants: Tenants
) -> None:
    desk = await _desk_on(client, tenants)
    quiet = await desk.new_case(customer={"email": "ann@example.com", "name": "Ann"})
    talked = await desk.new_case()
    url = f"/api/v1/cases/{talked['id']}/comments"
    commented = await client.post(url, json={"body": "hello"}, headers=desk.headers)
    assert commented.status_code == 201
    await server.http.get(f"/api/v1/cases/{quiet['id']}", headers=desk.headers)  # warm
    with statements(server.container) as run:
        read = await server.http.get(f"/api/v1/cases/{quiet['id']}", headers=desk.headers)
    assert read.status_code == 200
    assert len(run) == 1, run
    with statements(server.container) as run:
        read = await server.http.get(f"/api/v1/cases/{talked['id']}", headers=desk.headers)
    assert len(run) == 2, run
    # the same JSON the activities answer with (their detail is built from ORM objects)
    assert read.json() == commented.json()
    assert read.headers["etag"] == commented.headers["etag"]
    assert read.headers["content-type"] == "application/json"


async def test_a_page_of_the_list_filtered_by_queue_and_state_is_one_statement(
    server: Server, client: httpx.AsyncClient, tenants: Tenants
) -> None:
    desk = await _desk_on(client, tenants)
    for _ in range(3):
        await desk.new_case()
    path = "/api/v1/cases?queue=support&state=new&limit=2"
    await server.http.get(path, headers=desk.headers)  # warm
    with statements(server.container) as run:
        page = await server.http.get(path, headers=desk.headers)
    assert page.status_code == 200
    assert len(page.json()["items"]) == 2
    assert page.json()["next_cursor"]
    assert len(run) == 1, run
    with statements(server.container) as run:
        unknown = await server.http.get("/api/v1/cases?queue=nope", headers=desk.headers)
    assert unknown.status_code == 422
    assert unknown.json()["field"] == "queue"
    assert len(run) == 2, run
