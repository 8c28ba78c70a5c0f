"""Instant-trigger subscriptions set up in the database, and their jobs run as a worker would.

A subscription is made as enabling a workflow makes it: a workflow with a published version
that names the trigger, the subscription row, and ``platform.subscriptions.start`` in the
same transaction. Jobs are run with the real handlers of ``bootstrap.job_handlers``, claimed
and finished through the job table as the scheduler does, but only those of one tenant and
of the kinds asked for, so that tests sharing a database never run each other's jobs.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import orjson
from sqlalchemy import select

from casedesk.activities.connections import manifest_for
from casedesk.bootstrap import Container, job_handlers
from casedesk.integrations.manifests import parse_manifest
from casedesk.kit.clock import utcnow
from casedesk.platform import instant, subscriptions
from casedesk.store.models import (
    Connection,
    Connector,
    ConnectorVersion,
    ScheduledJob,
    Subscription,
    Workflow,
    WorkflowVersion,
)

WORKER = "tests"


@dataclass
class Hook:
    subscription_id: uuid.UUID
    tenant_id: uuid.UUID
    token: str

    @property
    def path(self) -> str:
        return f"/hooks/{self.token}"


async def add_connector(
    container: Container, tenant_id: uuid.UUID, manifest: dict[str, Any]
) -> None:
    """A tenant's own connector, published as version 1."""
    parse_manifest(manifest)
    async with container.unit_of_work(tenant_id) as uow:
        await uow.begin_write()
        connector = uow.connectors.add(
            Connector(code=manifest["id"], name=manifest["name"], draft=manifest, latest_version=1)
        )
        await uow.flush()
        uow.connectors.add_version(
            ConnectorVersion(connector_id=connector.id, version=1, manifest=manifest)
        )
        await uow.commit()


async def add_connection(
    container: Container,
    tenant_id: uuid.UUID,
    connector: str,
    *,
    settings: dict[str, Any] | None = None,
    secrets: dict[str, str] | None = None,
) -> uuid.UUID:
    sealed = None if not secrets else container.box.seal(orjson.dumps(secrets).decode())
    async with container.unit_of_work(tenant_id) as uow:
        await uow.begin_write()
        connection = uow.connections.add(
            Connection(
                name=connector,
                connector=connector,
                connector_version=1,
                settings=settings or {},
                secrets_sealed=sealed,
            )
        )
        await uow.commit()
    return connection.id


async def enable(
    container: Container,
    tenant_id: uuid.UUID,
    *,
    connector: str = "webhook",
    trigger: str = "delivery",
    settings: dict[str, Any] | None = None,
    connection_id: uuid.UUID | None = None,
    own_secrets: dict[str, str] | None = None,
) -> Hook:
    """A workflow on the trigger, enabled: its subscription started, its hook token given."""
    definition = {
        "name": "hooked",
        "trigger": {
            "connection_id": None if connection_id is None else str(connection_id),
            "connector": connector,
            "trigger": trigger,
            "settings": settings or {},
        },
        "steps": [
            {
                "kind": "create_case",
                "name": "open",
                "template": "question",
                "title": "{{ trigger_id }}",
            }
        ],
    }
    async with container.unit_of_work(tenant_id) as uow:
        await uow.begin_write()
        workflow = uow.workflows.add(
            Workflow(
                code=f"w{uuid.uuid4().hex[:10]}", name="hooked", draft=definition, latest_version=1
            )
        )
        await uow.flush()
        uow.workflows.add_version(
            WorkflowVersion(workflow_id=workflow.id, version=1, definition=definition)
        )
        subscription = uow.subscriptions.add(
            Subscription(
                workflow_id=workflow.id,
                connection_id=connection_id,
                trigger=trigger,
                settings=settings or {},
            )
        )
        await uow.flush()
        if own_secrets:
            instant.keep_secrets(subscription, container.box, own_secrets)
        manifest = await manifest_for(uow, connector, None)
        trigger_def = manifest.trigger(trigger)
        assert trigger_def is not None
        await subscriptions.start(uow, subscription, trigger_def, container.box)
        await uow.commit()
    token = instant.hook_token(subscription, container.box)
    assert token is not None
    return Hook(subscription.id, tenant_id, token)


async def disable(container: Container, hook: Hook) -> None:
    async with container.unit_of_work(hook.tenant_id) as uow:
        await uow.begin_write()
        subscription = await uow.subscriptions.get(hook.subscription_id)
        subscription.enabled, subscription.status = False, "disabled"
        await instant.stop(uow, subscription)
        await uow.commit()


async def subscription_of(container: Container, hook: Hook) -> Subscription:
    async with container.unit_of_work(hook.tenant_id) as uow:
        return await uow.subscriptions.get(hook.subscription_id)


async def pending_jobs(
    container: Container, tenant_id: uuid.UUID, kinds: Sequence[str]
) -> list[ScheduledJob]:
    async with container.unit_of_work(tenant_id) as uow:
        found = await uow.session.scalars(
            select(ScheduledJob)
            .where(ScheduledJob.kind.in_(list(kinds)), ScheduledJob.status == "pending")
            .order_by(ScheduledJob.due_at)
        )
        return list(found.all())


async def run_jobs(
    container: Container, tenant_id: uuid.UUID, *kinds: str, rounds: int = 10
) -> int:
    """Run the tenant's pending jobs of ``kinds``, whenever they are due, until none is left
    (or ``rounds`` passes); a job a handler schedules again is run in the next round."""
    handlers = job_handlers(container)
    ran = 0
    for _ in range(rounds):
        jobs = await pending_jobs(container, tenant_id, kinds)
        if not jobs:
            break
        for job in jobs:
            claimed = await _claim(container, job)
            if claimed is None:
                continue
            await handlers[job.kind](claimed)
            async with container.unit_of_work() as uow:
                await uow.begin_write()
                await uow.jobs.finish(claimed.id, WORKER, error=None, retry_at=None)
                await uow.commit()
            ran += 1
    return ran


async def _claim(container: Container, job: ScheduledJob) -> ScheduledJob | None:
    async with container.unit_of_work(job.tenant_id) as uow:
        await uow.begin_write()
        current = await uow.session.get(ScheduledJob, job.id, with_for_update=True)
        if current is None or current.status != "pending":
            return None
        current.status, current.lease_owner = "running", WORKER
        current.lease_until = utcnow() + timedelta(minutes=5)
        current.attempts += 1
        await uow.commit()
    return current


async def run_due_now(container: Container, tenant_id: uuid.UUID, kind: str) -> int:
    """Make the tenant's pending jobs of ``kind`` due now (a retry planned for later
    included), and run them once."""
    async with container.unit_of_work(tenant_id) as uow:
        await uow.begin_write()
        jobs = await uow.session.scalars(
            select(ScheduledJob).where(ScheduledJob.kind == kind, ScheduledJob.status == "pending")
        )
        for job in jobs:
            job.due_at = utcnow()
        await uow.commit()
    return await run_jobs(container, tenant_id, kind, rounds=1)
