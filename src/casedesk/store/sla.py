"""Repository of SLA policies and the clocks they run on cases."""

from __future__ import annotations

import uuid

from sqlalchemy import select

from casedesk.store.models import CaseSla, SlaPolicy
from casedesk.store.repository import Repository


class SlaRepository(Repository[SlaPolicy]):
    model = SlaPolicy
    label = "SLA policy"

    async def policies(self) -> list[SlaPolicy]:
        return list((await self.session.scalars(select(SlaPolicy).order_by(SlaPolicy.id))).all())

    async def clocks(self, case_id: uuid.UUID) -> list[CaseSla]:
        statement = select(CaseSla).where(CaseSla.case_id == case_id).order_by(CaseSla.metric)
        return list((await self.session.scalars(statement)).all())

    async def in_use(self, policy_id: uuid.UUID) -> bool:
        found = await self.session.scalar(
            select(CaseSla.id).where(CaseSla.policy_id == policy_id).limit(1)
        )
        return found is not None

    async def clock(self, clock_id: uuid.UUID) -> CaseSla | None:
        """The clock as committed now (not as this session may have cached it)."""
        found: CaseSla | None = await self.session.scalar(
            select(CaseSla).where(CaseSla.id == clock_id).execution_options(populate_existing=True)
        )
        return found

    def add_clock(self, clock: CaseSla) -> CaseSla:
        self.session.add(clock)
        return clock
