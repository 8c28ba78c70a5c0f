"""A generic async repository; every query of the product lives in a repository class."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache
from typing import Any, ClassVar, Generic, TypeVar

from sqlalchemy import Select, select
from sqlalchemy.ext.asyncio import AsyncSession

from casedesk.kit.cursors import CursorCodec
from casedesk.kit.errors import NotFound
from casedesk.store.base import IdMixin

M = TypeVar("M", bound=IdMixin)


@dataclass(frozen=True, slots=True)
class Page(Generic[M]):
    items: Sequence[M]
    next_cursor: str | None


@cache
def id_cursors(kind: str) -> CursorCodec[tuple[uuid.UUID]]:
    """The cursors of a list of rows in id order, named ``kind``: the last row's id."""
    return CursorCodec(kind, tuple[uuid.UUID])


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
        cursors = id_cursors(self.model.__tablename__)
        if cursor is not None:
            (after,) = cursors.decode(cursor)
            statement = statement.where(self.model.id > after)
        ordered = statement.order_by(self.model.id).limit(limit + 1)
        rows: list[M] = list((await self.session.scalars(ordered)).all())
        return _page(rows, limit, cursors)

    async def page_newest_first(
        self, statement: Select[M], *, limit: int, cursor: str | None
    ) -> Page[M]:
        """Keyset pagination from the newest row back, for logs."""
        cursors = id_cursors(f"-{self.model.__tablename__}")
        if cursor is not None:
            (before,) = cursors.decode(cursor)
            statement = statement.where(self.model.id < before)
        ordered = statement.order_by(self.model.id.desc()).limit(limit + 1)
        rows: list[M] = list((await self.session.scalars(ordered)).all())
        return _page(rows, limit, cursors)


def _page(rows: list[M], limit: int, cursors: CursorCodec[tuple[uuid.UUID]]) -> Page[M]:
    """The first ``limit`` rows, and a cursor after the last when there were more."""
    items = rows[:limit]
    more = len(rows) > limit and bool(items)
    return Page(items=items, next_cursor=cursors.encode((items[-1].id,)) if more else None)
