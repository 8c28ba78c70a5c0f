"""A tenant's own notification templates' queries."""

from __future__ import annotations

from casedesk.store.models import NotificationTemplate
from casedesk.store.repository import Repository


class NotificationTemplateRepository(Repository[NotificationTemplate]):
    model = NotificationTemplate
    label = "notification template"

    async def all(self) -> list[NotificationTemplate]:
        statement = self.select().order_by(NotificationTemplate.kind, NotificationTemplate.language)
        return list((await self.session.scalars(statement)).all())

    async def of(self, kind: str, language: str) -> NotificationTemplate | None:
        found: NotificationTemplate | None = await self.session.scalar(
            self.select().where(
                NotificationTemplate.kind == kind, NotificationTemplate.language == language
            )
        )
        return found
