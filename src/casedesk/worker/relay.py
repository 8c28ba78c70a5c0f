"""The outbox relay: committed events go to the bus in outbox order, once the bus confirms.

Only the holder of the ``casedesk.relay`` lease relays, so events of one case reach the bus
in the order their transactions wrote them. The bus is called outside any transaction, so
handlers of the in-process bus can write; events are marked published only afterwards,
and a crash in between means they are published again (consumers skip what they saw).

Failure policy: a bus that is down leaves the events waiting. An event that cannot be put
on the wire at all (its data does not serialise, or it is too large for any broker) is a
poison event: it is moved aside — marked dead in the outbox and kept as a dead letter of the
``relay`` group, with its error — and the events behind it go on. Any other error of a batch
is logged and counted, and the batch is tried again after a pause: the loop never ends on an
error.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Sequence
from dataclasses import dataclass

import orjson
from prometheus_client import Counter, Gauge

from casedesk.domain.events import envelope
from casedesk.kit.aio import pause
from casedesk.kit.clock import utcnow
from casedesk.kit.logging import get_logger
from casedesk.store.bus.base import Bus, BusUnavailable, Message
from casedesk.store.database import Database
from casedesk.store.leases import Lease
from casedesk.store.models import DeadLetter, OutboxEvent
from casedesk.store.unit_of_work import UnitOfWork

GROUP = "relay"
"""The dead letters of events the relay could not publish carry this group."""
MAX_MESSAGE_BYTES = 4 * 1024 * 1024
"""Larger events are refused by brokers (RabbitMQ's default limit is 16 MiB, often lowered)."""
RELAYED = Counter("casedesk_relay_events_total", "Outbox events published to the bus")
RELAY_FAILURES = Counter(
    "casedesk_relay_failures_total", "Relay batches that failed, by reason", ["reason"]
)
POISONED = Counter("casedesk_relay_poison_events_total", "Events the relay moved aside")
RELAY_LEADER = Gauge("casedesk_relay_leader", "1 while this process holds the relay lease")
log = get_logger(__name__)


class Unpublishable(ValueError):
    """The event cannot be put on the wire, whatever the state of the bus."""


def to_message(event: OutboxEvent) -> Message:
    """The event as the bus carries it; raises Unpublishable for a poison event."""
    try:
        body = orjson.dumps(envelope(event))
    except (orjson.JSONEncodeError, TypeError, ValueError) as exc:
        raise Unpublishable(f"its data cannot be serialised as JSON: {exc}") from None
    if len(body) > MAX_MESSAGE_BYTES:
        raise Unpublishable(f"it is {len(body)} bytes; a message may have {MAX_MESSAGE_BYTES}")
    return Message(
        id=str(event.event_id),
        type=event.type,
        tenant_id=str(event.tenant_id),
        subject=str(event.subject_id) if event.subject_id else None,
        subject_type=event.subject_type,
        sequence=event.id,
        traceparent=event.traceparent,
        body=body,
    )


@dataclass(frozen=True, slots=True)
class _Poison:
    event: OutboxEvent
    error: str


def dead_envelope(event: OutboxEvent, error: str) -> dict[str, object]:
    """What a poison event's dead letter keeps: its attributes; the data stays in the outbox."""
    return envelope(event) | {"data": None, "relay_error": error}


class Relay:
    def __init__(
        self,
        database: Database,
        bus: Bus,
        *,
        batch_size: int = 200,
        idle_seconds: float = 0.05,
        retry_seconds: float = 1.0,
    ) -> None:
        self.database = database
        self.bus = bus
        self.batch_size = batch_size
        self.idle_seconds = idle_seconds
        self.retry_seconds = retry_seconds
        self.lease = Lease(database, "casedesk.relay")

    async def relay_once(self) -> int:
        """Publish one batch of pending events; returns how many were settled (published or
        moved aside). Raises BusUnavailable, and whatever else went wrong with the batch."""
        async with UnitOfWork(self.database) as uow:
            events = await uow.outbox.pending(limit=self.batch_size)
        if not events:
            return 0
        messages: list[Message] = []
        published: list[int] = []
        poisoned: list[_Poison] = []
        for event in events:
            try:
                messages.append(to_message(event))
                published.append(event.id)
            except Unpublishable as exc:
                poisoned.append(_Poison(event, str(exc)))
        if messages:
            try:
                await self.bus.publish(messages)
            except BusUnavailable:
                RELAY_FAILURES.labels("bus_unavailable").inc()
                raise
        await self._settle(published, poisoned)
        RELAYED.inc(len(published))
        return len(events)

    async def _settle(self, published: Sequence[int], poisoned: Sequence[_Poison]) -> None:
        async with UnitOfWork(self.database) as uow:
            await uow.begin_write()
            await uow.outbox.mark_published(published)
            for poison in poisoned:
                await _move_aside(uow, poison)
            await uow.commit()
        for poison in poisoned:
            POISONED.inc()
            log.error(
                "event moved aside: it cannot be published",
                event_id=str(poison.event.event_id),
                type=poison.event.type,
                tenant_id=str(poison.event.tenant_id),
                error=poison.error,
            )

    async def run(self, stop: asyncio.Event) -> None:
        """Relay until ``stop`` is set; the batch in hand is finished first."""
        try:
            while not stop.is_set():
                if not await self._lead():
                    await pause(stop, self.retry_seconds)
                    continue
                try:
                    moved = await self.relay_once()
                except BusUnavailable as exc:
                    log.warning("bus unavailable; events wait in the outbox", error=str(exc))
                    await pause(stop, self.retry_seconds)
                    continue
                except Exception:  # the failure policy: log, count, try the batch again
                    RELAY_FAILURES.labels("error").inc()
                    log.exception("relaying a batch failed; trying again")
                    await pause(stop, self.retry_seconds)
                    continue
                if moved < self.batch_size:
                    await pause(stop, self.idle_seconds)
        finally:
            RELAY_LEADER.set(0)
            await self.lease.release()

    async def _lead(self) -> bool:
        """Whether this process holds the relay lease now; a database error means no."""
        try:
            leading = await self.lease.try_acquire() and await self.lease.alive()
        except Exception:
            log.exception("the relay lease could not be checked")
            leading = False
        RELAY_LEADER.set(1 if leading else 0)
        return leading


async def _move_aside(uow: UnitOfWork, poison: _Poison) -> None:
    """Mark the event dead and keep it as a dead letter, or update the one kept earlier."""
    event = poison.event
    await uow.outbox.mark_dead(event.id)
    kept = await uow.dead_letters.of_event(GROUP, event.event_id, tenant_id=event.tenant_id)
    if kept is not None:  # replayed, and still cannot be published
        kept.error, kept.replay_status, kept.replay_error = poison.error, "failed", poison.error
        kept.replayed_at = utcnow()
        return
    uow.dead_letters.add(
        DeadLetter(
            tenant_id=event.tenant_id,
            consumer_group=GROUP,
            event_id=event.event_id,
            type=event.type,
            sequence=event.id,
            attempts=1,
            error=poison.error,
            envelope=dead_envelope(event, poison.error),
        )
    )


async def hand_back(uow: UnitOfWork, event_id: uuid.UUID) -> str | None:
    """Give a dead event back to the relay; why not, if it still cannot be published."""
    event = await uow.outbox.dead_event(event_id)
    if event is None:
        return "the event is no longer in the outbox (it was purged); discard the dead letter"
    try:
        to_message(event)
    except Unpublishable as exc:
        return f"the event still cannot be published: {exc}"
    event.dead_at = None
    return None
