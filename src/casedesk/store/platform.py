"""Repositories of the integration platform: connectors, connections, subscriptions, the ids
they have seen, the inbox of hook deliveries, workflows and their executions."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import and_, delete, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from casedesk.kit.clock import utcnow
from casedesk.kit.ids import uuid7
from casedesk.store.configuration import ByCodeRepository
from casedesk.store.dialects import insert_if_new
from casedesk.store.models import (
    Authorization,
    Connection,
    Connector,
    ConnectorVersion,
    Execution,
    ExecutionStep,
    InboxDelivery,
    SeenItem,
    Subscription,
    Tenant,
    Workflow,
    WorkflowVersion,
)
from casedesk.store.repository import Page, Repository
from casedesk.store.tenancy import ALL_TENANTS, bound_tenant


@dataclass(frozen=True, slots=True)
class HookTarget:
    """The subscription a hook token names, with what else an ingress checks in the same
    query: whether its tenant is enabled, and the versions of what its trigger is made of."""

    subscription: Subscription
    tenant_enabled: bool
    stamp: tuple[int, int, int | None]
    """The versions of the subscription, its workflow and its connection (if any): while
    they are the same, so is the trigger the subscription resolves to."""


class ConnectorRepository(ByCodeRepository):
    model = Connector
    label = "connector"

    async def version(self, connector_id: uuid.UUID, number: int) -> ConnectorVersion | None:
        found: ConnectorVersion | None = await self.session.scalar(
            select(ConnectorVersion).where(
                ConnectorVersion.connector_id == connector_id,
                ConnectorVersion.version == number,
            )
        )
        return found

    async def versions(self, connector_id: uuid.UUID) -> list[ConnectorVersion]:
        statement = (
            select(ConnectorVersion)
            .where(ConnectorVersion.connector_id == connector_id)
            .order_by(ConnectorVersion.version)
        )
        return list((await self.session.scalars(statement)).all())

    def add_version(self, version: ConnectorVersion) -> ConnectorVersion:
        self.session.add(version)
        return version


class ConnectionRepository(Repository[Connection]):
    model = Connection
    label = "connection"

    async def locked(self, connection_id: uuid.UUID) -> Connection | None:
        """The connection, its row held until commit (one token refresh at a time)."""
        found: Connection | None = await self.session.scalar(
            select(Connection).where(Connection.id == connection_id).with_for_update()
        )
        return found

    async def list_page(self, *, limit: int, cursor: str | None) -> Page[Connection]:
        return await self.page(select(Connection), limit=limit, cursor=cursor)

    async def locked_batch_after(self, after: uuid.UUID | None, limit: int) -> list[Connection]:
        """Up to ``limit`` connections in id order after ``after``, locked until the commit
        (a key rotation re-seals them while no token renewal or admin writes them)."""
        statement = select(Connection).order_by(Connection.id).limit(limit)
        if after is not None:
            statement = statement.where(Connection.id > after)
        return list((await self.session.scalars(statement.with_for_update())).all())

    async def count_sealed(self) -> int:
        """How many sealed values the connections keep: secrets and tokens."""
        statement = select(
            func.count(Connection.secrets_sealed), func.count(Connection.token_sealed)
        )
        secrets, tokens = (await self.session.execute(statement)).one()
        return int(secrets) + int(tokens)

    async def workflows_using(self, connection_id: uuid.UUID) -> list[Workflow]:
        """The workflows that use the connection: through their subscription, or where
        their draft or latest version names it (the trigger, a step), ordered by code."""
        subscribed = select(Workflow).join(Subscription, Subscription.workflow_id == Workflow.id)
        found = {
            workflow.id: workflow
            for workflow in await self.session.scalars(
                subscribed.where(Subscription.connection_id == connection_id)
            )
        }
        latest = select(Workflow, WorkflowVersion.definition).outerjoin(
            WorkflowVersion,
            and_(
                WorkflowVersion.workflow_id == Workflow.id,
                WorkflowVersion.version == Workflow.latest_version,
            ),
        )
        wanted = str(connection_id)
        for workflow, definition in await self.session.execute(latest):
            if _names_connection(workflow.draft, wanted) or _names_connection(definition, wanted):
                found.setdefault(workflow.id, workflow)
        return sorted(found.values(), key=lambda workflow: workflow.code)


def _names_connection(document: Any, connection_id: str) -> bool:
    """Whether any ``connection_id`` in a workflow's JSON is this one."""
    pending = [document]
    while pending:
        node = pending.pop()
        if isinstance(node, dict):
            if node.get("connection_id") == connection_id:
                return True
            pending.extend(node.values())
        elif isinstance(node, list):
            pending.extend(node)
    return False


class AuthorizationRepository(Repository[Authorization]):
    model = Authorization
    label = "authorization"

    async def prune(self, connection_id: uuid.UUID, *, expired_before: datetime) -> None:
        """Forget the connection's authorizations that expired before ``expired_before``."""
        await self.session.execute(
            delete(Authorization)
            .where(
                Authorization.connection_id == connection_id,
                Authorization.expires_at < expired_before,
            )
            .execution_options(synchronize_session=False)
        )

    async def use(self, authorization_id: uuid.UUID) -> bool:
        """Mark the authorization used, once: False when it was already (by a racing
        callback too: one UPDATE decides)."""
        result = await self.session.execute(
            update(Authorization)
            .where(Authorization.id == authorization_id, Authorization.used_at.is_(None))
            .values(used_at=utcnow())
            .execution_options(synchronize_session=False)
        )
        return bool(getattr(result, "rowcount", 0) == 1)

    async def by_state_hash_any_tenant(self, state_hash: str) -> Authorization | None:
        """The authorization a provider's callback names; the callback carries no API key."""
        found: Authorization | None = await self.session.scalar(
            select(Authorization)
            .where(Authorization.state_hash == state_hash)
            .execution_options(**{ALL_TENANTS: True})
        )
        return found


class SubscriptionRepository(Repository[Subscription]):
    model = Subscription
    label = "subscription"

    async def of_workflow(self, workflow_id: uuid.UUID) -> Subscription | None:
        found: Subscription | None = await self.session.scalar(
            select(Subscription).where(Subscription.workflow_id == workflow_id)
        )
        return found

    async def with_workflow_and_connection(
        self, subscription_id: uuid.UUID
    ) -> tuple[Subscription, bool, Connection | None] | None:
        """The subscription, whether its workflow is enabled, and its connection (if it has
        one), in one query."""
        statement = (
            select(Subscription, Workflow.enabled, Connection)
            .join(Workflow, Workflow.id == Subscription.workflow_id)
            .outerjoin(Connection, Connection.id == Subscription.connection_id)
            .where(Subscription.id == subscription_id)
        )
        row = (await self.session.execute(statement)).first()
        if row is None:
            return None
        subscription, enabled, connection = row
        return subscription, bool(enabled), connection

    async def locked(self, subscription_id: uuid.UUID) -> Subscription | None:
        """The subscription, its row held until commit (one run of it at a time)."""
        found: Subscription | None = await self.session.scalar(
            select(Subscription).where(Subscription.id == subscription_id).with_for_update()
        )
        return found

    async def locked_batch_after(self, after: uuid.UUID | None, limit: int) -> list[Subscription]:
        """Up to ``limit`` subscriptions in id order after ``after``, locked until the commit
        (a key rotation re-seals their hook tokens and secrets)."""
        statement = select(Subscription).order_by(Subscription.id).limit(limit)
        if after is not None:
            statement = statement.where(Subscription.id > after)
        return list((await self.session.scalars(statement.with_for_update())).all())

    async def count_sealed(self) -> int:
        """How many sealed values the subscriptions keep: hook tokens and own secrets."""
        statement = select(
            func.count(Subscription.hook_token_sealed), func.count(Subscription.secrets_sealed)
        )
        tokens, secrets = (await self.session.execute(statement)).one()
        return int(tokens) + int(secrets)

    async def hook_target_any_tenant(self, token_hash: str) -> HookTarget | None:
        """What a ``/hooks/{token}`` delivery is for, in one query; the caller has no key."""
        statement = (
            select(Subscription, Tenant.enabled, Workflow.latest_version, Connection.version)
            .join(Tenant, Tenant.id == Subscription.tenant_id)
            .join(Workflow, Workflow.id == Subscription.workflow_id)
            .outerjoin(Connection, Connection.id == Subscription.connection_id)
            .where(Subscription.hook_token_hash == token_hash)
            .execution_options(**{ALL_TENANTS: True})
        )
        row = (await self.session.execute(statement)).first()
        if row is None:
            return None
        subscription, enabled, workflow_version, connection_version = row
        stamp = (subscription.version, workflow_version, connection_version)
        return HookTarget(subscription, bool(enabled), stamp)

    async def list_page(self, *, limit: int, cursor: str | None) -> Page[Subscription]:
        return await self.page(select(Subscription), limit=limit, cursor=cursor)

    async def page_with_status(
        self, status: str | None, *, limit: int, cursor: str | None
    ) -> Page[Subscription]:
        statement = select(Subscription)
        if status is not None:
            statement = statement.where(Subscription.status == status)
        return await self.page(statement, limit=limit, cursor=cursor)


_IN_CHUNK = 500
"""Values per ``IN (...)`` list: well inside every database's limit on parameters."""


class SeenItemRepository:
    """The ids a subscription has seen at its source."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def claim(self, subscription_id: uuid.UUID, source_id: str) -> bool:
        """Record the id as seen in this transaction; False when it already was (by this or a
        racing transaction: the second waits for the first and then sees it)."""
        values = {
            "subscription_id": subscription_id,
            "source_id": source_id,
            "seen_at": utcnow(),
            "tenant_id": bound_tenant(self.session.sync_session),
        }
        return await insert_if_new(self.session, SeenItem, values)

    async def known(self, subscription_id: uuid.UUID, source_ids: Sequence[str]) -> set[str]:
        """Which of ``source_ids`` were seen before: a read that spares a polling run one
        insert per item it saw already (``claim`` still decides, race-safe, for the rest)."""
        found: set[str] = set()
        unique = list(dict.fromkeys(source_ids))
        for start in range(0, len(unique), _IN_CHUNK):
            rows = await self.session.scalars(
                select(SeenItem.source_id).where(
                    SeenItem.subscription_id == subscription_id,
                    SeenItem.source_id.in_(unique[start : start + _IN_CHUNK]),
                )
            )
            found.update(rows.all())
        return found

    async def claim_new(self, subscription_id: uuid.UUID, source_ids: Sequence[str]) -> list[str]:
        """The ids of ``source_ids`` not seen before, in their order, now recorded as seen."""
        fresh = []
        for source_id in dict.fromkeys(source_ids):
            if await self.claim(subscription_id, source_id):
                fresh.append(source_id)
        return fresh

    async def forget(self, subscription_id: uuid.UUID) -> None:
        """Drop every id the subscription has seen (it now watches another source)."""
        await self.session.execute(
            delete(SeenItem)
            .where(SeenItem.subscription_id == subscription_id)
            .execution_options(synchronize_session=False)
        )


class InboxRepository(Repository[InboxDelivery]):
    model = InboxDelivery
    label = "inbox delivery"

    async def store(self, delivery: InboxDelivery) -> bool:
        """Keep a delivery once per (subscription, event id); False for a repeat."""
        values = {
            column.key: getattr(delivery, column.key)
            for column in InboxDelivery.__table__.columns
            if getattr(delivery, column.key, None) is not None
        }
        values.setdefault("id", uuid7())
        values.setdefault("tenant_id", bound_tenant(self.session.sync_session))
        values.setdefault("received_at", utcnow())
        values.setdefault("status", "pending")
        return await insert_if_new(self.session, InboxDelivery, values)

    async def locked(self, delivery_id: uuid.UUID) -> InboxDelivery | None:
        """The delivery, its row held until commit (one worker handles it at a time)."""
        found: InboxDelivery | None = await self.session.scalar(
            select(InboxDelivery).where(InboxDelivery.id == delivery_id).with_for_update()
        )
        return found


class WorkflowRepository(ByCodeRepository):
    model = Workflow
    label = "workflow"

    async def version(self, workflow_id: uuid.UUID, number: int) -> WorkflowVersion | None:
        found: WorkflowVersion | None = await self.session.scalar(
            select(WorkflowVersion).where(
                WorkflowVersion.workflow_id == workflow_id, WorkflowVersion.version == number
            )
        )
        return found

    def add_version(self, version: WorkflowVersion) -> WorkflowVersion:
        self.session.add(version)
        return version

    async def versions(self, workflow_id: uuid.UUID) -> list[WorkflowVersion]:
        statement = (
            select(WorkflowVersion)
            .where(WorkflowVersion.workflow_id == workflow_id)
            .order_by(WorkflowVersion.version)
        )
        return list((await self.session.scalars(statement)).all())


@dataclass(frozen=True, slots=True)
class ExecutionFilter:
    workflow_id: uuid.UUID | None = None
    status: str | None = None
    subscription_id: uuid.UUID | None = None
    created_after: datetime | None = None
    created_before: datetime | None = None


class ExecutionRepository(Repository[Execution]):
    model = Execution
    label = "execution"

    async def locked(self, execution_id: uuid.UUID) -> Execution | None:
        """The execution, its row held until commit (one runner of it at a time)."""
        found: Execution | None = await self.session.scalar(
            select(Execution).where(Execution.id == execution_id).with_for_update()
        )
        return found

    async def list_page(
        self, where: ExecutionFilter, *, limit: int, cursor: str | None
    ) -> Page[Execution]:
        """Newest first, as a log is read."""
        statement = select(Execution)
        if where.workflow_id is not None:
            statement = statement.where(Execution.workflow_id == where.workflow_id)
        if where.status is not None:
            statement = statement.where(Execution.status == where.status)
        if where.subscription_id is not None:
            statement = statement.where(Execution.subscription_id == where.subscription_id)
        if where.created_after is not None:
            statement = statement.where(Execution.created_at >= where.created_after)
        if where.created_before is not None:
            statement = statement.where(Execution.created_at < where.created_before)
        return await self.page_newest_first(statement, limit=limit, cursor=cursor)

    async def steps(self, execution_id: uuid.UUID) -> list[ExecutionStep]:
        statement = (
            select(ExecutionStep)
            .where(ExecutionStep.execution_id == execution_id)
            .order_by(ExecutionStep.position)
        )
        return list((await self.session.scalars(statement)).all())

    def add_step(self, step: ExecutionStep) -> ExecutionStep:
        self.session.add(step)
        return step

    async def not_started(
        self, subscription_id: uuid.UUID, *, other_than: uuid.UUID, limit: int
    ) -> list[Execution]:
        """The subscription's queued executions that have never run (no step recorded),
        oldest first: the ones a batch enrichment can fetch ahead for."""
        started = select(ExecutionStep.id).where(ExecutionStep.execution_id == Execution.id)
        statement = (
            select(Execution)
            .where(
                Execution.subscription_id == subscription_id,
                Execution.status == "queued",
                Execution.attempts == 0,
                Execution.id != other_than,
                ~started.exists(),
            )
            .order_by(Execution.created_at, Execution.id)
            .limit(limit)
        )
        return list((await self.session.scalars(statement)).all())
