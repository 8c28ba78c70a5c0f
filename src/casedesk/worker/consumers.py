"""Consumer groups: handlers of bus messages that never act twice on one event.

Each delivery opens a unit of work bound to the event's tenant, skips the event when the
group has processed it, records it as processed, and runs the handler in that same
transaction, so the record and the handler's effects commit together. Dead letters are
kept in SQL, where ``GET /api/v1/dead-letters`` shows them.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass

import orjson
from prometheus_client import Counter

from casedesk.kit.logging import get_logger
from casedesk.store.bus.base import Bus, Message, Subscription
from casedesk.store.database import Database
from casedesk.store.models import DeadLetter
from casedesk.store.unit_of_work import UnitOfWork

GroupHandler = Callable[[Message, UnitOfWork | None], Awaitable[None]]

CONSUMED = Counter("casedesk_consumer_events_total", "Events handled", ["group"])
SKIPPED = Counter("casedesk_consumer_duplicates_total", "Redelivered events skipped", ["group"])
DEAD = Counter("casedesk_consumer_dead_letters_total", "Events given up on", ["group"])
log = get_logger(__name__)


@dataclass(frozen=True, slots=True)
class ConsumerGroup:
    name: str
    types: Sequence[str]
    handler: GroupHandler
    prefetch: int = 16
    max_attempts: int = 5
    own_transactions: bool = False
    """The handler keeps its own processed-event records and commits (it gets no unit of work)."""
    wants: Callable[[Message], Awaitable[bool]] | None = None
    """A cheap look before the transaction: False skips the event (no record is written)."""


class Consumers:
    def __init__(self, database: Database, groups: Mapping[str, ConsumerGroup]) -> None:
        self.database = database
        self.groups = groups

    async def subscribe_all(self, bus: Bus) -> None:
        for group in self.groups.values():
            subscription = Subscription(
                group=group.name,
                types=group.types,
                handler=self._once(group),
                prefetch=group.prefetch,
                max_attempts=group.max_attempts,
            )
            await bus.subscribe(subscription, self.dead_letter)

    def handler_for(self, name: str) -> Callable[[Message], Awaitable[None]] | None:
        """The group's delivery handler, as the bus calls it; None for an unknown group."""
        group = self.groups.get(name)
        return None if group is None else self._once(group)

    def _once(self, group: ConsumerGroup) -> Callable[[Message], Awaitable[None]]:
        async def handle(message: Message) -> None:
            if group.wants is not None and not await group.wants(message):
                SKIPPED.labels(group.name).inc()
                return
            if group.own_transactions:
                await group.handler(message, None)
                CONSUMED.labels(group.name).inc()
                return
            event_id = uuid.UUID(message.id)
            async with UnitOfWork(self.database, uuid.UUID(message.tenant_id)) as uow:
                await uow.begin_write()
                if not await uow.processed.claim(group.name, event_id):
                    SKIPPED.labels(group.name).inc()
                    return
                await group.handler(message, uow)
                await uow.commit()
            CONSUMED.labels(group.name).inc()

        return handle

    async def dead_letter(self, group: str, message: Message, error: str) -> None:
        """Keep a message a group gave up on, once, for people to look at."""
        DEAD.labels(group).inc()
        log.error("event dead-lettered", group=group, event_id=message.id, error=error)
        async with UnitOfWork(self.database, uuid.UUID(message.tenant_id)) as uow:
            await uow.begin_write()
            if await uow.dead_letters.exists(group, uuid.UUID(message.id)):
                return  # the broker handed the same dead message over again
            uow.dead_letters.add(
                DeadLetter(
                    consumer_group=group,
                    event_id=uuid.UUID(message.id),
                    type=message.type,
                    sequence=message.sequence,
                    attempts=message.attempt,
                    error=error[:10_000],
                    envelope=orjson.loads(message.body),
                )
            )
            await uow.commit()
