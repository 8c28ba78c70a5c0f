"""Queries of outbound webhooks: subscriptions, deliveries and attempts."""

from __future__ import annotations

import uuid

from sqlalchemy import func, select

from casedesk.store.models import WebhookAttempt, WebhookDelivery, WebhookSubscription
from casedesk.store.repository import Page, Repository


class WebhookRepository(Repository[WebhookSubscription]):
    model = WebhookSubscription
    label = "webhook"

    async def all(self) -> list[WebhookSubscription]:
        statement = select(WebhookSubscription).order_by(WebhookSubscription.id)
        return list((await self.session.scalars(statement)).all())

    async def locked_batch_after(
        self, after: uuid.UUID | None, limit: int
    ) -> list[WebhookSubscription]:
        """Up to ``limit`` webhooks in id order after ``after``, locked until the commit, so
        a change made meanwhile (a new secret) waits instead of being written over."""
        statement = select(WebhookSubscription).order_by(WebhookSubscription.id).limit(limit)
        if after is not None:
            statement = statement.where(WebhookSubscription.id > after)
        return list((await self.session.scalars(statement.with_for_update())).all())

    async def count(self) -> int:
        statement = select(func.count()).select_from(WebhookSubscription)
        return int(await self.session.scalar(statement) or 0)

    async def enabled(self) -> list[WebhookSubscription]:
        statement = (
            select(WebhookSubscription)
            .where(WebhookSubscription.enabled.is_(True))
            .order_by(WebhookSubscription.id)
        )
        return list((await self.session.scalars(statement)).all())


class DeliveryRepository(Repository[WebhookDelivery]):
    model = WebhookDelivery
    label = "webhook delivery"

    async def of_subscription(
        self, subscription_id: uuid.UUID, *, status: str | None, limit: int, cursor: str | None
    ) -> Page[WebhookDelivery]:
        statement = select(WebhookDelivery).where(
            WebhookDelivery.subscription_id == subscription_id
        )
        if status is not None:
            statement = statement.where(WebhookDelivery.status == status)
        return await self.page_newest_first(statement, limit=limit, cursor=cursor)

    async def locked(self, delivery_id: uuid.UUID) -> WebhookDelivery | None:
        """The delivery with its row locked until commit (on SQLite the writing transaction
        holds the database's write lock), so its attempts are counted by one writer."""
        delivery: WebhookDelivery | None = await self.session.scalar(
            select(WebhookDelivery).where(WebhookDelivery.id == delivery_id).with_for_update()
        )
        return delivery

    async def attempts(self, delivery_id: uuid.UUID) -> list[WebhookAttempt]:
        statement = (
            select(WebhookAttempt)
            .where(WebhookAttempt.delivery_id == delivery_id)
            .order_by(WebhookAttempt.number)
        )
        return list((await self.session.scalars(statement)).all())

    def add_attempt(self, attempt: WebhookAttempt) -> None:
        self.session.add(attempt)
