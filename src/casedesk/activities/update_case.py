"""Change a case's title, priority, form fields or tags; the history keeps before and after."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

from casedesk.activities.base import Activity
from casedesk.domain.cases.forms import validate_form
from casedesk.domain.cases.inputs import CaseChanges
from casedesk.domain.cases.priority import Priority
from casedesk.store.models import Case


@dataclass(frozen=True, slots=True)
class UpdateParams:
    case_id: uuid.UUID
    body: CaseChanges


def merge(form: dict[str, Any], patch: dict[str, Any]) -> dict[str, Any]:
    """JSON merge patch (RFC 7396) of the form: null removes a key."""
    merged = dict(form)
    for key, value in patch.items():
        if value is None:
            merged.pop(key, None)
        elif isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = merge(merged[key], value)
        else:
            merged[key] = value
    return merged


class UpdateCaseActivity(Activity[UpdateParams, Case]):
    name = "case.update"

    async def execute(self, params: UpdateParams) -> Case:
        case = self.case = await self.load_case(params.case_id)
        body = params.body
        wanted: dict[str, Any] = {}
        if body.title is not None:
            wanted["title"] = body.title
        if body.priority is not None:
            wanted["priority"] = body.priority.rank
        if body.tags is not None:
            wanted["tags"] = sorted(set(body.tags))
        if body.form is not None:
            form = merge(case.form, body.form)
            template = await self.uow.templates.get(case.template_id)
            validate_form(template.form_schema, form)
            wanted["form"] = form
        changes = {
            field: {"from": _shown(field, getattr(case, field)), "to": _shown(field, value)}
            for field, value in wanted.items()
            if getattr(case, field) != value
        }
        for field in changes:
            setattr(case, field, wanted[field])
        if changes:
            self.record(case, "case.update", {"changes": changes})
            self.emit("case.updated", case, {"changes": changes})
        return case


def _shown(field: str, value: Any) -> Any:
    return Priority.from_rank(value).value if field == "priority" else value
