"""The enricher stage: turns the ids trigger events carry into the entities they name.

Separate from the triggers (a polling run and an instant delivery both hand over ids), it
fetches each entity through the connector's ``EnricherDef``:

- **memoized** per (connection, enricher, id) for the run: pass one ``Memo`` to every call of
  a run, and an id is fetched once whatever the number of events that name it;
- **batched** when the enricher has a ``batch`` request: ``max_ids`` at a time, and an id the
  batch answer does not hold is fetched on its own, so its own answer decides what it is;
- **bounded**: at most ``concurrency`` calls at once per connection in this process
  (``ConnectionLimits``, shared by every run unless the caller brings its own);
- **retried** through the hub, which also traces every call.

An entity that answers 404 or 410 is gone: it is dropped from the run and reported in
``Enriched.gone`` with the trace of its call, and the rest goes on. Any other failure raises
``EnrichmentFailed``, so the caller retries the run later and never drops the event.

It knows nothing of workflows: the runner calls ``enrich`` and records what it gets.
"""

from __future__ import annotations

import asyncio
import weakref
from collections.abc import Coroutine, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

import httpx
import orjson

from casedesk.integrations.errors import HubError
from casedesk.integrations.expressions import ExpressionError, select
from casedesk.integrations.manifests import EnricherDef
from casedesk.integrations.manifests.common import RequestTemplate
from casedesk.integrations.runtime import ConnectorClient
from casedesk.kit.tracing import TraceContext, parse_traceparent, trace_or_new

T = TypeVar("T")
GONE_STATUSES = frozenset({404, 410})
ACTION = "enrich"


@dataclass(frozen=True, slots=True)
class Gone:
    """An entity the source no longer has, and the call that found out."""

    id: str
    status: int
    trace_id: str
    """The trace of the call (``GET /api/v1/traces?execution_id=…`` lists its records)."""
    span_id: str
    """The call's own span: the ``parent_span_id`` of each attempt's trace record."""


@dataclass(frozen=True, slots=True)
class Enriched:
    entities: dict[str, Any]
    """Each id that was found, in the order asked, with its entity."""
    gone: list[Gone]
    """Each id that answered 404 or 410, in the order asked."""


class EnrichmentFailed(Exception):
    """An entity could not be fetched for a reason other than being gone: retry the run."""

    def __init__(
        self,
        message: str,
        *,
        entity_id: str | None,
        status: int | None,
        trace_id: str,
        span_id: str,
    ) -> None:
        super().__init__(message)
        self.entity_id = entity_id
        self.status = status
        self.trace_id = trace_id
        self.span_id = span_id


Key = tuple[str, str, str]
"""(connection, enricher, id)."""


@dataclass
class Memo:
    """What one run has fetched, by (connection, enricher, id): pass the same one to every
    ``enrich`` of a run."""

    found: dict[Key, Any] = field(default_factory=dict)
    gone: dict[Key, Gone] = field(default_factory=dict)

    def knows(self, key: Key) -> bool:
        return key in self.found or key in self.gone


class ConnectionLimits:
    """At most ``concurrency`` calls at once per connection, across every run that shares it.

    A semaphore lives as long as a call holds it; the first call on a connection sets its size.
    """

    def __init__(self) -> None:
        self._semaphores: weakref.WeakValueDictionary[str, asyncio.Semaphore] = (
            weakref.WeakValueDictionary()
        )

    def of(self, connection: str, concurrency: int) -> asyncio.Semaphore:
        semaphore = self._semaphores.get(connection)
        if semaphore is None:
            semaphore = asyncio.Semaphore(concurrency)
            self._semaphores[connection] = semaphore
        return semaphore


SHARED_LIMITS = ConnectionLimits()
"""The process's limits, used when a caller brings none."""


@dataclass(frozen=True, slots=True)
class _Call:
    client: ConnectorClient
    execution_id: str | None
    parent: TraceContext
    semaphore: asyncio.Semaphore

    async def send(
        self, template: RequestTemplate, context: dict[str, Any], entity_id: str | None
    ) -> tuple[httpx.Response, TraceContext]:
        span = self.parent.child()
        async with self.semaphore:
            try:
                response = await self.client.send(
                    template,
                    context,
                    action=ACTION,
                    execution_id=self.execution_id,
                    traceparent=span.traceparent,
                )
            except (HubError, ExpressionError, httpx.HTTPError) as error:
                raise EnrichmentFailed(
                    f"fetching {_what(entity_id)} failed: {error}",
                    entity_id=entity_id,
                    status=None,
                    trace_id=span.trace_id,
                    span_id=span.span_id,
                ) from error
        return response, span


async def enrich(
    client: ConnectorClient,
    enricher: EnricherDef,
    ids: Sequence[str],
    *,
    execution_id: str | None,
    traceparent: str | None,
    memo: Memo | None = None,
    limits: ConnectionLimits | None = None,
) -> Enriched:
    """Fetch the entities ``ids`` name; raises ``EnrichmentFailed`` unless each was found or
    is gone. ``traceparent`` is the run's: every call is a child span of it."""
    memo = memo if memo is not None else Memo()
    account = client.account
    connection = (
        str(account.connection_id)
        if account.connection_id is not None
        else f"{account.tenant_id}:{client.manifest.id}"
    )
    call = _Call(
        client,
        execution_id,
        parse_traceparent(traceparent) or trace_or_new(),
        (limits or SHARED_LIMITS).of(connection, enricher.concurrency),
    )
    fingerprint = enricher.model_dump_json()
    keys = {str(i): (connection, fingerprint, str(i)) for i in ids}
    found, gone = await _fetch(
        call, enricher, [i for i, key in keys.items() if not memo.knows(key)]
    )
    memo.found.update({keys[i]: entity for i, entity in found.items()})
    memo.gone.update({keys[vanished.id]: vanished for vanished in gone})
    return Enriched(
        {i: memo.found[key] for i, key in keys.items() if key in memo.found},
        [memo.gone[key] for key in keys.values() if key in memo.gone],
    )


async def _fetch(
    call: _Call, enricher: EnricherDef, ids: list[str]
) -> tuple[dict[str, Any], list[Gone]]:
    found: dict[str, Any] = {}
    batch = enricher.batch
    if batch is not None and len(ids) > 1:
        answers = await _all(
            [_fetch_batch(call, enricher, chunk) for chunk in _chunks(ids, batch.max_ids)]
        )
        for answer in answers:
            found.update(answer)
    alone = [entity_id for entity_id in ids if entity_id not in found]
    outcomes = await _all([_fetch_one(call, enricher, i) for i in alone])
    gone = []
    for entity_id, outcome in zip(alone, outcomes, strict=True):
        if isinstance(outcome, Gone):
            gone.append(outcome)
        else:
            found[entity_id] = outcome
    return found, gone


async def _fetch_one(call: _Call, enricher: EnricherDef, entity_id: str) -> Any:
    """The entity, or ``Gone`` when the source answers 404/410 for it."""
    response, span = await call.send(enricher.request, {"id": entity_id}, entity_id)
    if response.status_code in GONE_STATUSES:
        return Gone(entity_id, response.status_code, span.trace_id, span.span_id)
    answer = _answer(response, span, entity_id)
    if enricher.gone is not None and _select(enricher.gone, answer, span, entity_id) not in (
        None,
        False,
        "",
        [],
        {},
    ):
        return Gone(entity_id, response.status_code, span.trace_id, span.span_id)
    entity = _select(enricher.entity, answer, span, entity_id)
    if entity is None:
        raise _failed(
            f"the answer for {_what(entity_id)} holds no entity", response, span, entity_id
        )
    return entity


async def _fetch_batch(call: _Call, enricher: EnricherDef, ids: list[str]) -> dict[str, Any]:
    """What one batch request found, by id; a batch endpoint that answers 404/410 finds
    nothing, and each of its ids is asked for alone."""
    assert enricher.batch is not None
    batch = enricher.batch
    response, span = await call.send(batch.request, {"ids": ids}, None)
    if response.status_code in GONE_STATUSES:
        return {}
    entities = _select(batch.entities, _answer(response, span, None), span, None)
    if entities is None:
        return {}
    if not isinstance(entities, list):
        message = f"a batch answer's entities are a {type(entities).__name__}, not a list"
        raise _failed(message, response, span, None)
    asked = set(ids)
    found: dict[str, Any] = {}
    for entity in entities:
        entity_id = _select(batch.entity_id, entity, span, None)
        if entity_id is not None and str(entity_id) in asked:
            found[str(entity_id)] = entity
    return found


async def _all(calls: list[Coroutine[Any, Any, T]]) -> list[T]:
    """Every call's result; the first ``EnrichmentFailed`` calls off the rest and is raised."""
    try:
        async with asyncio.TaskGroup() as group:
            tasks = [group.create_task(each) for each in calls]
    except* EnrichmentFailed as failures:
        raise _first(failures) from None
    return [task.result() for task in tasks]


def _first(group: BaseExceptionGroup[EnrichmentFailed]) -> EnrichmentFailed:
    first = group.exceptions[0]
    return _first(first) if isinstance(first, BaseExceptionGroup) else first


def _answer(response: httpx.Response, span: TraceContext, entity_id: str | None) -> Any:
    if not response.is_success:
        message = f"fetching {_what(entity_id)} answered {response.status_code}"
        raise _failed(message, response, span, entity_id)
    try:
        return orjson.loads(response.content)
    except orjson.JSONDecodeError:
        message = f"the answer for {_what(entity_id)} is not JSON"
        raise _failed(message, response, span, entity_id) from None


def _select(selection: str, data: Any, span: TraceContext, entity_id: str | None) -> Any:
    try:
        return select(selection, data)
    except ExpressionError as error:
        raise EnrichmentFailed(
            str(error),
            entity_id=entity_id,
            status=None,
            trace_id=span.trace_id,
            span_id=span.span_id,
        ) from error


def _failed(
    message: str, response: httpx.Response, span: TraceContext, entity_id: str | None
) -> EnrichmentFailed:
    return EnrichmentFailed(
        f"{message} (trace {span.trace_id})",
        entity_id=entity_id,
        status=response.status_code,
        trace_id=span.trace_id,
        span_id=span.span_id,
    )


def _what(entity_id: str | None) -> str:
    return "a batch" if entity_id is None else f"entity {entity_id!r}"


def _chunks(ids: list[str], size: int) -> Iterator[list[str]]:
    for start in range(0, len(ids), size):
        yield ids[start : start + size]
