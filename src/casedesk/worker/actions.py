"""Rule actions routed by type to the activities that carry them out.

Event rules and time rules share this map: an action runs through the normal activity, with
the rule as the operator, so it is recorded on the case and emits its own events.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from casedesk.activities.add_comment import AddCommentActivity, CommentParams
from casedesk.activities.apply_action import ActionParams, ApplyActionActivity
from casedesk.activities.base import ActivityContext
from casedesk.activities.send_webhook import SendWebhookActivity, WebhookParams
from casedesk.activities.transfer_case import TransferCaseActivity, TransferParams
from casedesk.activities.update_case import UpdateCaseActivity, UpdateParams
from casedesk.domain.assignment import AssignmentMode, pick_assignee
from casedesk.domain.automation.rules import (
    Action,
    AddComment,
    AddTag,
    ApplyAction,
    Assign,
    RemoveTag,
    SendWebhook,
    SetPriority,
    Transfer,
)
from casedesk.domain.cases.inputs import ActionInput, CaseChanges, CommentInput, TransferInput
from casedesk.kit.errors import CasedeskError, Conflict
from casedesk.kit.tracing import parse_traceparent, trace_or_new
from casedesk.store.models import ActionRecord, Rule, TimeRule


async def _assign(ctx: ActivityContext, case_id: uuid.UUID, action: Any) -> None:
    user_id = action.user_id
    if action.strategy is not None:
        case = await ctx.uow.cases.get(case_id)
        queue = await ctx.uow.queues.get(case.queue_id)
        user_id = await pick_assignee(ctx.uow, queue, AssignmentMode(action.strategy))
        if user_id is None:
            raise Conflict(f"no agent is available to assign by {action.strategy}")
    body = TransferInput(assignee_id=user_id, unassign=user_id is None)
    await TransferCaseActivity(ctx).run(TransferParams(case_id, body))


async def _transfer(ctx: ActivityContext, case_id: uuid.UUID, action: Any) -> None:
    await TransferCaseActivity(ctx).run(TransferParams(case_id, TransferInput(queue=action.queue)))


async def _set_priority(ctx: ActivityContext, case_id: uuid.UUID, action: Any) -> None:
    changes = CaseChanges(priority=action.priority)
    await UpdateCaseActivity(ctx).run(UpdateParams(case_id, changes))


async def _tags(ctx: ActivityContext, case_id: uuid.UUID, action: Any) -> None:
    case = await ctx.uow.cases.get(case_id)
    tags = set(case.tags)
    tags = tags | {action.tag} if isinstance(action, AddTag) else tags - {action.tag}
    await UpdateCaseActivity(ctx).run(UpdateParams(case_id, CaseChanges(tags=sorted(tags))))


async def _apply(ctx: ActivityContext, case_id: uuid.UUID, action: Any) -> None:
    await ApplyActionActivity(ctx).run(ActionParams(case_id, action.action, ActionInput()))


async def _comment(ctx: ActivityContext, case_id: uuid.UUID, action: Any) -> None:
    body = CommentInput(body=action.body, public=action.public)
    await AddCommentActivity(ctx).run(CommentParams(case_id, body))


async def _webhook(ctx: ActivityContext, case_id: uuid.UUID, action: Any) -> None:
    await SendWebhookActivity(ctx).run(WebhookParams(case_id, action.webhook_id))


ActionHandler = Callable[[ActivityContext, uuid.UUID, Any], Awaitable[None]]
ACTIONS: dict[type[Any], ActionHandler] = {
    Assign: _assign,
    Transfer: _transfer,
    SetPriority: _set_priority,
    AddTag: _tags,
    RemoveTag: _tags,
    ApplyAction: _apply,
    AddComment: _comment,
    SendWebhook: _webhook,
}


async def run_actions(ctx: ActivityContext, case_id: uuid.UUID, actions: Sequence[Action]) -> None:
    """Run the actions in order, in the context's transaction; the first failure raises."""
    for action in actions:
        await ACTIONS[type(action)](ctx, case_id, action)


def automation_record(
    tenant_id: uuid.UUID,
    case_id: uuid.UUID,
    code: str,
    memo: dict[str, Any],
    traceparent: str | None,
) -> ActionRecord:
    """An entry in the case's history said by the automation itself, not by one activity."""
    trace = parse_traceparent(traceparent) or trace_or_new()
    return ActionRecord(
        tenant_id=tenant_id,
        case_id=case_id,
        code=code,
        memo=memo,
        operator_type="system",
        operator_id=None,
        operator_name="automation",
        trace_id=trace.trace_id,
    )


def refusal_record(
    rule: Rule | TimeRule, case_id: uuid.UUID, refusal: CasedeskError, traceparent: str | None
) -> ActionRecord:
    """A rule's actions were refused (say, an action the case's state does not allow)."""
    memo = {"rule_id": str(rule.id), "rule": rule.name, "reason": refusal.detail}
    return automation_record(rule.tenant_id, case_id, "automation.refused", memo, traceparent)
