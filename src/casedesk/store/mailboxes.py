"""Mailboxes' queries."""

from __future__ import annotations

import uuid
from collections.abc import Sequence

from sqlalchemy import func, select

from casedesk.store.models import Mailbox
from casedesk.store.repository import Repository
from casedesk.store.tenancy import ALL_TENANTS


class MailboxRepository(Repository[Mailbox]):
    model = Mailbox
    label = "mailbox"

    async def all(self) -> list[Mailbox]:
        statement = self.select().order_by(Mailbox.name, Mailbox.id)
        return list((await self.session.scalars(statement)).all())

    async def locked(self, mailbox_id: uuid.UUID) -> Mailbox | None:
        """The mailbox with its row locked until commit (a run moving its cursor)."""
        found: Mailbox | None = await self.session.scalar(
            self.select().where(Mailbox.id == mailbox_id).with_for_update()
        )
        return found

    async def locked_batch_after(self, after: uuid.UUID | None, limit: int) -> Sequence[Mailbox]:
        statement = self.select().order_by(Mailbox.id).limit(limit).with_for_update()
        if after is not None:
            statement = statement.where(Mailbox.id > after)
        return list((await self.session.scalars(statement)).all())

    async def count_sealed(self) -> int:
        """How many sealed values the mailboxes keep: passwords, SMTP ones, DKIM keys."""
        statement = select(
            func.count(Mailbox.secret_sealed),
            func.count(Mailbox.smtp_secret_sealed),
            func.count(Mailbox.dkim_key_sealed),
        )
        return sum(int(n) for n in (await self.session.execute(statement)).one())

    async def enabled_everywhere(self) -> list[Mailbox]:
        """Every tenant's enabled mailboxes (for the worker that waits in IDLE on them)."""
        statement = (
            self.select()
            .where(Mailbox.enabled.is_(True))
            .order_by(Mailbox.id)
            .execution_options(**{ALL_TENANTS: True})
        )
        return list((await self.session.scalars(statement)).all())

    async def notifying(self) -> Mailbox | None:
        """The mailbox the tenant's own mail goes out through, if one is chosen."""
        found: Mailbox | None = await self.session.scalar(
            self.select().where(Mailbox.notifications.is_(True)).order_by(Mailbox.id).limit(1)
        )
        return found

    async def lock_all(self) -> list[Mailbox]:
        """Every mailbox of the tenant, locked until commit: choosing the one that sends
        the tenant's mail is then one change at a time."""
        statement = self.select().order_by(Mailbox.id).with_for_update()
        return list((await self.session.scalars(statement)).all())
