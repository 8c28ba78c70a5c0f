"""Domain events as CloudEvents 1.0 envelopes, written to the outbox with the change.

Every event is about one subject — a case today; a connection, a subscription or a workflow
execution as the integration platform adds them — and has a type that its producer declared
in ``EVENTS``. Rules and webhook subscriptions may name only declared types, and each consumer
group listens to the families of the types it can act on.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

from casedesk.domain.cases.priority import Priority
from casedesk.kit.ids import uuid7
from casedesk.kit.tracing import TraceContext
from casedesk.store.models import Case, OutboxEvent


@dataclass(frozen=True, slots=True)
class EventType:
    name: str
    """``<family>.<what happened>``, e.g. ``case.created``."""
    subject: str
    """What the event is about: ``case``, ``connection``, ``execution``, ..."""
    summary: str
    fields: tuple[str, ...] = ()
    """What the event's data says besides its subject and actor (``event.<field>`` in rules)."""


class EventTypes:
    """The event types some producer emits, by name; producers declare theirs at import."""

    def __init__(self) -> None:
        self._types: dict[str, EventType] = {}

    def declare(
        self, name: str, subject: str, summary: str, fields: tuple[str, ...] = ()
    ) -> EventType:
        family, _, what = name.partition(".")
        if not family or not what or "*" in name:
            raise ValueError(f"an event type is <family>.<what happened>, not {name!r}")
        declared = EventType(name, subject, summary, fields)
        if self._types.setdefault(name, declared) != declared:
            raise ValueError(f"event type {name} is already declared differently")
        return declared

    def get(self, name: str) -> EventType | None:
        return self._types.get(name)

    def __contains__(self, name: object) -> bool:
        return name in self._types

    def names(self, *, subject: str | None = None) -> list[str]:
        """Declared type names in declaration order, of one subject if given."""
        return [t.name for t in self._types.values() if subject in (None, t.subject)]

    def families(self, *, subject: str | None = None) -> list[str]:
        """``case.*``-style patterns covering every declared type (of one subject)."""
        return sorted({name.split(".")[0] + ".*" for name in self.names(subject=subject)})


EVENTS = EventTypes()
CASE = "case"
for _name, _summary, _fields in (
    ("case.created", "a case was opened", ("template",)),
    ("case.updated", "title, priority, form or tags changed", ("changes",)),
    ("case.state_changed", "a state-machine action was applied", ("action", "from", "to")),
    ("case.transferred", "the case moved to another queue or assignee", ("from", "to", "task_id")),
    ("case.closed", "the case reached an end state", ()),
    ("case.reopened", "a closed case was reopened", ()),
    ("case.child_created", "a child case was opened under this one", ("child_id", "child_number")),
    ("case.rated", "the customer rated the case", ("score",)),
    ("task.created", "the case got a task to work", ("task_id", "queue")),
    ("task.accepted", "an agent took the case's task", ("task_id", "assignee_id")),
    ("comment.added", "a comment was added", ("comment_id", "public", "author_type")),
    (
        "comment.changed",
        "a comment was edited or deleted where it was written (a chat channel)",
        ("comment_id", "change"),
    ),
    (
        "attachment.added",
        "a file was attached to the case or one of its comments",
        ("attachment_id", "comment_id", "filename", "content_type", "size"),
    ),
    ("sla.warning", "an SLA clock reached its warning point", ("metric", "target_at")),
    ("sla.breached", "an SLA clock passed its target", ("metric", "target_at")),
):
    EVENTS.declare(_name, CASE, _summary, _fields)

CONNECTION = "connection"
EVENTS.declare(
    "connection.needs_reauth",
    CONNECTION,
    "the provider refused the connection's refresh token; an admin must authorize it again",
    ("reason",),
)


@dataclass(frozen=True, slots=True)
class Subject:
    """What an event is about, and the facts about it that the event carries."""

    type: str
    id: uuid.UUID
    facts: dict[str, Any]


def subject_type_of(envelope: dict[str, Any]) -> str:
    """The subject type of a kept envelope, from its ``source`` (``/tenants/<id>/cases``)."""
    collection = str(envelope.get("source", "")).rstrip("/").rsplit("/", 1)[-1]
    return collection.removesuffix("s") or CASE


def about_case(case: Case) -> Subject:
    return Subject(CASE, case.id, case_snapshot(case))


def case_snapshot(case: Case) -> dict[str, Any]:
    """The fields of a case that consumers (rules, webhooks, search) filter on."""
    return {
        "id": str(case.id),
        "number": case.number,
        "title": case.title,
        "state": case.state,
        "closed": case.closed,
        "priority": Priority.from_rank(case.priority).value,
        "queue_id": str(case.queue_id),
        "assignee_id": str(case.assignee_id) if case.assignee_id else None,
        "customer_id": str(case.customer_id) if case.customer_id else None,
        "template_id": str(case.template_id),
        "channel": case.channel,
        "tags": list(case.tags),
        "form": dict(case.form),
        "version": case.version,
    }


def new_event(
    tenant_id: uuid.UUID,
    event_type: str,
    subject: Subject,
    data: dict[str, Any],
    trace: TraceContext,
) -> OutboxEvent:
    declared = EVENTS.get(event_type)
    if declared is None or declared.subject != subject.type:
        raise ValueError(f"{event_type} is not a declared event type about a {subject.type}")
    return OutboxEvent(
        tenant_id=tenant_id,
        event_id=uuid7(),
        type=event_type,
        source=f"/tenants/{tenant_id}/{subject.type}s",
        subject_type=subject.type,
        subject_id=subject.id,
        data={subject.type: subject.facts, **data},
        traceparent=trace.child().traceparent,
    )


def envelope(event: OutboxEvent) -> dict[str, Any]:
    """The CloudEvents 1.0 JSON form, with the distributed-tracing extension."""
    return {
        "specversion": "1.0",
        "id": str(event.event_id),
        "source": event.source,
        "type": event.type,
        "subject": str(event.subject_id) if event.subject_id else None,
        "time": event.time.isoformat().replace("+00:00", "Z"),
        "datacontenttype": "application/json",
        "traceparent": event.traceparent,
        "sequence": str(event.id),
        "data": event.data,
    }
