"""The repository of saved views."""

from __future__ import annotations

import uuid

from sqlalchemy import or_, select

from casedesk.kit.errors import NotFound
from casedesk.store.models import SavedView
from casedesk.store.repository import Repository


class SavedViewRepository(Repository[SavedView]):
    model = SavedView
    label = "view"

    async def visible_to(self, user_id: uuid.UUID) -> list[SavedView]:
        """The shared views, then the user's own, each in their sidebar order."""
        statement = (
            select(SavedView)
            .where(or_(SavedView.owner_id.is_(None), SavedView.owner_id == user_id))
            .order_by(SavedView.owner_id.is_not(None), SavedView.position, SavedView.name)
        )
        return list((await self.session.scalars(statement)).all())

    async def visible(self, view_id: uuid.UUID, user_id: uuid.UUID) -> SavedView:
        """A view the user may see: shared or their own (another's is unknown)."""
        found = await self.find(view_id)
        if found is None or found.owner_id not in (None, user_id):
            raise NotFound(f"view {view_id} not found")
        return found
