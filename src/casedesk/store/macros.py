"""Macros as each user sees them: the tenant's shared ones and the user's own."""

from __future__ import annotations

import uuid

from sqlalchemy import or_

from casedesk.store.models import Macro
from casedesk.store.repository import Repository


class MacroRepository(Repository[Macro]):
    model = Macro
    label = "macro"

    async def visible_to(self, user_id: uuid.UUID | None) -> list[Macro]:
        """Shared macros and the user's personal ones, by name."""
        statement = (
            self.select()
            .where(or_(Macro.owner_id.is_(None), Macro.owner_id == user_id))
            .order_by(Macro.name, Macro.id)
        )
        return list((await self.session.scalars(statement)).all())

    async def visible(self, macro_id: uuid.UUID, user_id: uuid.UUID | None) -> Macro | None:
        """The macro if this user may see it: someone else's personal macro is not there."""
        macro = await self.find(macro_id)
        if macro is None or (macro.owner_id is not None and macro.owner_id != user_id):
            return None
        return macro
