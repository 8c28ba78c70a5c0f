"""Repositories of event rules and time rules, kept in an order an admin sets."""

from __future__ import annotations

from typing import TypeVar

from sqlalchemy import func, select, update

from casedesk.store.models import Rule, TimeRule
from casedesk.store.repository import Repository

Ordered = TypeVar("Ordered", Rule, TimeRule)


class OrderedRuleRepository(Repository[Ordered]):
    """Rules kept in an order an admin sets; positions are per tenant."""

    async def in_order(self, *, enabled_only: bool = False) -> list[Ordered]:
        statement = select(self.model).order_by(self.model.position, self.model.id)
        if enabled_only:
            statement = statement.where(self.model.enabled.is_(True))
        return list((await self.session.scalars(statement)).all())

    async def make_room_at(self, position: int) -> None:
        """Move the rules at ``position`` and after one place down."""
        await self.session.execute(
            update(self.model)
            .where(self.model.position >= position)
            .values(position=self.model.position + 1)
            .execution_options(synchronize_session=False)
        )

    async def next_position(self) -> int:
        last = await self.session.scalar(select(func.max(self.model.position)))
        return 0 if last is None else int(last) + 1


class RuleRepository(OrderedRuleRepository[Rule]):
    model = Rule
    label = "rule"


class TimeRuleRepository(OrderedRuleRepository[TimeRule]):
    model = TimeRule
    label = "time rule"
