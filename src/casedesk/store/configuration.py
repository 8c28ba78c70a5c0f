"""Repositories of the configuration objects addressed by code: queues, machines, templates."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import delete, select

from casedesk.store.models import (
    Queue,
    QueueMember,
    StateMachine,
    StateMachineVersion,
    Template,
)
from casedesk.store.repository import Repository


class ByCodeRepository(Repository[Any]):
    """Configuration objects addressed by a per-tenant code."""

    async def by_code(self, code: str, *, lock: bool = False) -> Any:
        """``lock`` holds the row (FOR UPDATE) until commit, serialising writers of it."""
        statement = select(self.model).where(self.model.code == code)
        if lock:
            statement = statement.with_for_update()
        return await self.session.scalar(statement)

    async def all(self) -> list[Any]:
        statement = select(self.model).order_by(self.model.code)
        return list((await self.session.scalars(statement)).all())


class QueueRepository(ByCodeRepository):
    model = Queue
    label = "queue"

    async def members(self) -> dict[uuid.UUID, list[uuid.UUID]]:
        """Every queue's members, by queue id (a queue without members is absent)."""
        rows = await self.session.execute(select(QueueMember.queue_id, QueueMember.user_id))
        found: dict[uuid.UUID, list[uuid.UUID]] = {}
        for queue_id, user_id in rows.all():
            found.setdefault(queue_id, []).append(user_id)
        return {queue_id: sorted(users) for queue_id, users in found.items()}

    async def members_of(self, queue_id: uuid.UUID) -> list[uuid.UUID]:
        statement = select(QueueMember.user_id).where(QueueMember.queue_id == queue_id)
        return sorted((await self.session.scalars(statement)).all())

    async def worked_by(self, user_id: uuid.UUID) -> frozenset[uuid.UUID] | None:
        """The queues the user works: those they are a member of, and those without members
        (which everyone works); None when that is every queue."""
        members = await self.members()
        if not members:
            return None
        every = {queue.id for queue in await self.all()}
        elsewhere = {queue_id for queue_id, users in members.items() if user_id not in users}
        return frozenset(every - elsewhere) if elsewhere else None

    async def set_members(
        self, tenant_id: uuid.UUID, queue_id: uuid.UUID, user_ids: list[uuid.UUID]
    ) -> None:
        await self.session.execute(
            delete(QueueMember)
            .where(QueueMember.queue_id == queue_id)
            .execution_options(synchronize_session=False)
        )
        self.session.add_all(
            QueueMember(tenant_id=tenant_id, queue_id=queue_id, user_id=user_id)
            for user_id in dict.fromkeys(user_ids)
        )


class StateMachineRepository(ByCodeRepository):
    model = StateMachine
    label = "state machine"

    async def versions(self, machine_id: uuid.UUID) -> list[StateMachineVersion]:
        statement = (
            select(StateMachineVersion)
            .where(StateMachineVersion.machine_id == machine_id)
            .order_by(StateMachineVersion.version)
        )
        return list((await self.session.scalars(statement)).all())

    async def version(self, machine_id: uuid.UUID, number: int) -> StateMachineVersion | None:
        result: StateMachineVersion | None = await self.session.scalar(
            select(StateMachineVersion).where(
                StateMachineVersion.machine_id == machine_id,
                StateMachineVersion.version == number,
            )
        )
        return result

    async def version_by_id(self, version_id: uuid.UUID) -> StateMachineVersion:
        found: StateMachineVersion | None = await self.session.scalar(
            select(StateMachineVersion).where(StateMachineVersion.id == version_id)
        )
        if found is None:
            raise LookupError(f"state machine version {version_id} is missing")
        return found

    async def latest_version_of(self, machine_id: uuid.UUID) -> StateMachineVersion | None:
        """The newest published version, in one query."""
        result: StateMachineVersion | None = await self.session.scalar(
            select(StateMachineVersion)
            .join(StateMachine, StateMachine.id == StateMachineVersion.machine_id)
            .where(
                StateMachine.id == machine_id,
                StateMachineVersion.version == StateMachine.latest_version,
            )
        )
        return result

    async def published_actions(self) -> set[str]:
        """Every action some published version of some machine of the tenant has."""
        definitions = await self.session.scalars(select(StateMachineVersion.definition))
        return {
            str(transition["action"])
            for definition in definitions
            for transition in definition.get("transitions", ())
        }

    async def published_states_of_type(self, state_type: str) -> set[str]:
        """The codes of the states of this type in some published version of some machine
        of the tenant ("pending": the states that wait on the customer)."""
        definitions = await self.session.scalars(select(StateMachineVersion.definition))
        return {
            str(state["code"])
            for definition in definitions
            for state in definition.get("states", ())
            if state.get("type") == state_type
        }

    def add_version(self, version: StateMachineVersion) -> StateMachineVersion:
        self.session.add(version)
        return version


class TemplateRepository(ByCodeRepository):
    model = Template
    label = "template"
