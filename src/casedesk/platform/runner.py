"""The workflow runner: the ``execution.run`` job runs one execution.

It takes the workflow version the execution was queued for (a subscription follows the
published version, so the version is the one of queueing time), fetches the entity when
the trigger has an enricher (one that batches also fetches, in the same request, the entities
of the subscription's other executions waiting to run, and records them as their enrich
step), applies the filter, and runs the steps in order, recording each
(its input as rendered, its output, status, duration and the trace ids of its third-party
calls). Steps that change cases run their activity with the workflow as operator, so history,
events and rules behave as for a person; each commits in one transaction with its record, so
a step is never half applied. ``connector_action`` and ``http_request`` call out through the
hub, outside any transaction, and their record follows.

A failure is final or transient. Final: a domain refusal, a 4xx answer, a template that
cannot render, a bad value. Transient: a timeout, an unreachable service, a 5xx or 429
answer, a case changed underneath, the database. A transient failure queues the execution
again after ``RETRY_DELAYS``; a final one, or the last retry, fails it with the error and
emits ``execution.failed``. A run after a failure goes on from the failed step: the steps that
succeeded keep their outputs and are not repeated. Every transaction of a run checks that the
job's lease is still this worker's, so a runner whose lease ran out commits nothing.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Protocol

import httpx
import orjson
from pydantic import BaseModel, ValidationError
from sqlalchemy.exc import SQLAlchemyError

from casedesk.activities.add_attachments import Attacher, IncomingFile, MissingFile
from casedesk.activities.add_comment import AddCommentActivity, CommentParams
from casedesk.activities.apply_action import ActionParams, ApplyActionActivity
from casedesk.activities.base import ActivityContext, ConcurrentChange, Operator
from casedesk.activities.channels import Intake, receive
from casedesk.activities.connections import open_client
from casedesk.activities.create_case import create_case
from casedesk.activities.update_case import UpdateCaseActivity, UpdateParams
from casedesk.domain.cases.forms import validate_form
from casedesk.domain.cases.inputs import (
    ActionInput,
    AuthorRef,
    CaseChanges,
    CaseDraft,
    CommentInput,
    CustomerRef,
)
from casedesk.domain.channels import ChannelMessage
from casedesk.domain.events import Subject, new_event
from casedesk.domain.extensions.registry import ExtensionRegistry
from casedesk.domain.identity.principal import Principal
from casedesk.domain.identity.roles import Role
from casedesk.domain.workflows import (
    EXECUTION,
    EXECUTION_FAILED,
    AddComment,
    ApplyAction,
    ConnectorAction,
    CreateCase,
    HttpRequest,
    ItemAllOf,
    ReceiveMessage,
    Step,
    UpdateCase,
    WorkflowSpec,
    passes,
)
from casedesk.integrations.channel_files import ChannelFile, fetch_files
from casedesk.integrations.connector_hooks import hooks_of
from casedesk.integrations.errors import OutboundRateLimited, ResponseTooLarge, UpstreamUnreachable
from casedesk.integrations.expressions import ExpressionError, render, render_tree, select
from casedesk.integrations.hub import Hub
from casedesk.integrations.manifests import ConnectorManifest, EnricherDef, TriggerDef
from casedesk.integrations.manifests.instant import InstantSpec
from casedesk.integrations.retry import RETRY_AFTER_STATUSES, parse_retry_after
from casedesk.integrations.runtime import Account, ConnectorClient, render_request
from casedesk.kit.clock import utcnow
from casedesk.kit.crypto import SecretBox
from casedesk.kit.errors import CasedeskError, Conflict, InvalidInput, NotFound
from casedesk.kit.ids import uuid7
from casedesk.kit.logging import get_logger
from casedesk.kit.tracing import TraceContext, new_trace, parse_traceparent, trace_or_new
from casedesk.kit.values import JSON_MAX_DEPTH, depth_of
from casedesk.platform.enricher import Enriched
from casedesk.platform.enricher import enrich as enrich_entities
from casedesk.platform.intake import RUN, run_key
from casedesk.platform.senders import Senders
from casedesk.store.database import Database
from casedesk.store.jobs import LeaseLost
from casedesk.store.models import Execution, ExecutionStep, OutboxEvent, ScheduledJob
from casedesk.store.unit_of_work import UnitOfWork

log = get_logger(__name__)

ATTACHING = frozenset({"opened", "followed_up", "commented"})
"""Outcomes of ``channels.receive`` that made a case or a comment the message's files go on."""
RETRY_DELAYS: tuple[timedelta, ...] = (
    timedelta(seconds=15),
    timedelta(minutes=1),
    timedelta(minutes=5),
    timedelta(minutes=30),
    timedelta(hours=2),
)
"""The waits before the runs after a transient failure; when they are spent, it is final."""
RECORD_MAX_BYTES = 262_144
"""The most of one step's input or output kept on its record (as JSON)."""
TEXT_KEPT = 65_536
"""Characters of a text answer (or of a record too large to keep whole) that are kept."""
ERROR_KEPT = 4_000
TRANSIENT_STATUSES = frozenset({408, 425, 429})
"""4xx answers that say "try later" rather than "no"."""
ENRICH, FILTER = "enrich", "filter"
_PLAIN_HTTP = ConnectorManifest(id="http", name="HTTP request")
"""What an ``http_request`` step without a connection calls through: no base URL, no auth."""
_HIDDEN_HEADERS = frozenset({"set-cookie", "authorization", "proxy-authorization"})


class StepFailed(Exception):
    """A stage of the run failed; ``final`` says that running it again cannot help."""

    def __init__(self, message: str, *, final: bool, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.final = final
        self.retry_after = retry_after
        """The service's ``Retry-After`` (seconds): the next run waits at least that long."""


# --- the enricher stage -------------------------------------------------------------------


class EnrichStage(Protocol):
    """``platform.enricher.enrich``: fetches entities by id through the connector's enricher."""

    def __call__(
        self,
        client: ConnectorClient,
        enricher: EnricherDef,
        ids: Sequence[str],
        *,
        execution_id: str | None,
        traceparent: str | None,
    ) -> Awaitable[Enriched]: ...


# --- one run ------------------------------------------------------------------------------


@dataclass
class _Record:
    """A step's record in the making."""

    name: str
    kind: str
    input: Any = None
    trace_ids: list[str] = field(default_factory=list)
    started_at: datetime = field(default_factory=utcnow)
    _clock: float = field(default_factory=time.perf_counter)

    def row(
        self, position: int, status: str, *, output: Any = None, error: str | None = None
    ) -> ExecutionStep:
        return ExecutionStep(
            position=position,
            name=self.name,
            kind=self.kind,
            status=status,
            input=_storable(self.input),
            output=_storable(output),
            error=error,
            trace_ids=list(dict.fromkeys(self.trace_ids)),
            started_at=self.started_at,
            duration_ms=round((time.perf_counter() - self._clock) * 1000, 3),
        )


@dataclass
class _Run:
    job: ScheduledJob
    tenant_id: uuid.UUID
    execution_id: uuid.UUID
    workflow_id: uuid.UUID
    workflow_code: str
    operator: Operator
    version: int
    spec: WorkflowSpec
    source_id: str | None
    trigger_item: dict[str, Any]
    trace: TraceContext
    edition: str
    subscription_id: uuid.UUID | None
    attempt: int
    retry: int
    """How many automatic retries came before this run (0 for a first or a manual run)."""
    replay_of: uuid.UUID | None
    done: dict[tuple[str, str], Any]
    """Outputs of the stages an earlier run of this execution completed, by (kind, name)."""
    position: int
    pending: list[ExecutionStep] = field(default_factory=list)
    """Records written with the next transaction (enrich, filter, skipped steps)."""

    def next_position(self) -> int:
        self.position += 1
        return self.position - 1

    def row(self, record: _Record, status: str, **kwargs: Any) -> ExecutionStep:
        row: ExecutionStep = record.row(self.next_position(), status, **kwargs)
        row.execution_id = self.execution_id
        return row

    def context(self, item: dict[str, Any], outputs: dict[str, Any]) -> dict[str, Any]:
        return {
            "trigger": item,
            "steps": outputs,
            "execution": {
                "id": str(self.execution_id),
                "workflow": self.workflow_code,
                "version": self.version,
                "attempt": self.attempt,
                "replay_of": None if self.replay_of is None else str(self.replay_of),
            },
            "trigger_id": self.source_id,
        }


def _storable(value: Any) -> Any:
    """The value as a JSON column keeps it: plain JSON, and a cut-down form when it is too
    large or nested too deep for the database (MariaDB keeps at most 31 levels)."""
    if value is None:
        return None
    raw = orjson.dumps(value, default=str)
    if len(raw) <= RECORD_MAX_BYTES and depth_of(value) <= JSON_MAX_DEPTH:
        return orjson.loads(raw)
    return {"_truncated": True, "bytes": len(raw), "json": raw[:TEXT_KEPT].decode(errors="ignore")}


def bounded_text(message: str) -> str:
    """An error as a text column keeps it: bounded, and without U+0000 (PostgreSQL)."""
    cleaned = message.replace("\x00", "\\u0000")
    return cleaned if len(cleaned) <= ERROR_KEPT else cleaned[: ERROR_KEPT - 3] + "..."


_FINALITY: tuple[tuple[type[BaseException], bool], ...] = (
    (StepFailed, True),  # says itself
    (ResponseTooLarge, True),  # the answer will be as large next time
    (ConcurrentChange, False),  # the case changed underneath: run the step again
    (UpstreamUnreachable, False),  # timeouts and connections that failed
    (OutboundRateLimited, False),
    (ExpressionError, True),
    (ValidationError, True),
    (SQLAlchemyError, False),
)


def failure_of(exc: BaseException) -> StepFailed:
    """What an exception of a stage means for the execution."""
    if isinstance(exc, StepFailed):
        return exc
    message = str(exc) or type(exc).__name__
    if isinstance(exc, ValidationError):
        message = "; ".join(
            f"{'.'.join(str(p) for p in error['loc']) or 'value'}: {error['msg']}"
            for error in exc.errors()
        )
    for kind, final in _FINALITY:
        if isinstance(exc, kind):
            return StepFailed(message, final=final)
    if isinstance(exc, CasedeskError):  # a refusal (4xx), or a service that is down (5xx)
        return StepFailed(message, final=exc.status < 500)
    log.error("workflow step failed unexpectedly", error=repr(exc)[:500], exc_info=exc)
    return StepFailed(f"{type(exc).__name__}: {message}", final=False)


def _checked(model: type[BaseModel], values: dict[str, Any]) -> Any:
    return model.model_validate({k: v for k, v in values.items() if v is not None})


def _str(value: Any) -> str | None:
    return None if value is None else str(value)


def _case_id(value: Any) -> uuid.UUID:
    try:
        return uuid.UUID(str(value))
    except ValueError:
        raise StepFailed(f"case: {str(value)[:100]!r} is not a case id", final=True) from None


def answer_of(response: httpx.Response) -> Any:
    """A third party's answer as JSON when it is JSON, else as (cut) text."""
    if "json" in response.headers.get("content-type", ""):
        try:
            return response.json()
        except ValueError:
            pass
    return response.text[:TEXT_KEPT]


def refuse_failed(response: httpx.Response) -> None:
    status = response.status_code
    if status < 400:
        return
    request = response.request
    excerpt = response.text[:300]
    raise StepFailed(
        f"{request.method} {request.url.copy_with(query=None)} answered {status}: {excerpt}",
        final=status < 500 and status not in TRANSIENT_STATUSES,
        retry_after=parse_retry_after(response.headers.get("retry-after"))
        if status in RETRY_AFTER_STATUSES
        else None,
    )


class Runner:
    def __init__(
        self,
        database: Database,
        extensions: ExtensionRegistry,
        hub: Hub,
        box: SecretBox,
        *,
        enrich: EnrichStage = enrich_entities,
        retry_delays: Sequence[timedelta] = RETRY_DELAYS,
        senders: Senders | None = None,
        attacher: Attacher | None = None,
    ) -> None:
        self.database = database
        self.attacher = attacher
        """Where channel messages' files go; None: a message's files are not fetched."""
        self.senders = senders or Senders()
        self.extensions = extensions
        self.hub = hub
        self.box = box
        self.enrich = enrich
        self.retry_delays = tuple(retry_delays)
        self._specs: dict[uuid.UUID, WorkflowSpec] = {}
        """Parsed versions by their row id: a version never changes."""

    async def run_job(self, job: ScheduledJob) -> None:
        """``execution.run``: one run of one execution (idempotent: a finished execution, or a
        run an earlier job already made, is left alone)."""
        run = await self._begin(job)
        if run is None:
            return
        try:
            status = await self._stages(run)
        except StepFailed as failure:
            rows = (failure.row,) if isinstance(failure, StepFailedWith) else ()
            await self._fail(run, failure, *rows)
            return
        await self._finish(run, status)

    # --- beginning and ending ---------------------------------------------------------

    async def _begin(self, job: ScheduledJob) -> _Run | None:
        execution_id = uuid.UUID(str(job.payload["execution_id"]))
        attempt = int(job.payload.get("attempt", 1))
        async with UnitOfWork(self.database, job.tenant_id) as uow:
            await uow.begin_write()
            execution = await uow.executions.locked(execution_id)
            if execution is None or not _is_turn_of(execution, attempt):
                return None  # finished, gone with its workflow, or another job's run
            await uow.jobs.hold(job)  # LeaseLost: the worker that holds the job runs it
            workflow = await uow.workflows.get(execution.workflow_id)
            tenant = await uow.tenants.get(job.tenant_id)
            version = await uow.workflows.version(workflow.id, execution.workflow_version)
            spec = None if version is None else self._spec(version.id, version.definition)
            trace = parse_traceparent(execution.traceparent) or new_trace()
            why = "the tenant is disabled" if not tenant.enabled else ""
            if spec is None:
                why = f"version {execution.workflow_version} of workflow {workflow.code!r} is gone"
            if spec is None or why:
                _end(execution, "failed", why)
                uow.add_events([_failed_event(execution, workflow.code, why, trace)])
                await uow.commit()
                return None
            steps = await uow.executions.steps(execution.id)
            execution.status, execution.attempts = "running", attempt
            execution.started_at = execution.started_at or utcnow()
            await uow.commit()
        return _Run(
            job=job,
            tenant_id=job.tenant_id,
            execution_id=execution.id,
            workflow_id=workflow.id,
            workflow_code=workflow.code,
            operator=Operator("workflow", str(workflow.id), workflow.name),
            version=execution.workflow_version,
            spec=spec,
            source_id=execution.source_id,
            trigger_item=dict(execution.trigger_item),
            trace=trace,
            edition=tenant.edition,
            subscription_id=execution.subscription_id,
            attempt=attempt,
            retry=int(job.payload.get("retry", 0)),
            replay_of=execution.replay_of,
            done=_completed(steps),
            position=max((step.position for step in steps), default=-1) + 1,
        )

    def _spec(self, version_id: uuid.UUID, definition: dict[str, Any]) -> WorkflowSpec | None:
        spec = self._specs.get(version_id)
        if spec is None:
            try:
                spec = WorkflowSpec.model_validate(definition)
            except ValueError:
                return None
            if len(self._specs) > 1024:
                self._specs.clear()
            self._specs[version_id] = spec
        return spec

    async def _write(self, run: _Run, *rows: ExecutionStep) -> None:
        """Write records (and the ones waiting) in a transaction of their own."""
        async with UnitOfWork(self.database, run.tenant_id) as uow:
            await uow.begin_write()
            await uow.jobs.hold(run.job)
            self._add(uow, run, rows)
            await uow.commit()

    @staticmethod
    def _add(uow: UnitOfWork, run: _Run, rows: Sequence[ExecutionStep]) -> None:
        for row in [*run.pending, *rows]:
            uow.executions.add_step(row)
        run.pending.clear()

    async def _finish(self, run: _Run, status: str) -> None:
        async with UnitOfWork(self.database, run.tenant_id) as uow:
            await uow.begin_write()
            await uow.jobs.hold(run.job)
            execution = await uow.executions.locked(run.execution_id)
            if execution is None:
                return
            self._add(uow, run, ())
            _end(execution, status, None)
            await uow.commit()

    async def _fail(self, run: _Run, failure: StepFailed, *rows: ExecutionStep) -> None:
        final = failure.final or run.retry >= len(self.retry_delays)
        async with UnitOfWork(self.database, run.tenant_id) as uow:
            await uow.begin_write()
            await uow.jobs.hold(run.job)
            execution = await uow.executions.locked(run.execution_id)
            if execution is None:
                return
            self._add(uow, run, rows)
            if final:
                _end(execution, "failed", failure.message)
                event = _failed_event(execution, run.workflow_code, failure.message, run.trace)
                uow.add_events([event])
            else:
                execution.status, execution.error = "queued", bounded_text(failure.message)
                wait = self.retry_delays[run.retry]
                if failure.retry_after is not None:  # the service said when (429, 503)
                    wait = max(wait, timedelta(seconds=min(failure.retry_after, 86_400)))
                await schedule_run(
                    uow,
                    execution,
                    due_at=utcnow() + wait,
                    retry=run.retry + 1,
                )
            await uow.commit()

    # --- the stages -------------------------------------------------------------------

    async def _stages(self, run: _Run) -> str:
        item = await self._item(run)
        if item is None:
            return "dropped"
        if not await self._filter(run, item):
            return "filtered"
        outputs: dict[str, Any] = {}
        for step in run.spec.steps:
            key = (step.kind, step.name)
            if key in run.done:
                outputs[step.name] = run.done[key]
                continue
            record = _Record(step.name, step.kind)
            if step.when is not None and not passes(step.when, {"trigger": item, "steps": outputs}):
                outputs[step.name] = {"skipped": True}
                run.pending.append(run.row(record, "skipped", output=outputs[step.name]))
                continue
            context = run.context(item, outputs)
            try:
                outputs[step.name] = await _STEPS[step.kind](self, run, step, context, record)
            except LeaseLost:
                raise
            except Exception as exc:
                raise _failed(run, record, exc) from None
        return "succeeded"

    async def _item(self, run: _Run) -> dict[str, Any] | None:
        """The item the steps see: the trigger's, or the entity its enricher fetches; None
        when the source no longer has the entity."""
        done = run.done.get((ENRICH, ENRICH))
        if isinstance(done, dict) and not done.get("_truncated"):
            return done
        record = _Record(ENRICH, ENRICH)
        try:
            client = await self._client(
                run, run.spec.trigger.connection_id, connector=run.spec.trigger.connector
            )
            trigger = client.manifest.trigger(run.spec.trigger.trigger)
            if trigger is None:
                raise StepFailed(
                    f"connector {client.manifest.id!r} has no trigger "
                    f"{run.spec.trigger.trigger!r} any more",
                    final=True,
                )
            if trigger.enricher is None or not _enriched(trigger, run.trigger_item):
                return run.trigger_item
            entity_id = _entity_id(trigger, run)
            record.input = {"id": entity_id, "enricher": trigger.enricher}
            enricher = client.manifest.enrichers[trigger.enricher]
            ahead = await self._ahead(run, trigger, enricher) if enricher.batch else {}
            span = run.trace.child()
            record.trace_ids.append(span.trace_id)
            enriched = await self.enrich(
                client,
                enricher,
                [entity_id, *ahead],
                execution_id=str(run.execution_id),
                traceparent=span.traceparent,
            )
            if ahead:
                await self._keep_ahead(run, trigger, ahead, enriched, span.trace_id)
        except LeaseLost:
            raise
        except Exception as exc:
            raise _failed(run, record, exc) from None
        gone = {entity.id: entity for entity in enriched.gone}
        if entity_id in gone:
            why = (
                f"the source answered {gone[entity_id].status}: it no longer has {entity_id!r}"
                f" (trace {gone[entity_id].trace_id})"
            )
            run.pending.append(run.row(record, "gone", error=why))
            return None
        entity = enriched.entities.get(entity_id)
        if not isinstance(entity, dict):
            what = "nothing" if entity is None else f"a {type(entity).__name__}, not an object"
            failure = StepFailed(f"the enricher returned {what} for {entity_id!r}", final=False)
            raise StepFailedWith(failure, run.row(record, "failed", error=failure.message))
        if trigger.enriched_as is not None:  # the record keeps what the steps see
            entity = run.trigger_item | {trigger.enriched_as: entity}
        run.pending.append(run.row(record, "succeeded", output=entity))
        return entity

    async def _ahead(
        self, run: _Run, trigger: TriggerDef, enricher: EnricherDef
    ) -> dict[str, uuid.UUID]:
        """For an enricher that batches: the entity ids of the subscription's other queued
        executions that have not run yet, with their executions, so that one batch request
        fetches what several deliveries name (Graph notifications that arrive together)."""
        assert enricher.batch is not None
        if run.subscription_id is None:
            return {}
        async with UnitOfWork(self.database, run.tenant_id) as uow:
            waiting = await uow.executions.not_started(
                run.subscription_id, other_than=run.execution_id, limit=enricher.batch.max_ids - 1
            )
        ahead: dict[str, uuid.UUID] = {}
        for other in waiting:
            item = dict(other.trigger_item)
            if not _enriched(trigger, item):
                continue
            try:
                entity_id = _id_in(trigger, dict(run.spec.trigger.settings), item, other.source_id)
            except StepFailed:
                continue  # its own run says why
            ahead.setdefault(entity_id, other.id)
        return ahead

    async def _keep_ahead(
        self,
        run: _Run,
        trigger: TriggerDef,
        ahead: dict[str, uuid.UUID],
        enriched: Enriched,
        trace_id: str,
    ) -> None:
        """Record what the batch fetched for the other executions as their enrich step, for
        each that is still waiting to run; one that began meanwhile fetches its own."""
        async with UnitOfWork(self.database, run.tenant_id) as uow:
            await uow.begin_write()
            await uow.jobs.hold(run.job)
            for entity_id, execution_id in ahead.items():
                entity = enriched.entities.get(entity_id)
                if not isinstance(entity, dict):
                    continue  # gone, or not fetched: its own run finds out
                other = await uow.executions.locked(execution_id)
                if other is None or other.status != "queued" or other.attempts != 0:
                    continue
                if await uow.executions.steps(execution_id):
                    continue
                if trigger.enriched_as is not None:
                    entity = dict(other.trigger_item) | {trigger.enriched_as: entity}
                record = _Record(ENRICH, ENRICH)
                record.input = {
                    "id": entity_id,
                    "enricher": trigger.enricher,
                    "batched_with": str(run.execution_id),
                }
                record.trace_ids.append(trace_id)
                row = record.row(0, "succeeded", output=entity)
                row.execution_id = execution_id
                uow.executions.add_step(row)
            await uow.commit()

    async def _filter(self, run: _Run, item: dict[str, Any]) -> bool:
        condition = run.spec.filter
        if (FILTER, FILTER) in run.done or (isinstance(condition, ItemAllOf) and not condition.all):
            return True
        record = _Record(FILTER, FILTER)
        record.input = condition.model_dump(mode="json")
        passed = passes(condition, {"trigger": item})
        run.pending.append(
            run.row(record, "succeeded" if passed else "filtered", output={"passed": passed})
        )
        return passed

    async def _client(
        self, run: _Run, connection_id: uuid.UUID | None, *, connector: str = ""
    ) -> ConnectorClient:
        """The client of a connection (which names its connector), or of a connector used
        without one."""
        async with UnitOfWork(self.database, run.tenant_id) as uow:
            return await open_client(
                uow,
                self.hub,
                self.box,
                tenant_id=run.tenant_id,
                connector=connector,
                connection_id=connection_id,
            )

    # --- steps that change cases ------------------------------------------------------

    async def _in_case_transaction(
        self,
        run: _Run,
        record: _Record,
        act: Callable[[ActivityContext], Awaitable[dict[str, Any]]],
    ) -> dict[str, Any]:
        """Run the activity and write the step's record in one transaction."""
        async with UnitOfWork(self.database, run.tenant_id) as uow:
            await uow.begin_write()
            await uow.jobs.hold(run.job)
            context = ActivityContext(
                uow=uow,
                operator=run.operator,
                tenant_id=run.tenant_id,
                edition=run.edition,
                extensions=self.extensions,
                trace=run.trace.child(),
            )
            async with uow.one_transaction():
                output = await act(context)
            self._add(uow, run, [run.row(record, "succeeded", output=output)])
            await uow.commit()
        return output

    async def _create_case(
        self, run: _Run, step: Step, context: dict[str, Any], record: _Record
    ) -> dict[str, Any]:
        assert isinstance(step, CreateCase)
        rendered = {
            "template": _str(render(step.template, context)),
            "title": _str(render(step.title, context)),
            "description": _str(_maybe(step.description, context)),
            "priority": _str(_maybe(step.priority, context)),
            "queue": _str(_maybe(step.queue, context)),
            "customer_email": _str(_maybe(step.customer_email, context)),
            "customer_name": _str(_maybe(step.customer_name, context)),
            "form": render_tree(step.form, context),
            "tags": _tags(step.tags, context),
            "external_ref": _str(_maybe(step.external_ref, context)),
            "channel": step.channel,
        }
        record.input = rendered
        customer = None
        if rendered["customer_email"]:
            customer = _checked(
                CustomerRef,
                {"email": rendered["customer_email"], "name": rendered["customer_name"]},
            )
        draft = _checked(
            CaseDraft,
            {
                key: rendered[key]
                for key in ("template", "title", "description", "priority", "queue")
            }
            | {
                "customer": customer,
                "channel": rendered["channel"],
                "external_ref": rendered["external_ref"] or None,
                "form": rendered["form"] or {},
                "tags": rendered["tags"],
            },
        )

        async def act(activity: ActivityContext) -> dict[str, Any]:
            outcome = await create_case(activity, draft)
            body = outcome.body
            return {
                "id": body["id"],
                "number": body["number"],
                "title": body["title"],
                "state": body["state"],
                "queue": body.get("queue"),
                "priority": body["priority"],
                "external_ref": body.get("external_ref"),
                "version": body["version"],
                "created": outcome.status_code == 201,
            }

        return await self._in_case_transaction(run, record, act)

    async def _add_comment(
        self, run: _Run, step: Step, context: dict[str, Any], record: _Record
    ) -> dict[str, Any]:
        assert isinstance(step, AddComment)
        rendered = {
            "case": _str(render(step.case, context)),
            "body": _str(render(step.body, context)),
            "public": step.public,
            "author_email": _str(_maybe(step.author_email, context)),
        }
        record.input = rendered
        author = None
        if rendered["author_email"]:
            author = _checked(AuthorRef, {"type": "customer", "email": rendered["author_email"]})
        params = CommentParams(
            case_id=_case_id(rendered["case"]),
            body=_checked(
                CommentInput,
                {"body": rendered["body"], "public": step.public, "author": author},
            ),
        )

        async def act(activity: ActivityContext) -> dict[str, Any]:
            comment = await AddCommentActivity(activity).run(params)
            return {"id": str(comment.id), "case_id": str(comment.case_id)}

        return await self._in_case_transaction(run, record, act)

    async def _receive_message(
        self, run: _Run, step: Step, context: dict[str, Any], record: _Record
    ) -> dict[str, Any]:
        assert isinstance(step, ReceiveMessage)
        trigger = run.spec.trigger
        client = await self._client(run, trigger.connection_id, connector=trigger.connector)
        manifest = client.manifest
        if manifest.channel is None:
            raise StepFailed(f"connector {manifest.id!r} is no channel", final=True)
        entity = context["trigger"]
        facts = {"trigger_id": run.source_id, "settings": dict(client.account.settings)}
        hooks = hooks_of(manifest)
        made = hooks.message(trigger.trigger, entity, facts)
        if made is None:
            made = render_tree(manifest.channel.message, {"entity": entity, **facts})
        if not isinstance(made, dict):
            raise StepFailed(f"the connector made no message of the item: {made!r}", final=True)
        message = ChannelMessage.model_validate(made)
        span = run.trace.child()
        message = await self.senders.complete(
            client,
            message,
            self.enrich,
            execution_id=str(run.execution_id),
            traceparent=span.traceparent,
        )
        files = None
        wanted = self.attacher is not None and message.kind == "message" and not message.own
        if wanted and not await self._taken(run, manifest.id, message.id):
            described = hooks.files(trigger.trigger, entity, facts)
            files = await self._fetch_files(run, client, described, span.traceparent)
        intake = Intake(
            channel=manifest.id,
            connection_id=trigger.connection_id,
            template=str(render(step.template, context)),
            queue=_str(_maybe(step.queue, context)),
            priority=_str(_maybe(step.priority, context)),
            tags=_tags(step.tags, context),
            on_closed=step.on_closed,
        )
        record.input = {
            "message": {
                "kind": message.kind,
                "id": message.id,
                "thread_id": message.thread_id,
                "subject": message.subject,
                "sender": message.sender.model_dump(),
                "message_id": message.message_id,
                "in_reply_to": message.in_reply_to,
                "automatic": message.automatic,
                "own": message.own,
                "text": message.text[:500],
            },
            "template": intake.template,
            "queue": intake.queue,
            "priority": intake.priority,
        }

        async def act(activity: ActivityContext) -> dict[str, Any]:
            outcome = await receive(activity, message, intake)
            if files and self.attacher is not None and outcome["outcome"] in ATTACHING:
                incoming, missing = files
                outcome["attachments"] = await self.attacher.attach_files(
                    activity, outcome, incoming, missing
                )
            return outcome

        return await self._in_case_transaction(run, record, act)

    async def _taken(self, run: _Run, channel: str, message_id: str) -> bool:
        """The message was taken in before (Slack's ``message`` and ``app_mention`` of one
        message, a notification repeated): it will be a duplicate, so its files are not
        downloaded again."""
        async with UnitOfWork(self.database, run.tenant_id) as uow:
            return await uow.channel_messages.by_external_id(channel, message_id) is not None

    async def _fetch_files(
        self,
        run: _Run,
        client: ConnectorClient,
        described: list[ChannelFile],
        traceparent: str | None,
    ) -> tuple[list[IncomingFile], list[MissingFile]] | None:
        """A message's files, fetched before its transaction. A download that may succeed
        later (a 5xx, no answer) fails the step as transient, so the run is retried with the
        message; on the last retry the message is taken without that file, which is named
        as not fetched."""
        if not described:
            return None
        assert self.attacher is not None
        fetched = await fetch_files(
            client,
            described,
            self.attacher.limits.max_bytes,
            execution_id=str(run.execution_id),
            traceparent=traceparent,
        )
        if fetched.unavailable and run.retry < len(self.retry_delays):
            what = "; ".join(f"{u.filename}: {u.note}" for u in fetched.unavailable)
            raise StepFailed(f"a file of the message could not be fetched ({what})", final=False)
        incoming = [
            IncomingFile(
                got.file.filename,
                got.file.content_type,
                got.content,
                got.content_id,
                got.file.inline,
                stated_size=got.over_limit_size,
            )
            for got in fetched.files
        ]
        missing = [MissingFile(m.filename, m.note) for m in fetched.missing + fetched.unavailable]
        return incoming, missing

    async def _update_case(
        self, run: _Run, step: Step, context: dict[str, Any], record: _Record
    ) -> dict[str, Any]:
        assert isinstance(step, UpdateCase)
        rendered = {
            "case": _str(render(step.case, context)),
            "title": _str(_maybe(step.title, context)),
            "priority": _str(_maybe(step.priority, context)),
            "tags": None if step.tags is None else _tags(step.tags, context),
            "form": None if step.form is None else render_tree(step.form, context),
        }
        record.input = rendered
        params = UpdateParams(
            case_id=_case_id(rendered["case"]),
            body=_checked(CaseChanges, {k: v for k, v in rendered.items() if k != "case"}),
        )

        async def act(activity: ActivityContext) -> dict[str, Any]:
            case = await UpdateCaseActivity(activity).run(params)
            return {"id": str(case.id), "version": case.version}

        return await self._in_case_transaction(run, record, act)

    async def _apply_action(
        self, run: _Run, step: Step, context: dict[str, Any], record: _Record
    ) -> dict[str, Any]:
        assert isinstance(step, ApplyAction)
        rendered = {
            "case": _str(render(step.case, context)),
            "action": _str(render(step.action, context)),
        }
        record.input = rendered
        params = ActionParams(
            case_id=_case_id(rendered["case"]),
            action=str(rendered["action"]),
            body=ActionInput(),
        )

        async def act(activity: ActivityContext) -> dict[str, Any]:
            case = await ApplyActionActivity(activity).run(params)
            return {"id": str(case.id), "state": case.state, "closed": case.closed}

        return await self._in_case_transaction(run, record, act)

    # --- steps that call out ----------------------------------------------------------

    async def _connector_action(
        self, run: _Run, step: Step, context: dict[str, Any], record: _Record
    ) -> dict[str, Any]:
        assert isinstance(step, ConnectorAction)
        given = render_tree(step.input, context)
        record.input = {
            "connection_id": str(step.connection_id),
            "action": step.action,
            "input": given,
        }
        client = await self._client(run, step.connection_id)
        action = client.manifest.actions.get(step.action)
        if action is None:
            raise StepFailed(
                f"connector {client.manifest.id!r} has no action {step.action!r} any more",
                final=True,
            )
        check_input(action.input, given)
        response = await self._send(
            run, record, client, action.request, {"input": given}, step.action
        )
        body = answer_of(response)
        error = select(action.error, body) if action.error is not None else None
        if error not in (None, False, "", [], {}):
            raise StepFailed(
                f"{step.action} failed: {str(error)[:300]}",
                final=str(error) not in action.transient_errors,
            )
        if action.output is not None:
            body = select(action.output, body)
        return await self._called(run, record, {"status": response.status_code, "body": body})

    async def _http_request(
        self, run: _Run, step: Step, context: dict[str, Any], record: _Record
    ) -> dict[str, Any]:
        assert isinstance(step, HttpRequest)
        if step.connection_id is None:
            client = ConnectorClient(self.hub, _PLAIN_HTTP, Account(run.tenant_id, None, {}))
        else:
            client = await self._client(run, step.connection_id)
        template = step.request.as_request()
        # The record shows the request as sent, with the connection's secrets left out.
        hidden = {name: "[redacted]" for name in client.account.secrets}
        shown = render_request(template, client.context | context | {"secrets": hidden})
        record.input = {
            "connection_id": _str(step.connection_id),
            "method": shown.method,
            "url": shown.url,
            "query": shown.params,
            "headers": shown.headers,
            "json": shown.json,
            "form": shown.content,
        }
        response = await self._send(run, record, client, template, context, "http_request")
        headers = {
            name: value
            for name, value in response.headers.items()
            if name.lower() not in _HIDDEN_HEADERS
        }
        output = {"status": response.status_code, "headers": headers, "body": answer_of(response)}
        return await self._called(run, record, output)

    async def _called(self, run: _Run, record: _Record, output: dict[str, Any]) -> dict[str, Any]:
        """Record a call that was made, at once: a crash after it repeats as little as can be."""
        await self._write(run, run.row(record, "succeeded", output=output))
        return output

    async def _send(
        self,
        run: _Run,
        record: _Record,
        client: ConnectorClient,
        template: Any,
        context: Mapping[str, Any],
        action: str,
    ) -> httpx.Response:
        span = run.trace.child()
        record.trace_ids.append(span.trace_id)
        async with UnitOfWork(self.database, run.tenant_id) as uow:
            await uow.jobs.hold(run.job)  # a runner whose lease ran out calls nothing
        response = await client.send(
            template,
            context,
            action=action,
            execution_id=str(run.execution_id),
            traceparent=span.traceparent,
        )
        refuse_failed(response)
        return response


class StepFailedWith(StepFailed):
    """A failure and the record of the stage that failed."""

    def __init__(self, failure: StepFailed, row: ExecutionStep) -> None:
        super().__init__(failure.message, final=failure.final, retry_after=failure.retry_after)
        self.row = row


def _maybe(text: str | None, context: Mapping[str, Any]) -> Any:
    return None if text is None else render(text, context)


def _tags(templates: Sequence[str], context: Mapping[str, Any]) -> list[str]:
    """The rendered tags; one that renders empty is no tag."""
    rendered = (_str(render(text, context)) for text in templates)
    return [tag for tag in rendered if tag]


def check_input(schema: dict[str, Any], given: Any) -> None:
    """Refuse an action's input that breaks the action's schema, naming each place."""
    try:
        validate_form(schema, given)
    except InvalidInput as invalid:
        places = [
            f"input{str(error['field']).removeprefix('form')}: {error['message']}"
            for error in invalid.extra.get("errors") or []
        ]
        raise StepFailed("; ".join(places) or invalid.detail, final=True) from None


def _is_turn_of(execution: Execution, attempt: int) -> bool:
    """Whether the run numbered ``attempt`` is the one the execution waits for: the next
    one when it is queued, the same one when a runner stopped while it ran."""
    if execution.status == "queued":
        return attempt == execution.attempts + 1
    return execution.status == "running" and attempt == execution.attempts


def _end(execution: Execution, status: str, error: str | None) -> None:
    execution.status, execution.error = status, None if error is None else bounded_text(error)
    execution.finished_at = utcnow()


def _failed(run: _Run, record: _Record, exc: Exception) -> StepFailedWith:
    failure = failure_of(exc)
    return StepFailedWith(failure, run.row(record, "failed", error=bounded_text(failure.message)))


def _enriched(trigger: TriggerDef, item: dict[str, Any]) -> bool:
    """Whether the trigger's enricher fetches this item's entity (``enrich_when``)."""
    if trigger.enrich_when is None:
        return True
    found = select(trigger.enrich_when, item)
    return found is not None and found is not False and found not in ("", [], {})


def _entity_id(trigger: TriggerDef, run: _Run) -> str:
    return _id_in(trigger, dict(run.spec.trigger.settings), run.trigger_item, run.source_id)


def _id_in(
    trigger: TriggerDef, settings: dict[str, Any], item: dict[str, Any], source_id: str | None
) -> str:
    """The id the enricher fetches: where the instant trigger's events carry it, else the
    item's own id at the source."""
    spec = trigger.effective(settings)
    if isinstance(spec, InstantSpec) and spec.item_id is not None:
        found = select(spec.item_id, item)
        if found is None or found == "":
            raise StepFailed(f"item_id {spec.item_id!r} finds nothing in the event", final=True)
        return str(found)
    if source_id is None:
        raise StepFailed("the item has no id at its source to fetch it by", final=True)
    return source_id


def _completed(steps: Sequence[ExecutionStep]) -> dict[tuple[str, str], Any]:
    return {
        (step.kind, step.name): step.output
        for step in steps
        if step.status in ("succeeded", "skipped")
    }


_STEPS: dict[
    str, Callable[[Runner, _Run, Step, dict[str, Any], _Record], Awaitable[dict[str, Any]]]
] = {
    "create_case": Runner._create_case,
    "add_comment": Runner._add_comment,
    "receive_message": Runner._receive_message,
    "update_case": Runner._update_case,
    "apply_action": Runner._apply_action,
    "connector_action": Runner._connector_action,
    "http_request": Runner._http_request,
}


def _failed_event(
    execution: Execution, workflow: str, error: str, trace: TraceContext
) -> OutboxEvent:
    facts = {
        "id": str(execution.id),
        "workflow_id": str(execution.workflow_id),
        "workflow": workflow,
        "version": execution.workflow_version,
        "status": "failed",
        "source_id": execution.source_id,
        "subscription_id": _str(execution.subscription_id),
        "attempts": execution.attempts,
        "replay_of": _str(execution.replay_of),
    }
    return new_event(
        execution.tenant_id,
        EXECUTION_FAILED,
        Subject(EXECUTION, execution.id, facts),
        {"workflow": workflow, "version": execution.workflow_version, "error": bounded_text(error)},
        trace,
    )


# --- queueing runs: retries and replays ---------------------------------------------------


async def schedule_run(
    uow: UnitOfWork, execution: Execution, *, due_at: datetime, retry: int
) -> None:
    """The job of the execution's next run, numbered ``attempts + 1``."""
    attempt = execution.attempts + 1
    await uow.jobs.schedule(
        kind=RUN,
        key=f"{run_key(execution)}:{attempt}",
        due_at=due_at,
        payload={"execution_id": str(execution.id), "attempt": attempt, "retry": retry},
        traceparent=execution.traceparent,
    )


async def retry(uow: UnitOfWork, actor: Principal, execution_id: uuid.UUID) -> Execution:
    """Run a failed execution again, with the version it ran; its succeeded steps stand."""
    actor.require(Role.ADMIN, "retrying an execution")
    await uow.begin_write()
    execution = await uow.executions.locked(execution_id)
    if execution is None:
        raise NotFound(f"execution {execution_id} not found")
    if execution.status != "failed":
        raise Conflict(
            f"only a failed execution can be retried; this one is {execution.status}",
            execution_status=execution.status,
        )
    execution.status, execution.error, execution.finished_at = "queued", None, None
    await schedule_run(uow, execution, due_at=utcnow(), retry=0)
    await uow.commit()
    return execution


async def replay(uow: UnitOfWork, actor: Principal, execution_id: uuid.UUID) -> Execution:
    """Run any execution's recorded trigger item again, as a new execution of the
    workflow's published version. A ``create_case`` with its default reference finds the
    case the first run made instead of making another."""
    actor.require(Role.ADMIN, "replaying an execution")
    await uow.begin_write()
    original = await uow.executions.get(execution_id)
    workflow = await uow.workflows.get(original.workflow_id)
    execution = uow.executions.add(
        Execution(
            id=uuid7(),
            workflow_id=workflow.id,
            workflow_version=workflow.latest_version,
            subscription_id=original.subscription_id,
            source_id=original.source_id,
            trigger_item=original.trigger_item,
            status="queued",
            attempts=0,
            replay_of=original.id,
            traceparent=trace_or_new().child().traceparent,
        )
    )
    await uow.flush()
    await uow.jobs.schedule(
        kind=RUN,
        key=run_key(execution),
        due_at=utcnow(),
        payload={"execution_id": str(execution.id)},
        traceparent=execution.traceparent,
    )
    await uow.commit()
    return execution
