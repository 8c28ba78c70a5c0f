"""The repository of attachments (the rows; the bytes are the blob store's)."""

from __future__ import annotations

import uuid
from collections.abc import Iterable

from sqlalchemy import func, select

from casedesk.store.models import Attachment
from casedesk.store.repository import Repository


class AttachmentRepository(Repository[Attachment]):
    model = Attachment
    label = "attachment"

    async def of_case(self, case_id: uuid.UUID) -> list[Attachment]:
        statement = select(Attachment).where(Attachment.case_id == case_id).order_by(Attachment.id)
        return list((await self.session.scalars(statement)).all())

    async def of_comments(
        self, comment_ids: Iterable[uuid.UUID]
    ) -> dict[uuid.UUID, list[Attachment]]:
        """The attachments of each of these comments, oldest first (a comment without any
        is absent)."""
        ids = list(comment_ids)
        if not ids:
            return {}
        statement = select(Attachment).where(Attachment.comment_id.in_(ids)).order_by(Attachment.id)
        found: dict[uuid.UUID, list[Attachment]] = {}
        for row in (await self.session.scalars(statement)).all():
            if row.comment_id is not None:
                found.setdefault(row.comment_id, []).append(row)
        return found

    async def of_ids(self, ids: Iterable[uuid.UUID]) -> list[Attachment]:
        statement = select(Attachment).where(Attachment.id.in_(list(ids))).order_by(Attachment.id)
        return list((await self.session.scalars(statement)).all())

    async def used_bytes(self) -> int:
        """The bytes the tenant's attachments count against its quota (a file attached twice
        counts twice: the quota is what the tenant sends, not what the disk keeps)."""
        total = await self.session.scalar(select(func.coalesce(func.sum(Attachment.size), 0)))
        return int(total or 0)
