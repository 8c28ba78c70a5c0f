"""An agent takes the case's open task: pending → processing."""

from __future__ import annotations

import uuid

from casedesk.activities.base import Activity
from casedesk.kit.clock import utcnow
from casedesk.kit.errors import Conflict
from casedesk.store.models import Case


class AcceptTaskActivity(Activity[uuid.UUID, Case]):
    name = "task.accept"

    async def execute(self, params: uuid.UUID) -> Case:
        case = self.case = await self.load_case(params)
        task = await self.open_task(case)
        if task is None:
            raise Conflict("the case has no open task")
        if task.status != "pending":
            raise Conflict(f"the task is already {task.status}")
        me = self.ctx.operator.user_id
        if task.assignee_id is not None and me is not None and task.assignee_id != me:
            raise Conflict("the task is assigned to someone else; transfer it first")
        task.status, task.accepted_at = "processing", utcnow()
        task.assignee_id = task.assignee_id or me
        case.assignee_id = task.assignee_id
        self.record(
            case,
            "task.accept",
            {"assignee_id": str(task.assignee_id) if task.assignee_id else None},
            task,
        )
        self.emit(
            "task.accepted", case, {"task_id": str(task.id), "assignee_id": str(task.assignee_id)}
        )
        return case
