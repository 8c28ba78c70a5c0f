"""Macros: saving them (personal or, for admins, shared) and applying one to a case.

Applying runs the existing activities in one transaction: the rendered reply through
``AddCommentActivity``, then each action through the activity a rule's action would use, so
each change is checked, recorded and announced as if made by hand, and all or none is kept.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from dataclasses import replace
from typing import Any

from casedesk.activities.add_comment import AddCommentActivity, CommentParams
from casedesk.activities.apply_action import ActionParams, ApplyActionActivity
from casedesk.activities.base import ActivityContext
from casedesk.activities.transfer_case import TransferCaseActivity, TransferParams
from casedesk.activities.update_case import UpdateCaseActivity, UpdateParams
from casedesk.domain.automation.rules import AddTag, ApplyAction, SetPriority, Transfer
from casedesk.domain.cases.inputs import ActionInput, CaseChanges, CommentInput, TransferInput
from casedesk.domain.identity.principal import Principal
from casedesk.domain.identity.roles import Role
from casedesk.domain.macros import MacroSpec, check_macro, render
from casedesk.kit.errors import Forbidden, NotFound, PreconditionFailed
from casedesk.store.models import Case, Macro
from casedesk.store.unit_of_work import UnitOfWork


async def visible_macro(uow: UnitOfWork, macro_id: uuid.UUID, user_id: uuid.UUID | None) -> Macro:
    """The macro, if this user may see it; another user's personal macro is a 404."""
    macro = await uow.macros.visible(macro_id, user_id)
    if macro is None:
        raise NotFound(f"macro {macro_id} not found")
    return macro


def _check_may_keep(actor: Principal, shared: bool) -> None:
    actor.require(Role.AGENT, "keeping macros")
    if shared:
        actor.require(Role.ADMIN, "a shared macro")


def _fill(macro: Macro, spec: MacroSpec, actor: Principal) -> None:
    macro.owner_id = None if spec.shared else actor.user_id
    macro.name, macro.body, macro.public = spec.name, spec.body, spec.public
    macro.actions = [action.model_dump(mode="json") for action in spec.actions]


async def create_macro(uow: UnitOfWork, actor: Principal, spec: MacroSpec) -> Macro:
    _check_may_keep(actor, spec.shared)
    check_macro(spec)
    await uow.begin_write()
    macro = uow.macros.add(Macro(name=spec.name, body="", actions=[]))
    _fill(macro, spec, actor)
    await uow.commit()
    return macro


async def update_macro(
    uow: UnitOfWork, actor: Principal, macro_id: uuid.UUID, spec: MacroSpec
) -> Macro:
    """Replace a macro; a shared one (or making one shared) is for admins."""
    await uow.begin_write()
    macro = await visible_macro(uow, macro_id, actor.user_id)
    _check_may_keep(actor, spec.shared or macro.owner_id is None)
    check_macro(spec)
    _fill(macro, spec, actor)
    await uow.commit()
    return macro


async def delete_macro(uow: UnitOfWork, actor: Principal, macro_id: uuid.UUID) -> None:
    await uow.begin_write()
    macro = await visible_macro(uow, macro_id, actor.user_id)
    _check_may_keep(actor, macro.owner_id is None)
    await uow.macros.delete(macro)
    await uow.commit()


def macro_spec(macro: Macro) -> MacroSpec:
    """The stored macro read back as its spec (its actions typed again)."""
    return MacroSpec.model_validate(
        {
            "name": macro.name,
            "body": macro.body,
            "public": macro.public,
            "shared": macro.owner_id is None,
            "actions": macro.actions,
        }
    )


async def placeholder_values(
    uow: UnitOfWork, case: Case, agent_id: uuid.UUID | None
) -> dict[str, str]:
    """What each placeholder stands for on this case, for this agent."""
    customer = await uow.customers.find(case.customer_id) if case.customer_id else None
    agent = await uow.users.find(agent_id) if agent_id else None
    return {
        "customer.name": (customer.name or "") if customer else "",
        "customer.email": customer.email if customer else "",
        "case.number": str(case.number),
        "case.title": case.title,
        "agent.name": agent.name if agent else "",
    }


async def rendered_reply(
    uow: UnitOfWork, macro: Macro, case: Case, agent_id: uuid.UUID | None
) -> str:
    """The macro's reply as it reads on this case: for review before it is sent."""
    return render(macro.body, await placeholder_values(uow, case, agent_id))


async def _priority(ctx: ActivityContext, case_id: uuid.UUID, action: Any) -> None:
    await UpdateCaseActivity(ctx).run(UpdateParams(case_id, CaseChanges(priority=action.priority)))


async def _tag(ctx: ActivityContext, case_id: uuid.UUID, action: Any) -> None:
    case = await ctx.uow.cases.get(case_id)
    tags = sorted(set(case.tags) | {action.tag})
    await UpdateCaseActivity(ctx).run(UpdateParams(case_id, CaseChanges(tags=tags)))


async def _state(ctx: ActivityContext, case_id: uuid.UUID, action: Any) -> None:
    await ApplyActionActivity(ctx).run(ActionParams(case_id, action.action, ActionInput()))


async def _transfer(ctx: ActivityContext, case_id: uuid.UUID, action: Any) -> None:
    body = TransferInput(queue=action.queue)
    await TransferCaseActivity(ctx).run(TransferParams(case_id, body))


MacroActionHandler = Callable[[ActivityContext, uuid.UUID, Any], Awaitable[None]]
MACRO_ACTIONS: dict[type[Any], MacroActionHandler] = {
    SetPriority: _priority,
    AddTag: _tag,
    ApplyAction: _state,
    Transfer: _transfer,
}


async def apply_macro(
    ctx: ActivityContext, case_id: uuid.UUID, macro_id: uuid.UUID, reply: str | None = None
) -> Case:
    """Add the macro's reply (``reply``: the text as the agent edited it; else as rendered)
    and run its actions, all in one transaction; the case's If-Match version is checked
    once, before the first change."""
    uow, operator = ctx.uow, ctx.operator
    if operator.role is None or not operator.role.at_least(Role.AGENT):
        raise Forbidden("applying a macro needs the agent role")
    await uow.begin_write()
    macro = await visible_macro(uow, macro_id, operator.user_id)
    case = await uow.cases.get(case_id)
    if ctx.expected_version is not None and case.version != ctx.expected_version:
        raise PreconditionFailed(
            f"the case is at version {case.version}, not {ctx.expected_version}; reload it "
            "and retry",
            current_version=case.version,
        )
    spec = macro_spec(macro)
    text = reply if reply is not None else await rendered_reply(uow, macro, case, operator.user_id)
    steps = replace(ctx, expected_version=None)
    async with uow.one_transaction():
        if text.strip():
            comment = CommentInput(body=text, public=spec.public)
            await AddCommentActivity(steps).run(CommentParams(case_id, comment))
        for action in spec.actions:
            await MACRO_ACTIONS[type(action)](steps, case_id, action)
    await uow.commit()
    return await uow.cases.get(case_id)
