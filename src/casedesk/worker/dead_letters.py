"""The job that replays a dead letter: its group's handler gets the kept event once more.

The handler is the one the bus calls, with the consumer's processed-event check, so an event
the group had handled in the meantime is not acted on twice. Success or failure is recorded
on the dead letter; a failed replay is not retried by itself, the admin asks again. A worker
that dies mid-replay loses its job lease and the replay runs again, harmlessly, elsewhere.
"""

from __future__ import annotations

import uuid

import orjson

from casedesk.domain.events import subject_type_of
from casedesk.kit.clock import utcnow
from casedesk.kit.logging import get_logger
from casedesk.store.bus.base import Message
from casedesk.store.database import Database
from casedesk.store.models import DeadLetter, ScheduledJob
from casedesk.store.unit_of_work import UnitOfWork
from casedesk.worker.consumers import Consumers
from casedesk.worker.relay import GROUP as RELAY_GROUP
from casedesk.worker.relay import hand_back

log = get_logger(__name__)


def message_of(dead: DeadLetter) -> Message:
    """The bus message the dead letter was made from, as a first delivery."""
    envelope = dead.envelope
    return Message(
        id=str(dead.event_id),
        type=dead.type,
        tenant_id=str(dead.tenant_id),
        subject=envelope.get("subject"),
        sequence=dead.sequence,
        traceparent=str(envelope.get("traceparent") or ""),
        body=orjson.dumps(envelope),
        subject_type=subject_type_of(envelope),
    )


class DeadLetterReplay:
    def __init__(self, database: Database, consumers: Consumers) -> None:
        self.database = database
        self.consumers = consumers

    async def run_job(self, job: ScheduledJob) -> None:
        dead_letter_id = uuid.UUID(job.payload["dead_letter_id"])
        async with UnitOfWork(self.database, job.tenant_id) as uow:
            dead = await uow.dead_letters.find(dead_letter_id)
        if dead is None or dead.replay_status != "pending":
            return  # discarded, or already replayed by an earlier run of this job
        error = await self._replay(dead)
        async with UnitOfWork(self.database, job.tenant_id) as uow:
            await uow.begin_write()
            kept = await uow.dead_letters.find(dead_letter_id)
            if kept is not None:
                kept.replay_status = "failed" if error else "succeeded"
                kept.replayed_at = utcnow()
                kept.replay_error = error
            await uow.commit()

    async def _replay(self, dead: DeadLetter) -> str | None:
        if dead.consumer_group == RELAY_GROUP:
            return await self._hand_back(dead)
        handler = self.consumers.handler_for(dead.consumer_group)
        if handler is None:
            return (
                f"no consumer group {dead.consumer_group!r} runs in this version of casedesk; "
                "discard the dead letter"
            )
        try:
            await handler(message_of(dead))
        except Exception as exc:  # recorded for the admin, who decides what comes next
            log.warning("dead letter replay failed", dead_letter=str(dead.id), error=repr(exc))
            return repr(exc)[:10_000]
        log.info("dead letter replayed", dead_letter=str(dead.id), group=dead.consumer_group)
        return None

    async def _hand_back(self, dead: DeadLetter) -> str | None:
        """An event the relay moved aside goes back to it, if it can be published now."""
        async with UnitOfWork(self.database, dead.tenant_id) as uow:
            await uow.begin_write()
            refused = await hand_back(uow, dead.event_id)
            await uow.commit()
        return refused
