"""Property-based fuzzing of the whole HTTP API from its OpenAPI schema.

Schemathesis generates valid and invalid requests for every operation; whatever it sends,
the answer is never a 5xx, and every error is a problem document.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from casedesk.activities import identity
from casedesk.app import create_app
from casedesk.bootstrap import build
from casedesk.domain.identity.roles import Role
from casedesk.store import migrate
from tests.conftest import settings_for


async def _prepare(url: str) -> tuple[str, dict[str, str]]:
    container = build(settings_for(url))
    try:
        await migrate.upgrade(container.database.engine)
        async with container.unit_of_work() as uow:
            tenant = await identity.create_tenant(uow, slug="fuzz", name="Fuzz", edition="standard")
        async with container.unit_of_work(tenant.id) as uow:
            admin = await identity.create_user(
                uow, None, email="admin@fuzz.io", name="Admin", role=Role.ADMIN
            )
        async with container.unit_of_work(tenant.id) as uow:
            target = await identity.create_user(
                uow, None, email="target@fuzz.io", name="Target", role=Role.AGENT
            )
        async with container.unit_of_work(tenant.id) as uow:
            created = await identity.create_api_key(uow, None, name="fuzz", user_id=admin.id)
        async with container.unit_of_work(tenant.id) as uow:
            spare = await identity.create_api_key(uow, None, name="spare", user_id=target.id)
    finally:
        await container.close()
    return created.plaintext, {"user_id": str(target.id), "key_id": str(spare.key.id)}


@pytest.fixture(scope="module")
def fuzz_target(tmp_path_factory: pytest.TempPathFactory) -> tuple[Any, str, dict[str, str]]:
    url = f"sqlite:///{Path(tmp_path_factory.mktemp('fuzz')) / 'fuzz.db'}"
    loop = asyncio.new_event_loop()
    try:
        key, known_ids = loop.run_until_complete(_prepare(url))
    finally:
        loop.close()
    app = create_app(container=build(settings_for(url)))
    return schemathesis.openapi.from_asgi("/openapi.json", app), key, known_ids


def test_no_request_gets_a_server_error(fuzz_target: tuple[Any, str, dict[str, str]]) -> None:
    api, key, known_ids = fuzz_target
    # A live stream never ends, so it cannot be fuzzed through an in-process client; the
    # end-to-end tests read it over real HTTP.
    operations = [
        operation
        for operation in (result.ok() for result in api.get_all_operations())
        if not operation.path.endswith("/stream")
    ]
    assert len(operations) >= 8
    seen: list[int] = []
    for operation in operations:
        _fuzz(operation, key, known_ids, seen)
    assert any(200 <= code < 300 for code in seen)
    assert any(code == 422 for code in seen)
    assert len(seen) >= 10 * len(operations)


def _fuzz(operation: Any, key: str, known_ids: dict[str, str], seen: list[int]) -> None:
    """Fuzz one operation; half the time its path ids name objects that exist."""

    @given(case=operation.as_strategy(), use_known_ids=st.booleans())
    @settings(
        max_examples=40,
        deadline=None,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    def check(case: Any, use_known_ids: bool) -> None:
        if use_known_ids and case.path_parameters:
            for name in case.path_parameters.keys() & known_ids.keys():
                case.path_parameters[name] = known_ids[name]
        response = case.call(headers={"Authorization": f"Bearer {key}"})
        seen.append(response.status_code)
        label = f"{case.method} {case.formatted_path}"
        assert response.status_code < 500, f"{label}: {response.text}"
        if response.status_code >= 400:
            content_type = response.headers["content-type"]
            content_type = content_type[0] if isinstance(content_type, list) else content_type
            assert content_type.startswith("application/problem+json"), label

    check()
