"""The ``mailbox.poll`` job: planned when a mailbox is made, run by the worker's handler,
planned again after each run (later after failures), called off when the mailbox is
disabled or deleted."""

from __future__ import annotations

import uuid
from datetime import timedelta

from casedesk.activities.mailboxes import POLL, poll_key
from casedesk.bootstrap import Container, job_handlers
from casedesk.kit.clock import utcnow
from casedesk.store.jobs import PLANNED_AGAIN
from casedesk.store.models import ScheduledJob
from tests.support.dovecot import message
from tests.support.mailboxes import MailDesk


async def _job(container: Container, tenant_id: uuid.UUID, mailbox_id: str) -> ScheduledJob:
    async with container.unit_of_work(tenant_id) as uow:
        job = await uow.jobs.find(poll_key(uuid.UUID(mailbox_id)))
    assert job is not None
    return job


async def test_the_job_polls_the_mailbox_and_plans_the_next_run(
    mail_desk: MailDesk, container: Container
) -> None:
    tenant_id = mail_desk.desk.tenant.id
    created = await mail_desk.create(poll_seconds=120)
    job = await _job(container, tenant_id, created["id"])
    assert job.kind == POLL
    assert job.status == "pending"
    assert job.due_at <= utcnow()

    mail_desk.append(message("By the worker"))
    handler = job_handlers(container)[POLL]
    assert await handler(job) == PLANNED_AGAIN
    assert [c["title"] for c in await mail_desk.cases()] == ["By the worker"]
    planned = await _job(container, tenant_id, created["id"])
    assert planned.status == "pending"
    wait = planned.due_at - utcnow()
    assert timedelta(seconds=100) < wait <= timedelta(seconds=120)


async def test_failed_runs_back_off_and_a_disabled_mailbox_is_not_polled(
    mail_desk: MailDesk, container: Container
) -> None:
    tenant_id = mail_desk.desk.tenant.id
    created = await mail_desk.create(poll_seconds=60, password="wrong")
    handler = job_handlers(container)[POLL]
    await handler(await _job(container, tenant_id, created["id"]))
    first = (await _job(container, tenant_id, created["id"])).due_at - utcnow()
    await handler(await _job(container, tenant_id, created["id"]))
    second = (await _job(container, tenant_id, created["id"])).due_at - utcnow()
    assert timedelta(seconds=100) < first <= timedelta(seconds=120)
    assert timedelta(seconds=220) < second <= timedelta(seconds=240)
    assert "AUTHENTICATIONFAILED" in (await mail_desk.read())["last_error"]

    url = f"/api/v1/mailboxes/{created['id']}"
    disabled = await mail_desk.http.patch(url, json={"enabled": False}, headers=mail_desk.headers)
    assert disabled.status_code == 200
    job = await _job(container, tenant_id, created["id"])
    assert job.status == "cancelled"
    assert await handler(job) is None  # a run that finds it disabled does nothing

    await mail_desk.http.delete(url, headers=mail_desk.headers)
    assert (await _job(container, tenant_id, created["id"])).status == "cancelled"
