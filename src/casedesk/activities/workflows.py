"""Admin operations on workflows: drafts, publishing as versions, turning them on and off.

``POST /workflows`` saves a draft, which may name what does not exist yet (reading it shows
its ``draft_problems``). Publishing checks everything the draft names — the connector and its
trigger, the connection, the trigger's settings, every template's names and step
references, the case template and queue, connector actions and their input, the fields of
the filter and of each ``when`` — and refuses the lot in one 422, each problem with its
path; a clean draft becomes version N+1, which never changes (a draft identical to the
latest version publishes nothing).

Each workflow has one subscription, made on its first publish and kept after that: it
follows the published version. Republishing with the same connector, trigger and connection
keeps its cursor and the ids it has seen; moving it to another trigger or connection starts
it over (no cursor, nothing seen), as a new source must. Starting and stopping it belongs to
``platform.subscriptions``, which sits above this layer, so callers hand it in (``Lifecycle``).
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from typing import Any, Literal

from sqlalchemy.exc import IntegrityError

from casedesk.activities.connections import manifest_for
from casedesk.domain.cases.forms import validate_form
from casedesk.domain.cases.priority import Priority
from casedesk.domain.identity.principal import Principal
from casedesk.domain.identity.roles import Role
from casedesk.domain.workflows import (
    CONNECTION_NAMES,
    CONTEXT_NAMES,
    AddComment,
    ApplyAction,
    ConnectorAction,
    CreateCase,
    HttpRequest,
    ItemCondition,
    ReceiveMessage,
    Step,
    TriggerRef,
    UpdateCase,
    WorkflowSpec,
    is_literal,
    item_comparisons,
    names_in,
    step_templates,
)
from casedesk.integrations.manifests import ConnectorManifest, ManifestInvalid, TriggerDef
from casedesk.kit.crypto import SecretBox
from casedesk.kit.errors import Conflict, InvalidInput, NotFound
from casedesk.kit.logging import get_logger
from casedesk.store.models import Connection, Subscription, Workflow, WorkflowVersion
from casedesk.store.unit_of_work import UnitOfWork

log = get_logger(__name__)
Start = Callable[[UnitOfWork, Subscription, TriggerDef, SecretBox], Awaitable[None]]
Stop = Callable[[UnitOfWork, Subscription, TriggerDef], Awaitable[None]]


@dataclass(frozen=True, slots=True)
class Lifecycle:
    """How a subscription is set going and stopped: ``platform.subscriptions.start/stop``."""

    start: Start
    stop: Stop
    box: SecretBox


@dataclass(frozen=True, slots=True)
class Problem:
    field: str
    message: str
    type: str


async def _commit(uow: UnitOfWork, what: str) -> None:
    """Commit; a unique constraint lost to a concurrent request is a 409, not a 500."""
    try:
        await uow.commit()
    except IntegrityError:
        raise Conflict(f"{what} was changed by another request at the same time; retry") from None


async def save_draft(
    uow: UnitOfWork, actor: Principal, *, code: str, spec: WorkflowSpec
) -> Workflow:
    """Create the workflow or replace its draft; published versions are never touched."""
    actor.require(Role.ADMIN, "editing a workflow")
    await uow.begin_write()
    draft = spec.definition()
    workflow: Workflow | None = await uow.workflows.by_code(code, lock=True)
    if workflow is None:
        workflow = uow.workflows.add(
            Workflow(code=code, name=spec.name, draft=draft, latest_version=0, enabled=True)
        )
    else:
        workflow.name, workflow.draft = spec.name, draft
    await _commit(uow, f"workflow {code!r}")
    return workflow


async def workflow_by_code(uow: UnitOfWork, code: str, *, lock: bool = False) -> Workflow:
    workflow: Workflow | None = await uow.workflows.by_code(code, lock=lock)
    if workflow is None:
        raise NotFound(f"no workflow {code!r}")
    return workflow


def parsed(definition: dict[str, Any]) -> WorkflowSpec | None:
    """The spec of a stored draft or version; None if it no longer parses."""
    try:
        return WorkflowSpec.model_validate(definition)
    except ValueError:
        return None


# --- what publishing checks ---------------------------------------------------------------


def needs_connection(manifest: ConnectorManifest) -> bool:
    """A connector whose connections carry credentials or required settings."""
    return manifest.auth.type != "none" or bool(manifest.connection.settings.get("required"))


def _dynamic_leaves(tree: Any, at: str) -> Iterator[str]:
    """Where a tree holds a template with an expression, written as form errors name places
    (``input.items[0].sku``): those values are known only when the step runs."""
    if isinstance(tree, str) and not is_literal(tree):
        yield at
    elif isinstance(tree, dict):
        for key, value in tree.items():
            yield from _dynamic_leaves(value, f"{at}.{key}")
    elif isinstance(tree, list):
        for index, value in enumerate(tree):
            yield from _dynamic_leaves(value, f"{at}[{index}]")


class _Checker:
    """Collects every problem of a spec, in the order of the spec."""

    def __init__(self, uow: UnitOfWork) -> None:
        self.uow = uow
        self.problems: list[Problem] = []
        self._machine_actions: set[str] | None = None
        self._manifest: ConnectorManifest | None = None

    def refuse(self, field: str, message: str, kind: str = "unknown_reference") -> None:
        self.problems.append(Problem(field, message, kind))

    async def run(self, spec: WorkflowSpec) -> list[Problem]:
        await self._trigger(spec.trigger)
        self._condition(spec.filter, "filter", allowed_steps=None)
        names = [step.name for step in spec.steps]
        for index, step in enumerate(spec.steps):
            at = f"steps.{index}"
            earlier = names[:index]
            self._templates(step, at, earlier, names)
            if step.when is not None:
                self._condition(step.when, f"{at}.when", allowed_steps=earlier)
            await _STEP_CHECKS[step.kind](self, step, at)
        return self.problems

    # the trigger

    async def _trigger(self, ref: TriggerRef) -> None:
        connection = await self._connection(ref.connection_id, "trigger.connection_id")
        if connection is not None and connection.connector != ref.connector:
            self.refuse(
                "trigger.connection_id",
                f"connection {connection.id} is a {connection.connector!r} connection, "
                f"not {ref.connector!r}",
                "wrong_connector",
            )
            connection = None
        version = None if connection is None else connection.connector_version
        try:
            manifest = await manifest_for(self.uow, ref.connector, version)
        except InvalidInput as refusal:
            self.refuse("trigger.connector", refusal.detail)
            return
        self._manifest = manifest
        if ref.connection_id is None and needs_connection(manifest):
            self.refuse(
                "trigger.connection_id",
                f"connector {ref.connector!r} needs a connection (its credentials or settings)",
                "missing",
            )
        trigger = manifest.trigger(ref.trigger)
        if trigger is None:
            offered = ", ".join(sorted(manifest.triggers)) or "none"
            self.refuse(
                "trigger.trigger",
                f"connector {ref.connector!r} has no trigger {ref.trigger!r}; it has: {offered}",
            )
            return
        settings = dict(ref.settings)
        self._against_schema(trigger.settings, settings, "trigger.settings", skip=())
        try:
            trigger.effective(settings)
        except ManifestInvalid as invalid:
            for problem in invalid.problems:
                self.refuse(f"trigger.{problem.path}", problem.message, "invalid_setting")

    async def _connection(self, connection_id: uuid.UUID | None, field: str) -> Connection | None:
        if connection_id is None:
            return None
        connection: Connection | None = await self.uow.connections.find(connection_id)
        if connection is None:
            self.refuse(field, f"no connection {connection_id}")
        return connection

    def _against_schema(
        self, schema: dict[str, Any], value: Any, field: str, *, skip: tuple[str, ...]
    ) -> None:
        """Each place where ``value`` breaks ``schema``, except below the places in ``skip``."""
        try:
            validate_form(schema, value)
        except InvalidInput as invalid:
            for error in invalid.extra.get("errors") or [{"field": "form", **_why(invalid)}]:
                place = field + str(error["field"]).removeprefix("form")
                if any(place == s or place.startswith((s + ".", s + "[")) for s in skip):
                    continue
                self.refuse(place, str(error["message"]), "invalid_value")

    # templates and conditions

    def _templates(self, step: Step, at: str, earlier: list[str], names: list[str]) -> None:
        seen = set(CONTEXT_NAMES)
        if isinstance(step, HttpRequest) and step.connection_id is not None:
            seen |= CONNECTION_NAMES
        for where, text in step_templates(step):
            read, steps = names_in(text)
            unknown = sorted(read - seen)
            if unknown:
                self.refuse(
                    f"{at}.{where}",
                    f"names {', '.join(unknown)}, which it cannot see; "
                    f"templates see {', '.join(sorted(seen))}",
                    "unknown_name",
                )
            for name in sorted(steps - set(earlier)):
                self.refuse(
                    f"{at}.{where}", _step_reference(name, step.name, names), "unknown_step"
                )

    def _condition(
        self, condition: ItemCondition, at: str, *, allowed_steps: list[str] | None
    ) -> None:
        for where, comparison in item_comparisons(condition, at):
            root, _, rest = comparison.field.partition(".")
            if root == "trigger":
                continue
            if root == "steps" and allowed_steps is not None:
                name = rest.split(".")[0]
                if name not in allowed_steps:
                    why = f"steps.{name} is not a step before this one"
                    self.refuse(f"{where}.field", why, "unknown_step")
                continue
            sees = "trigger.<field>" if allowed_steps is None else "trigger.<field>, steps.<name>"
            self.refuse(
                f"{where}.field",
                f"{comparison.field} names nothing this condition sees; it sees {sees}",
                "unknown_field",
            )

    # the steps

    async def _create_case(self, step: Step, at: str) -> None:
        assert isinstance(step, CreateCase)
        await self._case_fields(step.template, step.queue, step.priority, at)

    async def _case_fields(
        self, template: str, queue: str | None, priority: str | None, at: str
    ) -> None:
        if is_literal(template) and await self.uow.templates.by_code(template) is None:
            self.refuse(f"{at}.template", f"no template {template!r}")
        literal_queue = queue is not None and is_literal(queue)
        if literal_queue and await self.uow.queues.by_code(queue or "") is None:
            self.refuse(f"{at}.queue", f"no queue {queue!r}")
        self._priority(priority, f"{at}.priority")

    async def _receive_message(self, step: Step, at: str) -> None:
        assert isinstance(step, ReceiveMessage)
        await self._case_fields(step.template, step.queue, step.priority, at)
        manifest = self._manifest
        if manifest is not None and manifest.channel is None:
            self.refuse(
                f"{at}.kind",
                f"connector {manifest.id!r} is no channel: its items are not messages; "
                "use create_case and add_comment",
                "not_a_channel",
            )

    async def _update_case(self, step: Step, at: str) -> None:
        assert isinstance(step, UpdateCase)
        self._priority(step.priority, f"{at}.priority")

    async def _add_comment(self, step: Step, at: str) -> None:
        assert isinstance(step, AddComment)

    async def _apply_action(self, step: Step, at: str) -> None:
        assert isinstance(step, ApplyAction)
        if not is_literal(step.action):
            return
        if self._machine_actions is None:
            self._machine_actions = await self.uow.machines.published_actions()
        if step.action not in self._machine_actions:
            self.refuse(f"{at}.action", f"no published state machine has an action {step.action!r}")

    async def _connector_action(self, step: Step, at: str) -> None:
        assert isinstance(step, ConnectorAction)
        connection = await self._connection(step.connection_id, f"{at}.connection_id")
        if connection is None:
            return
        try:
            manifest = await manifest_for(
                self.uow, connection.connector, connection.connector_version
            )
        except InvalidInput as refusal:
            self.refuse(f"{at}.connection_id", refusal.detail)
            return
        action = manifest.actions.get(step.action)
        if action is None:
            offered = ", ".join(sorted(manifest.actions)) or "none"
            self.refuse(
                f"{at}.action",
                f"connector {manifest.id!r} has no action {step.action!r}; it has: {offered}",
            )
            return
        skip = tuple(_dynamic_leaves(step.input, f"{at}.input"))
        self._against_schema(action.input, step.input, f"{at}.input", skip=skip)

    async def _http_request(self, step: Step, at: str) -> None:
        assert isinstance(step, HttpRequest)
        await self._connection(step.connection_id, f"{at}.connection_id")
        path = step.request.path
        absolute = path.lower().startswith(("http://", "https://"))
        if step.connection_id is None and is_literal(path) and not absolute:
            self.refuse(
                f"{at}.request.path",
                "without a connection the request needs an absolute http(s) URL",
                "invalid_value",
            )

    def _priority(self, priority: str | None, field: str) -> None:
        if priority is None or not is_literal(priority):
            return
        if priority not in {p.value for p in Priority}:
            allowed = ", ".join(p.value for p in Priority)
            self.refuse(field, f"{priority!r} is no priority; one of {allowed}", "invalid_value")


_STEP_CHECKS: dict[str, Callable[[_Checker, Step, str], Awaitable[None]]] = {
    "create_case": _Checker._create_case,
    "add_comment": _Checker._add_comment,
    "receive_message": _Checker._receive_message,
    "update_case": _Checker._update_case,
    "apply_action": _Checker._apply_action,
    "connector_action": _Checker._connector_action,
    "http_request": _Checker._http_request,
}


def _why(invalid: InvalidInput) -> dict[str, str]:
    return {"message": invalid.detail}


def _step_reference(name: str, own: str, names: list[str]) -> str:
    if name == own:
        return f"steps.{name} is this step itself; a step sees only the steps before it"
    if name in names:
        return f"steps.{name} runs after this step; a step sees only the steps before it"
    return f"steps.{name} names no step; the steps are {', '.join(names)}"


async def check(uow: UnitOfWork, spec: WorkflowSpec) -> list[Problem]:
    """Every problem publishing the spec would refuse; empty when it can be published."""
    return await _Checker(uow).run(spec)


def _refusal(code: str, problems: list[Problem]) -> InvalidInput:
    return InvalidInput(
        f"the draft of {code!r} has {len(problems)} problem(s): "
        + "; ".join(f"{p.field}: {p.message}" for p in problems),
        field=problems[0].field,
        errors=[
            {"field": p.field, "in": "body", "message": p.message, "type": p.type} for p in problems
        ],
    )


# --- publishing and the subscription ------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Published:
    workflow: Workflow
    version: WorkflowVersion
    unchanged: bool
    """The draft was the latest version already, so that version is the answer."""
    subscription: Subscription


async def trigger_def(uow: UnitOfWork, ref: TriggerRef) -> TriggerDef:
    """The trigger's definition, from the connector's manifest as the connection pins it."""
    version = None
    if ref.connection_id is not None:
        connection = await uow.connections.find(ref.connection_id)
        version = None if connection is None else connection.connector_version
    manifest = await manifest_for(uow, ref.connector, version)
    found = manifest.trigger(ref.trigger)
    if found is None:
        raise InvalidInput(
            f"connector {ref.connector!r} has no trigger {ref.trigger!r}", field="trigger.trigger"
        )
    return found


async def _trigger_def_or_none(uow: UnitOfWork, ref: TriggerRef) -> TriggerDef | None:
    try:
        return await trigger_def(uow, ref)
    except InvalidInput:
        return None


def _source(ref: TriggerRef) -> tuple[str, str, uuid.UUID | None]:
    return ref.connector, ref.trigger, ref.connection_id


async def publish(
    uow: UnitOfWork,
    actor: Principal,
    code: str,
    *,
    enabled: bool | None,
    lifecycle: Lifecycle,
) -> Published:
    """Check the draft and freeze it as version N+1; keep the workflow's subscription."""
    actor.require(Role.ADMIN, "publishing a workflow")
    await uow.begin_write()
    workflow = await workflow_by_code(uow, code, lock=True)
    spec = WorkflowSpec.model_validate(workflow.draft)
    problems = await check(uow, spec)
    if problems:
        raise _refusal(code, problems)
    latest = await uow.workflows.version(workflow.id, workflow.latest_version)
    before = None if latest is None else parsed(latest.definition)
    if enabled is not None:
        workflow.enabled = enabled
    if latest is not None and latest.definition == workflow.draft:
        version, unchanged = latest, True
    else:
        workflow.latest_version += 1
        version = uow.workflows.add_version(
            WorkflowVersion(
                workflow_id=workflow.id,
                version=workflow.latest_version,
                definition=workflow.draft,
                published_by=actor.user_id,
            )
        )
        unchanged = False
    subscription = await _follow(uow, workflow, spec, before, lifecycle)
    await _commit(uow, f"workflow {code!r}")
    return Published(workflow, version, unchanged, subscription)


async def _follow(
    uow: UnitOfWork,
    workflow: Workflow,
    spec: WorkflowSpec,
    before: WorkflowSpec | None,
    lifecycle: Lifecycle,
) -> Subscription:
    """The workflow's subscription, made or moved to what ``spec`` says, running or not as
    the workflow is enabled."""
    ref = spec.trigger
    definition = await trigger_def(uow, ref)
    existing = await uow.subscriptions.of_workflow(workflow.id)
    if existing is None:
        subscription = uow.subscriptions.add(
            Subscription(
                workflow_id=workflow.id,
                connection_id=ref.connection_id,
                trigger=ref.trigger,
                settings=dict(ref.settings),
                enabled=workflow.enabled,
                status="active" if workflow.enabled else "disabled",
            )
        )
        await uow.flush()
        if workflow.enabled:
            await lifecycle.start(uow, subscription, definition, lifecycle.box)
        return subscription
    subscription = await uow.subscriptions.locked(existing.id) or existing
    moved = before is None or _source(before.trigger) != _source(ref)
    resettled = moved or dict(subscription.settings) != dict(ref.settings)
    was_running = subscription.enabled
    if was_running and (moved or not workflow.enabled):
        running = ref if not moved else (None if before is None else before.trigger)
        await _stop(uow, subscription, running, lifecycle)
    if moved:
        # Another source: where the old one was up to, and what it had shown, mean nothing.
        subscription.cursor = None
        subscription.consecutive_failures, subscription.last_error = 0, None
        await uow.seen.forget(subscription.id)
    subscription.connection_id, subscription.trigger = ref.connection_id, ref.trigger
    subscription.settings = dict(ref.settings)
    subscription.enabled = workflow.enabled
    if not workflow.enabled:
        subscription.status = "disabled"
        return subscription
    if subscription.status == "disabled" or moved:
        subscription.status = "active"
    if not was_running or resettled:
        await lifecycle.start(uow, subscription, definition, lifecycle.box)
    return subscription


async def _stop(
    uow: UnitOfWork, subscription: Subscription, ref: TriggerRef | None, lifecycle: Lifecycle
) -> None:
    """Stop the subscription as the trigger it ran says; one that is gone has nothing to stop."""
    running = None if ref is None else await _trigger_def_or_none(uow, ref)
    if running is None:
        log.warning("the trigger a subscription ran is gone", subscription=str(subscription.id))
        return
    await lifecycle.stop(uow, subscription, running)


async def set_enabled(
    uow: UnitOfWork, actor: Principal, code: str, *, enabled: bool, lifecycle: Lifecycle
) -> tuple[Workflow, Subscription | None]:
    """Turn the workflow on or off; a published one starts or stops its subscription."""
    actor.require(Role.ADMIN, "enabling or disabling a workflow")
    await uow.begin_write()
    workflow = await workflow_by_code(uow, code, lock=True)
    workflow.enabled = enabled
    existing = await uow.subscriptions.of_workflow(workflow.id)
    if existing is None:  # not published yet: its first publish follows the flag
        await _commit(uow, f"workflow {code!r}")
        return workflow, None
    subscription = await uow.subscriptions.locked(existing.id) or existing
    ref = await published_trigger(uow, workflow)
    definition = None if ref is None else await _trigger_def_or_none(uow, ref)
    if enabled and definition is None:
        raise InvalidInput(
            f"the published version of {code!r} names a trigger that is gone; "
            "fix the draft and publish it",
            field="trigger",
        )
    if enabled:
        subscription.enabled, subscription.status = True, "active"
        subscription.consecutive_failures, subscription.last_error = 0, None
        assert definition is not None
        await lifecycle.start(uow, subscription, definition, lifecycle.box)
    else:
        if subscription.enabled and definition is not None:
            await lifecycle.stop(uow, subscription, definition)
        subscription.enabled, subscription.status = False, "disabled"
    await _commit(uow, f"workflow {code!r}")
    return workflow, subscription


# --- what a subscription is, for the readers ------------------------------------------------


@dataclass(frozen=True, slots=True)
class SubscriptionFacts:
    workflow: str
    connector: str | None
    kind: Literal["polling", "instant"] | None
    """None when the published trigger cannot be found any more."""


async def published_trigger(uow: UnitOfWork, workflow: Workflow) -> TriggerRef | None:
    """The trigger of the workflow's published version: what its subscription runs (the
    subscription keeps the connection, trigger and settings; the connector is the version's)."""
    latest = await uow.workflows.version(workflow.id, workflow.latest_version)
    spec = None if latest is None else parsed(latest.definition)
    return None if spec is None else spec.trigger


async def facts_of(uow: UnitOfWork, subscription: Subscription) -> SubscriptionFacts:
    workflow = await uow.workflows.get(subscription.workflow_id)
    ref = await published_trigger(uow, workflow)
    if ref is None:
        return SubscriptionFacts(workflow.code, None, None)
    definition = await _trigger_def_or_none(uow, ref)
    kind = None if definition is None else definition.kind
    return SubscriptionFacts(workflow.code, ref.connector, kind)
