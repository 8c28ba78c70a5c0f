"""The scenes casedesk calls, each with its default. Editions override them per tenant."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from casedesk.domain.cases.inputs import CaseDraft
from casedesk.domain.extensions.registry import Scene
from casedesk.domain.identity.roles import Role
from casedesk.store.models import Case, Template


@dataclass(frozen=True, slots=True)
class PermissionCheck:
    activity: str
    operator_type: str
    role: Role | None
    required_role: Role


async def _no_objection(draft: CaseDraft, template: Template) -> None:
    return None


async def _keep_draft(draft: CaseDraft, template: Template) -> CaseDraft:
    return draft


CUSTOMER_ACTIVITIES = frozenset({"case.create", "comment.add", "case.rate"})
"""What a customer signed in to the portal may run (on their own cases: the portal checks)."""


async def _role_decides(check: PermissionCheck) -> bool:
    if check.operator_type == "customer":
        return check.activity in CUSTOMER_ACTIVITIES
    if check.operator_type != "user":
        return True  # rules, connectors and the system act with the tenant's authority
    return check.role is not None and check.role.at_least(check.required_role)


async def _no_extra_fields(case: Case) -> dict[str, Any]:
    return {}


async def _nothing(activity: str, case: Case | None) -> None:
    return None


CASE_CREATE_VALIDATE = Scene(
    "case.create.validate", _no_objection, "refuse a case draft with a domain error"
)
CASE_CREATE_DEFAULTS = Scene(
    "case.create.defaults", _keep_draft, "fill in or change fields of a draft before it is saved"
)
ACTIVITY_PERMISSION = Scene(
    "activity.permission", _role_decides, "may this operator run this activity"
)
CASE_DETAIL_EXTRA = Scene(
    "case.detail.extra", _no_extra_fields, "extra fields shown on the case detail"
)
ACTIVITY_BEFORE = Scene("activity.before", _nothing, "runs before an activity executes")
ACTIVITY_AFTER = Scene("activity.after", _nothing, "runs after an activity executes")
