"""The ``ecommerce`` edition: cases are about an order.

A case cannot be created without ``form.order_id``, and its detail shows an order summary.
Published as the ``ecommerce`` entry point of the ``casedesk.extensions`` group.
"""

from __future__ import annotations

from typing import Any

from casedesk.domain.cases.inputs import CaseDraft
from casedesk.domain.extensions.registry import ExtensionRegistry
from casedesk.domain.extensions.scenes import CASE_CREATE_VALIDATE, CASE_DETAIL_EXTRA
from casedesk.kit.errors import InvalidInput
from casedesk.store.models import Case, Template

EDITION = "ecommerce"


async def require_order_id(draft: CaseDraft, template: Template) -> None:
    order_id = draft.form.get("order_id")
    if not isinstance(order_id, str | int) or not str(order_id).strip():
        raise InvalidInput(
            "an ecommerce case needs the order it is about in form.order_id",
            field="form.order_id",
            errors=[
                {"field": "form.order_id", "message": "order_id is required", "type": "missing"}
            ],
        )


async def order_summary(case: Case) -> dict[str, Any]:
    form = case.form
    items = form.get("order_items")
    return {
        "order_summary": {
            "order_id": str(form.get("order_id")),
            "items": len(items) if isinstance(items, list) else None,
            "total": form.get("order_total"),
            "currency": form.get("currency"),
        }
    }


def register(registry: ExtensionRegistry) -> None:
    registry.add(CASE_CREATE_VALIDATE, EDITION, require_order_id)
    registry.add(CASE_DETAIL_EXTRA, EDITION, order_summary)
