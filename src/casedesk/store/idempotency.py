"""Repository of stored answers to requests sent with an Idempotency-Key."""

from __future__ import annotations

from sqlalchemy import select

from casedesk.store.models import IdempotencyRecord
from casedesk.store.repository import Repository


class IdempotencyRepository(Repository[IdempotencyRecord]):
    model = IdempotencyRecord
    label = "idempotency record"

    async def find_key(self, scope: str, key: str) -> IdempotencyRecord | None:
        result: IdempotencyRecord | None = await self.session.scalar(
            select(IdempotencyRecord).where(
                IdempotencyRecord.scope == scope, IdempotencyRecord.key == key
            )
        )
        return result
