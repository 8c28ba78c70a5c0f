"""A generic async repository; every query of the product lives in a repository class."""

from __future__ import annotations

import base64
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, Generic, TypeVar

from sqlalchemy import Select, select
from sqlalchemy.ext.asyncio import AsyncSession

from casedesk.kit.errors import InvalidInput, NotFound
from casedesk.store.base import IdMixin

M = TypeVar("M", bound=IdMixin)


@dataclass(frozen=True, slots=True)
class Page(Generic[M]):
    items: Sequence[M]
    next_cursor: str | None


def encode_cursor(last_id: uuid.UUID) -> str:
    return base64.urlsafe_b64encode(last_id.bytes).decode().rstrip("=")


def decode_cursor(cursor: str) -> uuid.UUID:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        return uuid.UUID(bytes=raw)
    except (ValueError, TypeError):
        raise InvalidInput("cursor is not one this API returned", field="cursor") from None


class Repository(Generic[M]):
    """Reads and stages writes of one model. It never commits: the unit of work does."""

    model: ClassVar[type[Any]]
    label: ClassVar[str] = "object"

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    def select(self) -> Select[M]:
        return select(self.model)

    async def find(self, object_id: uuid.UUID) -> M | None:
        result: M | None = await self.session.scalar(
            self.select().where(self.model.id == object_id)
        )
        return result

    async def get(self, object_id: uuid.UUID) -> M:
        found = await self.find(object_id)
        if found is None:
            raise NotFound(f"{self.label} {object_id} not found")
        return found

    def add(self, obj: M) -> M:
        self.session.add(obj)
        return obj

    async def delete(self, obj: M) -> None:
        await self.session.delete(obj)

    async def page(self, statement: Select[M], *, limit: int, cursor: str | None) -> Page[M]:
        """Keyset pagination on the time-ordered primary key."""
        if cursor is not None:
            statement = statement.where(self.model.id > decode_cursor(cursor))
        ordered = statement.order_by(self.model.id).limit(limit + 1)
        rows: list[M] = list((await self.session.scalars(ordered)).all())
        more = len(rows) > limit
        items = rows[:limit]
        next_cursor = encode_cursor(items[-1].id) if more and items else None
        return Page(items=items, next_cursor=next_cursor)

    async def page_newest_first(
        self, statement: Select[M], *, limit: int, cursor: str | None
    ) -> Page[M]:
        """Keyset pagination from the newest row back, for logs."""
        if cursor is not None:
            statement = statement.where(self.model.id < decode_cursor(cursor))
        ordered = statement.order_by(self.model.id.desc()).limit(limit + 1)
        rows: list[M] = list((await self.session.scalars(ordered)).all())
        more = len(rows) > limit
        items = rows[:limit]
        next_cursor = encode_cursor(items[-1].id) if more and items else None
        return Page(items=items, next_cursor=next_cursor)
