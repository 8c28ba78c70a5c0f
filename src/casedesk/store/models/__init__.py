"""Every mapped table, imported here so that metadata and migrations see them all."""

from casedesk.store.base import Base
from casedesk.store.models.attachments import Attachment
from casedesk.store.models.automation import Rule, TimeRule
from casedesk.store.models.cases import (
    ActionRecord,
    Case,
    CaseCounter,
    ChannelMessageRecord,
    Comment,
    Customer,
    IdempotencyRecord,
    Queue,
    QueueMember,
    StateMachine,
    StateMachineVersion,
    Task,
    Template,
)
from casedesk.store.models.events import DeadLetter, OutboxEvent, ProcessedEvent
from casedesk.store.models.identity import ApiKey, OneTimeLink, Tenant, User, WebSession
from casedesk.store.models.jobs import ScheduledJob
from casedesk.store.models.macros import Macro
from casedesk.store.models.mailboxes import Mailbox
from casedesk.store.models.notifications import NotificationTemplate
from casedesk.store.models.platform import (
    Authorization,
    Connection,
    Connector,
    ConnectorVersion,
    InboxDelivery,
    SeenItem,
    Subscription,
)
from casedesk.store.models.portal import PortalLink, PortalSession
from casedesk.store.models.search import SearchDocument
from casedesk.store.models.sla import CaseSla, SlaPolicy
from casedesk.store.models.traces import TraceRow
from casedesk.store.models.views import SavedView
from casedesk.store.models.webhooks import WebhookAttempt, WebhookDelivery, WebhookSubscription
from casedesk.store.models.workflows import Execution, ExecutionStep, Workflow, WorkflowVersion

__all__ = [
    "ActionRecord",
    "ApiKey",
    "Attachment",
    "Authorization",
    "Base",
    "Case",
    "CaseCounter",
    "CaseSla",
    "ChannelMessageRecord",
    "Comment",
    "Connection",
    "Connector",
    "ConnectorVersion",
    "Customer",
    "DeadLetter",
    "Execution",
    "ExecutionStep",
    "IdempotencyRecord",
    "InboxDelivery",
    "Macro",
    "Mailbox",
    "NotificationTemplate",
    "OneTimeLink",
    "OutboxEvent",
    "PortalLink",
    "PortalSession",
    "ProcessedEvent",
    "Queue",
    "QueueMember",
    "Rule",
    "SavedView",
    "ScheduledJob",
    "SearchDocument",
    "SeenItem",
    "SlaPolicy",
    "StateMachine",
    "StateMachineVersion",
    "Subscription",
    "Task",
    "Template",
    "Tenant",
    "TimeRule",
    "TraceRow",
    "User",
    "WebSession",
    "WebhookAttempt",
    "WebhookDelivery",
    "WebhookSubscription",
    "Workflow",
    "WorkflowVersion",
]
