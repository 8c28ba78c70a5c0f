"""Housekeeping deletes what outlived the retention, in slices, and never pending work."""

from __future__ import annotations

import asyncio
import uuid
from datetime import datetime, timedelta

from sqlalchemy import func, select, update

from casedesk.bootstrap import Container, build
from casedesk.kit.clock import utcnow
from casedesk.kit.ids import uuid7
from casedesk.store import migrate
from casedesk.store.database import nullpool_engine
from casedesk.store.models import (
    IdempotencyRecord,
    OutboxEvent,
    ProcessedEvent,
    ScheduledJob,
    WebhookAttempt,
    WebhookDelivery,
    WebhookSubscription,
)
from casedesk.worker.housekeeping import Housekeeping
from tests.conftest import Tenants, settings_for
from tests.support.backends import ScratchDatabase
from tests.support.cases import Desk

KEEP = timedelta(days=30)
IDEMPOTENCY = timedelta(hours=24)


def _event(published: datetime | None) -> OutboxEvent:
    return OutboxEvent(
        event_id=uuid7(),
        type="case.created",
        source="s",
        data={},
        traceparent=f"00-{uuid.uuid4().hex}-{uuid.uuid4().hex[:16]}-01",
        published_at=published,
    )


def _delivery(hook: WebhookSubscription, status: str, updated: datetime) -> WebhookDelivery:
    return WebhookDelivery(
        subscription_id=hook.id,
        message_id=f"msg_{uuid.uuid4().hex}",
        event_type="case.created",
        payload={},
        status=status,
        attempts=1,
        created_at=updated,
        updated_at=updated,
    )


async def _delivered_at(container: Container, tenant: uuid.UUID, moment: datetime) -> uuid.UUID:
    """An event relayed as the relay does (so it has its feed position), dated ``moment``."""
    await _deliver(container, tenant)
    async with container.unit_of_work(tenant) as uow:
        newest = max(await uow.outbox.after(0, limit=10_000), key=lambda e: e.position or 0)
    async with container.unit_of_work(tenant) as uow:
        await uow.begin_write()
        await uow.session.execute(
            update(OutboxEvent).where(OutboxEvent.id == newest.id).values(published_at=moment)
        )
        await uow.commit()
    return newest.event_id


async def _seed(container: Container, tenant: uuid.UUID) -> dict[str, uuid.UUID]:
    """Old and recent rows of every swept kind; returns the ids of the ones that must stay."""
    now = utcnow()
    old = [now - KEEP - timedelta(hours=hours) for hours in (1, 5, 30)]  # several slices
    for moment in old:
        await _delivered_at(container, tenant, moment)
    recent = await _delivered_at(container, tenant, now - timedelta(days=1))
    async with container.unit_of_work(tenant) as uow:
        await uow.begin_write()
        for moment in old:
            uow.session.add(
                ProcessedEvent(consumer_group="automation", event_id=uuid7(), processed_at=moment)
            )
        undelivered = _event(None)
        undelivered.time = old[2]
        uow.outbox.add_all([undelivered])
        episode = uuid7()
        uow.session.add(
            ProcessedEvent(
                consumer_group=f"timerule:{uuid7()}", event_id=episode, processed_at=old[2]
            )
        )
        fresh_claim = uuid7()
        uow.session.add(
            ProcessedEvent(consumer_group="sla", event_id=fresh_claim, processed_at=now)
        )
        hook = WebhookSubscription(
            name="h", url="https://example.com/h", events=[], secret_sealed="x"
        )
        uow.webhooks.add(hook)
        await uow.flush()
        finished = [_delivery(hook, status, old[1]) for status in ("succeeded", "failed")]
        still_trying = _delivery(hook, "pending", old[2])
        recent_log = _delivery(hook, "failed", now - timedelta(days=2))
        for delivery in (*finished, still_trying, recent_log):
            uow.deliveries.add(delivery)
        await uow.flush()
        uow.deliveries.add_attempt(
            WebhookAttempt(delivery_id=finished[0].id, number=1, duration_ms=5, trace_id="0" * 32)
        )
        finished_jobs = [_job(status, old[n % 3]) for n, status in enumerate(FINISHED * 2)]
        waiting_jobs = [_job(status, old[2]) for status in ("pending", "running")]
        recent_job = _job("done", now - timedelta(days=2))
        uow.session.add_all([*finished_jobs, *waiting_jobs, recent_job])
        stale_keys = [_record(now - IDEMPOTENCY - timedelta(hours=h)) for h in (1, 3, 50)]
        fresh_key = _record(now - IDEMPOTENCY + timedelta(hours=1))
        uow.session.add_all([*stale_keys, fresh_key])
        await uow.commit()
    return {
        "undelivered": undelivered.event_id,
        "recent": recent,
        "episode": episode,
        "fresh_claim": fresh_claim,
        "still_trying": still_trying.id,
        "recent_log": recent_log.id,
        "waiting_job_0": waiting_jobs[0].id,
        "waiting_job_1": waiting_jobs[1].id,
        "recent_job": recent_job.id,
        "fresh_key": fresh_key.id,
    }


FINISHED = ("done", "cancelled", "failed")


def _job(status: str, updated: datetime) -> ScheduledJob:
    """A job last changed at ``updated``; due (and leased) far ahead, so that no scheduler
    of another test claims it."""
    later = utcnow() + timedelta(days=365)
    return ScheduledJob(
        kind="housekeeping.seed",
        key=f"k-{uuid.uuid4().hex}",
        due_at=later,
        payload={},
        traceparent=f"00-{uuid.uuid4().hex}-{uuid.uuid4().hex[:16]}-01",
        status=status,
        attempts=1,
        lease_owner="elsewhere" if status == "running" else None,
        lease_until=later if status == "running" else None,
        created_at=updated,
        updated_at=updated,
    )


def _record(created: datetime) -> IdempotencyRecord:
    return IdempotencyRecord(
        scope="cases.create",
        key=f"key-{uuid.uuid4().hex}",
        fingerprint="0" * 64,
        status_code=201,
        response={},
        created_at=created,
    )


async def _left(container: Container, tenant: uuid.UUID) -> dict[str, set[uuid.UUID]]:
    async with container.unit_of_work(tenant) as uow:
        events = set((await uow.session.scalars(select(OutboxEvent.event_id))).all())
        claims = set((await uow.session.scalars(select(ProcessedEvent.event_id))).all())
        deliveries = set((await uow.session.scalars(select(WebhookDelivery.id))).all())
        attempts = await uow.session.scalar(select(func.count()).select_from(WebhookAttempt))
        jobs = set((await uow.session.scalars(select(ScheduledJob.id))).all())
        keys = set((await uow.session.scalars(select(IdempotencyRecord.id))).all())
    return {
        "events": events,
        "claims": claims,
        "deliveries": deliveries,
        "attempts": {attempts},
        "jobs": jobs,
        "keys": keys,
    }


async def test_a_sweep_deletes_only_what_outlived_the_retention(
    container: Container, tenants: Tenants
) -> None:
    tenant = (await tenants.create()).id
    kept = await _seed(container, tenant)
    swept = await Housekeeping(container.database, keep=KEEP).sweep_once()

    left = await _left(container, tenant)
    assert left["events"] == {kept["undelivered"], kept["recent"]}
    assert left["claims"] == {kept["episode"], kept["fresh_claim"]}
    assert left["deliveries"] == {kept["still_trying"], kept["recent_log"]}
    assert left["attempts"] == {0}  # went with its delivery
    assert left["jobs"] == {kept["waiting_job_0"], kept["waiting_job_1"], kept["recent_job"]}
    assert left["keys"] == {kept["fresh_key"]}
    assert swept["outbox_events"] >= 3
    assert swept["processed_events"] >= 3
    assert swept["webhook_deliveries"] >= 2
    assert swept["scheduled_jobs"] >= 6
    assert swept["idempotency_records"] >= 3
    assert await Housekeeping(container.database, keep=KEEP).sweep_once() == {
        "outbox_events": 0,
        "processed_events": 0,
        "webhook_deliveries": 0,
        "scheduled_jobs": 0,
        "idempotency_records": 0,
    }


async def test_without_an_event_retention_only_idempotency_records_expire(
    container: Container, tenants: Tenants
) -> None:
    tenant = (await tenants.create()).id
    kept = await _seed(container, tenant)
    before = await _left(container, tenant)
    swept = await Housekeeping(container.database, keep=None, idempotency=IDEMPOTENCY).sweep_once()
    left = await _left(container, tenant)
    assert set(swept) == {"idempotency_records"}
    assert left["keys"] == {kept["fresh_key"]}
    assert {k: v for k, v in left.items() if k != "keys"} == {
        k: v for k, v in before.items() if k != "keys"
    }


async def test_an_idempotency_key_reused_after_its_record_expired_is_a_new_request(
    container: Container, desk: Desk
) -> None:
    headers = desk.headers | {"Idempotency-Key": "reused-later"}
    body = {"template": "question", "title": "Once", "form": {"product": "p"}}
    first = await desk.http.post("/api/v1/cases", json=body, headers=headers)
    replay = await desk.http.post("/api/v1/cases", json=body, headers=headers)
    assert (first.status_code, replay.status_code) == (201, 201)
    assert replay.headers["Idempotent-Replayed"] == "true"
    async with container.unit_of_work(desk.tenant.id) as uow:
        await uow.begin_write()
        await uow.session.execute(
            update(IdempotencyRecord).values(created_at=utcnow() - IDEMPOTENCY - timedelta(hours=1))
        )
        await uow.commit()
    await Housekeeping(container.database, keep=None, idempotency=IDEMPOTENCY).sweep_once()
    again = await desk.http.post("/api/v1/cases", json=body, headers=headers)
    assert again.status_code == 201
    assert "Idempotent-Replayed" not in again.headers
    assert again.json()["id"] != first.json()["id"]


async def test_positions_never_go_back_when_every_old_event_is_swept(
    empty_database: ScratchDatabase,
) -> None:
    """The newest delivered event stays, so a reader's cursor still sees what comes next."""
    engine = nullpool_engine(empty_database.url)
    try:
        await migrate.upgrade(engine)
    finally:
        await engine.dispose()
    container = build(settings_for(empty_database.url))
    try:
        tenant = (await Tenants(container).create()).id
        for _ in range(3):
            await _deliver(container, tenant)
        async with container.unit_of_work(tenant) as uow:
            cursor = max(e.position or 0 for e in await uow.outbox.after(0, limit=10))
        async with container.unit_of_work(tenant) as uow:
            await uow.begin_write()
            await uow.session.execute(
                update(OutboxEvent).values(published_at=utcnow() - KEEP - timedelta(days=1))
            )
            await uow.commit()
        swept = await Housekeeping(container.database, keep=KEEP).sweep_once()
        assert swept["outbox_events"] == 2
        await _deliver(container, tenant)
        async with container.unit_of_work(tenant) as uow:
            after = await uow.outbox.after(cursor, limit=10)
        assert len(after) == 1
    finally:
        await container.close()


async def _deliver(container: Container, tenant: uuid.UUID) -> None:
    event = _event(None)
    async with container.unit_of_work(tenant) as uow:
        await uow.begin_write()
        uow.outbox.add_all([event])
        await uow.commit()
    # This event only: others left pending in the shared database are not this test's.
    async with container.unit_of_work() as uow:
        await uow.begin_write()
        await uow.outbox.mark_published([event.id])
        await uow.commit()


async def test_two_processes_sweeping_at_once_take_turns(
    container: Container, tenants: Tenants
) -> None:
    tenant = (await tenants.create()).id
    await _seed(container, tenant)
    one = Housekeeping(container.database, keep=KEEP, every=timedelta(hours=1))
    two = Housekeeping(container.database, keep=KEEP, every=timedelta(hours=1))
    stop = asyncio.Event()
    runs = [asyncio.create_task(one.run(stop)), asyncio.create_task(two.run(stop))]
    deadline = asyncio.get_running_loop().time() + 10
    while len((await _left(container, tenant))["claims"]) > 2:
        assert asyncio.get_running_loop().time() < deadline, "nothing was swept"
        await asyncio.sleep(0.05)
    stop.set()
    await asyncio.gather(*runs)
    assert len((await _left(container, tenant))["events"]) == 2
