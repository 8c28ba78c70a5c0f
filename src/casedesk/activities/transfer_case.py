"""Transfer a case to another queue and/or assignee; its open task moves with it."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from casedesk.activities.base import Activity
from casedesk.domain.assignment import assignee_for_queue
from casedesk.domain.cases.inputs import TransferInput
from casedesk.kit.errors import Conflict, InvalidInput
from casedesk.kit.text import optional_str
from casedesk.store.models import Case


@dataclass(frozen=True, slots=True)
class TransferParams:
    case_id: uuid.UUID
    body: TransferInput


class TransferCaseActivity(Activity[TransferParams, Case]):
    name = "case.transfer"

    async def validate(self, params: TransferParams) -> None:
        body = params.body
        if body.queue is None and body.assignee_id is None and not body.unassign:
            raise InvalidInput("say where to: queue, assignee_id or unassign", field="queue")
        if body.unassign and body.assignee_id is not None:
            raise InvalidInput("assignee_id and unassign exclude each other", field="unassign")

    async def execute(self, params: TransferParams) -> Case:
        body = params.body
        case = self.case = await self.load_case(params.case_id)
        task = await self.open_task(case)
        if case.closed or task is None:
            raise Conflict("a closed case cannot be transferred; reopen it first")
        source = {"queue_id": str(case.queue_id), "assignee_id": optional_str(case.assignee_id)}
        if body.queue is not None:
            queue = await self.uow.queues.by_code(body.queue)
            if queue is None:
                raise InvalidInput(f"no queue {body.queue!r}", field="queue")
            case.queue_id = task.queue_id = queue.id
        if body.assignee_id is not None:
            user = await self.uow.users.find(body.assignee_id)
            if user is None or not user.active or user.role == "viewer":
                raise InvalidInput("assignee must be an active admin or agent", field="assignee_id")
            case.assignee_id = task.assignee_id = user.id
        if body.unassign:
            case.assignee_id = task.assignee_id = None
        if case.assignee_id is None and str(case.queue_id) != source["queue_id"]:
            # Moved into another queue with nobody on it: that queue's mode may choose.
            queue = await self.uow.queues.get(case.queue_id)
            case.assignee_id = task.assignee_id = await assignee_for_queue(self.uow, queue)
        if optional_str(case.assignee_id) != source["assignee_id"]:
            task.status, task.accepted_at = "pending", None
        target = {"queue_id": str(case.queue_id), "assignee_id": optional_str(case.assignee_id)}
        if target == source:
            raise Conflict("the case is already there", **target)
        if body.comment:
            self.add_comment(case, body.comment, public=False)
        self.record(
            case, "case.transfer", {"from": source, "to": target, "comment": body.comment}, task
        )
        self.emit("case.transferred", case, {"from": source, "to": target, "task_id": str(task.id)})
        return case
