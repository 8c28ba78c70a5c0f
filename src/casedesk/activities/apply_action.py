"""Apply a state-machine action: the transition, closing or reopening, and its comment."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from casedesk.activities.base import Activity
from casedesk.domain.cases.inputs import ActionInput
from casedesk.domain.cases.machines import machine_of_version
from casedesk.kit.clock import utcnow
from casedesk.kit.errors import Conflict
from casedesk.store.models import Case, Comment


@dataclass(frozen=True, slots=True)
class ActionParams:
    case_id: uuid.UUID
    action: str
    body: ActionInput


class ApplyActionActivity(Activity[ActionParams, Case]):
    name = "case.action"
    accepts_task = True

    async def execute(self, params: ActionParams) -> Case:
        case = self.case = await self.load_case(params.case_id)
        machine = await machine_of_version(self.uow, case.machine_version_id)
        transition = machine.transition(case.state, params.action)
        if transition is None:
            allowed = [t.action for t in machine.allowed(case.state)]
            raise Conflict(
                f"action {params.action!r} is not allowed in state {case.state!r}; "
                f"allowed: {', '.join(allowed) or 'none'}",
                state=case.state,
                allowed_actions=allowed,
            )
        before = case.state
        if transition.to != before:
            case.state, case.state_entered_at = transition.to, utcnow()
        if machine.is_end(transition.to) and not case.closed:
            await self._close(case)
        elif transition.reopen and case.closed:
            await self._reopen(case)
        comment = self._comment(case, params.body)
        self.record(
            case,
            "case.action",
            {
                "action": params.action,
                "from": before,
                "to": case.state,
                "comment": params.body.comment,
            },
        )
        self.emit(
            "case.state_changed",
            case,
            {"action": params.action, "from": before, "to": case.state},
        )
        if comment is not None:
            self.emit(
                "comment.added",
                case,
                {
                    "comment_id": str(comment.id),
                    "public": comment.public,
                    "author_type": comment.author_type,
                },
            )
        return case

    async def _close(self, case: Case) -> None:
        now = utcnow()
        case.closed, case.closed_at = True, now
        for task in await self.uow.tasks.of_case(case.id):
            if task.status != "done":
                task.status_before_close, task.status, task.done_at = task.status, "done", now
        self.emit("case.closed", case)

    async def _reopen(self, case: Case) -> None:
        case.closed, case.closed_at = False, None
        for task in await self.uow.tasks.of_case(case.id):
            if task.status_before_close is not None:
                task.status, task.status_before_close, task.done_at = (
                    task.status_before_close,
                    None,
                    None,
                )
        self.emit("case.reopened", case)

    def _comment(self, case: Case, body: ActionInput) -> Comment | None:
        return self.add_comment(case, body.comment, public=body.public) if body.comment else None
