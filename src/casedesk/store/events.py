"""Repositories of event delivery: the outbox, consumers' claims on events, dead letters."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any

from sqlalchemy import Select, func, or_, select, update

from casedesk.kit.clock import utcnow
from casedesk.store.dialects import insert_if_new
from casedesk.store.models import DeadLetter, OutboxEvent, ProcessedEvent
from casedesk.store.repository import Page, Repository
from casedesk.store.tenancy import ALL_TENANTS, bound_tenant
from casedesk.store.writes import insert_rows


class OutboxRepository:
    def __init__(self, session: Any) -> None:
        self.session = session

    async def pending(self, *, limit: int) -> list[OutboxEvent]:
        """Committed events not yet on the bus, oldest first, of every tenant (the relay)."""
        statement = (
            select(OutboxEvent)
            .where(OutboxEvent.published_at.is_(None), OutboxEvent.dead_at.is_(None))
            .order_by(OutboxEvent.id)
            .limit(limit)
            .execution_options(**{ALL_TENANTS: True})
        )
        return list((await self.session.scalars(statement)).all())

    async def mark_published(self, ids: Sequence[int]) -> None:
        """Mark events delivered and give them their feed positions, after every position
        given so far and in sequence order. Only the relay calls this, one batch at a time
        under its lease, so positions become visible in the order they grow; a second relay
        that raced it would collide on the unique position and retry its batch."""
        if not ids:
            return
        highest = await self.top_position()
        # Sequences are unique, so sequence + one offset keeps them unique and in order.
        offset = (highest or 0) - min(ids) + 1
        await self.session.execute(
            update(OutboxEvent)
            .where(OutboxEvent.id.in_(ids), OutboxEvent.published_at.is_(None))
            .values(published_at=utcnow(), position=OutboxEvent.id + offset)
            .execution_options(**{ALL_TENANTS: True, "synchronize_session": False})
        )

    async def mark_dead(self, event_id: int) -> None:
        """Move an event the relay cannot publish out of its way."""
        await self.session.execute(
            update(OutboxEvent)
            .where(OutboxEvent.id == event_id)
            .values(dead_at=utcnow())
            .execution_options(**{ALL_TENANTS: True, "synchronize_session": False})
        )

    async def dead_event(self, event_id: uuid.UUID) -> OutboxEvent | None:
        """The tenant's event of that id, if the relay moved it aside."""
        found: OutboxEvent | None = await self.session.scalar(
            select(OutboxEvent).where(
                OutboxEvent.event_id == event_id, OutboxEvent.dead_at.is_not(None)
            )
        )
        return found

    async def top_position(self) -> int | None:
        """The highest feed position given so far, of every tenant."""
        top: int | None = await self.session.scalar(
            select(func.max(OutboxEvent.position)).execution_options(**{ALL_TENANTS: True})
        )
        return top

    async def of_subject(
        self, subject_id: uuid.UUID, *, after: int, up_to: int, types: Sequence[str]
    ) -> list[OutboxEvent]:
        """The subject's events of ``types`` with sequences in (after, up_to], in order."""
        statement = (
            select(OutboxEvent)
            .where(
                OutboxEvent.subject_id == subject_id,
                OutboxEvent.id > after,
                OutboxEvent.id <= up_to,
                OutboxEvent.type.in_(types),
            )
            .order_by(OutboxEvent.id)
        )
        return list((await self.session.scalars(statement)).all())

    def add_all(self, events: Sequence[OutboxEvent]) -> None:
        self.session.add_all(events)

    async def write(self, events: Sequence[OutboxEvent]) -> None:
        """Insert the events now, in one statement; their sequence is never read back."""
        if events:
            await insert_rows(self.session, events, attach=False)

    async def after(
        self, after: int, *, limit: int, types: Sequence[str] = ()
    ) -> list[OutboxEvent]:
        """The feed: delivered events past the position ``after``, in position order."""
        statement: Select[OutboxEvent] = select(OutboxEvent).where(
            OutboxEvent.position.is_not(None), OutboxEvent.position > after
        )
        if types:
            statement = statement.where(OutboxEvent.type.in_(types))
        statement = statement.order_by(OutboxEvent.position).limit(limit)
        return list((await self.session.scalars(statement)).all())


class ProcessedEventRepository:
    def __init__(self, session: Any) -> None:
        self.session = session

    async def claim(self, group: str, event_id: uuid.UUID) -> bool:
        """Record the event as processed by ``group`` in this transaction, in one statement;
        False when it already was. A concurrent transaction holding the same claim makes this
        one wait for its outcome rather than both doing the work."""
        values = {
            "consumer_group": group,
            "event_id": event_id,
            "processed_at": utcnow(),
            "tenant_id": bound_tenant(self.session.sync_session),
        }
        return await insert_if_new(self.session, ProcessedEvent, values)

    def mark(self, group: str, event_id: uuid.UUID) -> None:
        self.session.add(ProcessedEvent(consumer_group=group, event_id=event_id))


class DeadLetterRepository(Repository[DeadLetter]):
    model = DeadLetter
    label = "dead letter"

    async def of_event(
        self, group: str, event_id: uuid.UUID, *, tenant_id: uuid.UUID
    ) -> DeadLetter | None:
        """The group's dead letter of the event, looked up from work bound to no tenant."""
        found: DeadLetter | None = await self.session.scalar(
            select(DeadLetter)
            .where(
                DeadLetter.tenant_id == tenant_id,
                DeadLetter.consumer_group == group,
                DeadLetter.event_id == event_id,
            )
            .execution_options(**{ALL_TENANTS: True})
        )
        return found

    async def exists(self, group: str, event_id: uuid.UUID) -> bool:
        found = await self.session.scalar(
            select(DeadLetter.id).where(
                DeadLetter.consumer_group == group, DeadLetter.event_id == event_id
            )
        )
        return found is not None

    async def list_page(
        self,
        *,
        group: str | None,
        replay_status: str | None = None,
        limit: int,
        cursor: str | None,
    ) -> Page[DeadLetter]:
        """``replay_status`` "never" means no replay was asked for."""
        statement = select(DeadLetter)
        if group is not None:
            statement = statement.where(DeadLetter.consumer_group == group)
        if replay_status == "never":
            statement = statement.where(DeadLetter.replay_status.is_(None))
        elif replay_status is not None:
            statement = statement.where(DeadLetter.replay_status == replay_status)
        return await self.page(statement, limit=limit, cursor=cursor)

    async def replayable(self, *, group: str | None, limit: int) -> list[DeadLetter]:
        """Dead letters still dead: never replayed, or whose last replay failed."""
        statement = select(DeadLetter).where(
            or_(DeadLetter.replay_status.is_(None), DeadLetter.replay_status == "failed")
        )
        if group is not None:
            statement = statement.where(DeadLetter.consumer_group == group)
        statement = statement.order_by(DeadLetter.id).limit(limit)
        return list((await self.session.scalars(statement)).all())
