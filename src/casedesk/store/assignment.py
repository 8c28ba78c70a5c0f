"""What automatic assignment reads: who may take a case now, and how many open cases each has."""

from __future__ import annotations

import uuid

from sqlalchemy import func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from casedesk.store.models import Case, Queue, QueueMember, User


class AssignmentRepository:
    """Candidates for a case and the queue row that holds the round-robin pointer."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def available_agents(self, queue_id: uuid.UUID | None = None) -> list[uuid.UUID]:
        """Active admins and agents who are ``available``, in a stable order (their ids):
        the queue's members when it has any, else everyone's."""
        statement = select(User.id).where(
            User.active.is_(True), User.role != "viewer", User.availability == "available"
        )
        if queue_id is not None:
            members = select(QueueMember.user_id).where(QueueMember.queue_id == queue_id)
            has_members = select(QueueMember.id).where(QueueMember.queue_id == queue_id).exists()
            statement = statement.where(or_(~has_members, User.id.in_(members)))
        # Sorted here, not by the database: each backend stores a UUID its own way.
        return sorted((await self.session.scalars(statement)).all())

    async def workers(self) -> list[User]:
        """The people who may work cases (active admins and agents), by name."""
        statement = (
            select(User).where(User.active.is_(True), User.role != "viewer").order_by(User.name)
        )
        return list((await self.session.scalars(statement)).all())

    async def open_cases_of(self, user_ids: list[uuid.UUID]) -> dict[uuid.UUID, int]:
        """How many open cases each of these users is assigned (absent: none)."""
        if not user_ids:
            return {}
        statement = (
            select(Case.assignee_id, func.count())
            .where(Case.closed.is_(False), Case.assignee_id.in_(user_ids))
            .group_by(Case.assignee_id)
        )
        rows = (await self.session.execute(statement)).all()
        return {user_id: count for user_id, count in rows if user_id is not None}

    async def locked_queue(self, queue_id: uuid.UUID) -> Queue:
        """The queue, held (FOR UPDATE) until commit: concurrent round-robin picks of one
        queue wait for each other, so each moves the pointer once."""
        queue: Queue | None = await self.session.scalar(
            select(Queue)
            .where(Queue.id == queue_id)
            .with_for_update()
            # the queue is already in the session, read before the lock: read it again
            .execution_options(populate_existing=True)
        )
        assert queue is not None, f"queue {queue_id} vanished inside its transaction"
        return queue
