"""A running ``casedesk serve`` takes hook deliveries: stored before the ack, a retry dropped,
a forgery refused, and its own background work hands the delivery to the workflow."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import os
import re
import shutil
import subprocess
import time
import uuid
from pathlib import Path

import httpx
import pytest
from sqlalchemy import select

from casedesk.bootstrap import Container, build
from casedesk.platform.instant import PROCESS
from casedesk.store.models import Execution, InboxDelivery, ScheduledJob
from tests.conftest import Tenants, settings_for
from tests.e2e.test_cli_and_server import casedesk, served
from tests.support.backends import ScratchDatabase
from tests.support.instant import enable

pytestmark = pytest.mark.e2e
SECRET = "the sender's signing secret"


async def test_a_running_server_stores_a_delivery_once_and_its_worker_fires_it_once(
    empty_database: ScratchDatabase,
) -> None:
    url = empty_database.url
    assert casedesk(url, "db", "upgrade").returncode == 0
    container = build(settings_for(url))
    try:
        tenant = await Tenants(container).create()
        hook = await enable(
            container,
            tenant.id,
            settings={
                "verify": {"type": "hmac", "header": "X-Hub-Signature-256", "prefix": "sha256="}
            },
            own_secrets={"signing_secret": SECRET},
        )
        body = b'{"action": "opened", "issue": {"number": 1347, "title": "Found a bug"}}'
        signature = "sha256=" + hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
        delivery = str(uuid.uuid4())
        headers = {
            "Content-Type": "application/json",
            "X-GitHub-Event": "issues",
            "X-GitHub-Delivery": delivery,
            "X-Hub-Signature-256": signature,
        }
        with served(url) as base:
            async with httpx.AsyncClient(base_url=base, timeout=10) as http:
                forged = await http.post(
                    hook.path, content=body, headers=headers | {"X-Hub-Signature-256": "sha256=0"}
                )
                assert forged.status_code == 401
                assert forged.headers["content-type"] == "application/problem+json"
                first = await http.post(hook.path, content=body, headers=headers)
                assert first.status_code == 200
                # Acknowledged means stored: the row is there the moment the answer is.
                async with container.unit_of_work(tenant.id) as uow:
                    stored = list((await uow.session.scalars(select(InboxDelivery))).all())
                assert [row.event_id for row in stored] == [delivery]
                again = await http.post(hook.path, content=body, headers=headers)
                assert again.status_code == 200
                executions = await _wait_for_processing(container, tenant.id)
        assert [e.source_id for e in executions] == [delivery]
        assert executions[0].trigger_item["body"]["issue"]["number"] == 1347
        async with container.unit_of_work(tenant.id) as uow:
            rows = list((await uow.session.scalars(select(InboxDelivery))).all())
            jobs = list(
                (
                    await uow.session.scalars(
                        select(ScheduledJob).where(ScheduledJob.kind == PROCESS)
                    )
                ).all()
            )
        assert [(row.event_id, row.status) for row in rows] == [(delivery, "processed")]
        assert [job.status for job in jobs] == ["done"]
    finally:
        await container.close()


def _readme_signing_example() -> str:
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    (block,) = [b for b in re.findall(r"```sh\n(.*?)```", readme, re.DOTALL) if "$HOOK_URL" in b]
    return block


async def test_the_readmes_signed_delivery_is_taken_by_a_running_server(
    empty_database: ScratchDatabase,
) -> None:
    if shutil.which("openssl") is None or shutil.which("curl") is None:
        pytest.fail("the README's example needs openssl and curl on the PATH")
    url = empty_database.url
    assert casedesk(url, "db", "upgrade").returncode == 0
    container = build(settings_for(url))
    try:
        tenant = await Tenants(container).create()
        hook = await enable(
            container,
            tenant.id,
            settings={
                "verify": {"type": "hmac", "header": "X-Hub-Signature-256", "prefix": "sha256="}
            },
            own_secrets={"signing_secret": SECRET},
        )
        with served(url) as base:
            env = os.environ | {"HOOK_URL": f"{base}{hook.path}", "SECRET": SECRET}
            sent = subprocess.run(
                ["bash", "-c", _readme_signing_example()],
                env=env,
                capture_output=True,
                text=True,
                timeout=60,
                check=False,
            )
        assert sent.returncode == 0, sent.stderr
        assert sent.stdout.startswith("HTTP/1.1 200"), sent.stdout
        async with container.unit_of_work(tenant.id) as uow:
            stored = list((await uow.session.scalars(select(InboxDelivery))).all())
        assert [row.event_id for row in stored] == ["evt_1"]
    finally:
        await container.close()


async def _wait_for_processing(container: Container, tenant_id: uuid.UUID) -> list[Execution]:
    """The executions, once the server's worker has processed the delivery and its job."""
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        async with container.unit_of_work(tenant_id) as uow:
            found = list((await uow.session.scalars(select(Execution))).all())
            job = await uow.session.scalar(select(ScheduledJob).where(ScheduledJob.kind == PROCESS))
        if found and job is not None and job.status == "done":
            return found
        await asyncio.sleep(0.2)
    pytest.fail("the server's worker did not process the delivery within 30 s")
