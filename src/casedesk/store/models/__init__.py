"""Every mapped table, imported here so that metadata and migrations see them all."""

from casedesk.store.base import Base
from casedesk.store.models.automation import Rule
from casedesk.store.models.cases import (
    ActionRecord,
    Case,
    CaseCounter,
    Comment,
    Customer,
    IdempotencyRecord,
    Queue,
    StateMachine,
    StateMachineVersion,
    Task,
    Template,
)
from casedesk.store.models.events import DeadLetter, OutboxEvent, ProcessedEvent
from casedesk.store.models.identity import ApiKey, Tenant, User
from casedesk.store.models.jobs import ScheduledJob

__all__ = [
    "ActionRecord",
    "ApiKey",
    "Base",
    "Case",
    "CaseCounter",
    "Comment",
    "Customer",
    "DeadLetter",
    "IdempotencyRecord",
    "OutboxEvent",
    "ProcessedEvent",
    "Queue",
    "Rule",
    "ScheduledJob",
    "StateMachine",
    "StateMachineVersion",
    "Task",
    "Template",
    "Tenant",
    "User",
]
