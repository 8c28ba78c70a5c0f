"""Dead letters: replay an event a consumer group gave up on, or discard it.

A replay is a scheduled job, so it runs in a worker, which has the consumer groups: the job
hands the kept envelope to the group's handler once, the way the bus would have, and records
whether it succeeded. Consumers remember what they processed, so a replay never makes a
group act twice on an event it had already handled.
"""

from __future__ import annotations

import uuid

from casedesk.domain.identity.principal import Principal
from casedesk.domain.identity.roles import Role
from casedesk.kit.clock import utcnow
from casedesk.kit.errors import Conflict
from casedesk.kit.tracing import trace_or_new
from casedesk.store.models import DeadLetter
from casedesk.store.unit_of_work import UnitOfWork

REPLAY = "dead_letter.replay"
MAX_BULK_REPLAY = 1000


def replay_key(dead_letter_id: uuid.UUID) -> str:
    return f"dead-letter:{dead_letter_id}"


async def request_replay(
    uow: UnitOfWork, actor: Principal, dead_letter_id: uuid.UUID
) -> DeadLetter:
    """Hand the event to its group again, once, as soon as a worker is free."""
    actor.require(Role.ADMIN, "replaying a dead letter")
    await uow.begin_write()
    dead = await uow.dead_letters.get(dead_letter_id)
    if dead.replay_status == "succeeded":
        raise Conflict(
            f"this dead letter was already replayed successfully at {dead.replayed_at}; "
            "discard it with DELETE when you no longer need it",
            field="replay_status",
        )
    # Asking again while a replay is pending moves its job to now: a replay whose job was
    # lost (no worker ran it, or its worker died for good) is never stuck.
    await _schedule(uow, dead)
    await uow.commit()
    return dead


async def request_replays(
    uow: UnitOfWork, actor: Principal, *, group: str | None, limit: int
) -> list[DeadLetter]:
    """Replay every dead letter still dead (never replayed, or failed again), oldest first."""
    actor.require(Role.ADMIN, "replaying dead letters")
    await uow.begin_write()
    chosen = await uow.dead_letters.replayable(group=group, limit=limit)
    for dead in chosen:
        await _schedule(uow, dead)
    await uow.commit()
    return chosen


async def discard(uow: UnitOfWork, actor: Principal, dead_letter_id: uuid.UUID) -> None:
    """Forget a dead letter; a replay that was asked for and has not run is called off."""
    actor.require(Role.ADMIN, "discarding a dead letter")
    await uow.begin_write()
    dead = await uow.dead_letters.get(dead_letter_id)
    await uow.jobs.cancel(replay_key(dead.id))
    await uow.dead_letters.delete(dead)
    await uow.commit()


async def _schedule(uow: UnitOfWork, dead: DeadLetter) -> None:
    dead.replay_status, dead.replay_requested_at, dead.replay_error = "pending", utcnow(), None
    await uow.jobs.schedule(
        kind=REPLAY,
        key=replay_key(dead.id),
        due_at=utcnow(),
        payload={"dead_letter_id": str(dead.id)},
        traceparent=trace_or_new().traceparent,
    )
