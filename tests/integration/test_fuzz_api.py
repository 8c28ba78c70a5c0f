"""Property-based fuzzing of the whole HTTP API from its OpenAPI schema, on every database.

Schemathesis generates valid and invalid requests for every operation; whatever it sends,
the answer is never a 5xx, and every error is a problem document.
"""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import schemathesis
import uvicorn
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from casedesk.activities import identity
from casedesk.api.server import PROTOCOL
from casedesk.app import create_app
from casedesk.bootstrap import build
from casedesk.domain.identity.roles import Role
from casedesk.store import migrate
from tests.conftest import settings_for
from tests.support.backends import ScratchDatabase
from tests.support.cases import BASIC_MACHINE
from tests.support.instant import enable


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
        hook = await enable(container, tenant.id)  # a generic webhook that takes anything
    finally:
        await container.close()
    known = {"user_id": str(target.id), "key_id": str(spare.key.id)}
    return created.plaintext, known | {
        "token": hook.token,
        "subscription_id": str(hook.subscription_id),
    }


def _desk(base: str, key: str) -> dict[str, str]:
    """A queue, a published machine, a template and a case, for paths that name them."""
    with httpx.Client(
        base_url=f"{base}/api/v1", headers={"Authorization": f"Bearer {key}"}
    ) as http:
        http.post("/queues", json={"code": "support", "name": "Support"}).raise_for_status()
        machine = {"code": "basic", "name": "Basic"} | BASIC_MACHINE
        http.post("/state-machines", json=machine).raise_for_status()
        http.post("/state-machines/basic/publish").raise_for_status()
        template = {"code": "basic", "name": "Basic", "state_machine": "basic"}
        http.post("/templates", json=template | {"default_queue": "support"}).raise_for_status()
        case = http.post("/cases", json={"template": "basic", "title": "Known"})
        case.raise_for_status()
    return {"code": "basic", "case_id": case.json()["id"]}


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def fuzz_target(empty_database: ScratchDatabase) -> Iterator[tuple[Any, str, dict[str, str]]]:
    """The API served over real HTTP on a fresh database of each backend.

    The server runs in a thread with its own event loop, as ``casedesk serve`` runs it, so
    the database pool lives on one loop whatever the fuzzer's client does.
    """
    url = empty_database.url
    loop = asyncio.new_event_loop()
    try:
        key, known_ids = loop.run_until_complete(_prepare(url))
    finally:
        loop.close()
    app = create_app(container=build(settings_for(url, separate_workers=True)))
    port = _free_port()
    config = uvicorn.Config(
        app, host="127.0.0.1", port=port, log_config=None, access_log=False, http=PROTOCOL
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert thread.is_alive(), "the fuzzed server stopped while starting"
        assert time.monotonic() < deadline, "the fuzzed server did not start within 30 s"
        time.sleep(0.05)
    base = f"http://127.0.0.1:{port}"
    try:
        known_ids |= _desk(base, key)
        yield schemathesis.openapi.from_url(f"{base}/openapi.json"), key, known_ids
    finally:
        server.should_exit = True
        thread.join(timeout=30)


def test_no_request_gets_a_server_error(fuzz_target: tuple[Any, str, dict[str, str]]) -> None:
    api, key, known_ids = fuzz_target
    # A live stream never ends, so the fuzzer cannot wait for its answer; the end-to-end
    # tests read it.
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


INTEGER_EDGES = (-1, 0, 2**15, 2**31 - 1, 2**31, 2**63 - 1, 2**63, 2**64)
"""Where integer columns end: generated integers rarely land there, so some are moved."""


def _fuzz(operation: Any, key: str, known_ids: dict[str, str], seen: list[int]) -> None:
    """Fuzz one operation; half the time its path ids name objects that exist, and now and
    then its integer parameters sit at the edge of a column type."""

    @given(
        case=operation.as_strategy(),
        use_known_ids=st.booleans(),
        edge=st.one_of(st.none(), st.sampled_from(INTEGER_EDGES)),
    )
    @settings(
        max_examples=15,
        deadline=None,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    def check(case: Any, use_known_ids: bool, edge: int | None) -> None:
        if use_known_ids and case.path_parameters:
            for name in case.path_parameters.keys() & known_ids.keys():
                case.path_parameters[name] = known_ids[name]
        if edge is not None:
            for parameters in (case.path_parameters, case.query):
                for name, value in (parameters or {}).items():
                    if isinstance(value, int) and not isinstance(value, bool):
                        parameters[name] = edge
        response = case.call(headers={"Authorization": f"Bearer {key}"})
        seen.append(response.status_code)
        label = f"{case.method} {case.formatted_path}"
        assert response.status_code < 500, f"{label}: {response.text}"
        if response.status_code >= 400:
            content_type = response.headers["content-type"]
            content_type = content_type[0] if isinstance(content_type, list) else content_type
            assert content_type.startswith("application/problem+json"), label

    check()
