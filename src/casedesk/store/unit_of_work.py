"""The unit of work: the only place that commits.

It opens one session bound to one tenant (or to none, for system work such as
creating a tenant), exposes the repositories, and rolls back on exit unless
``commit()`` was called. A writing transaction holds the database's writer turn (on
SQLite: one writer at a time per process) from ``begin_write()`` until it commits, rolls
back or the unit of work closes, however it ends.
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import AsyncIterator, Iterable
from types import TracebackType

from sqlalchemy.ext.asyncio import AsyncSession

from casedesk.store.assignment import AssignmentRepository
from casedesk.store.attachments import AttachmentRepository
from casedesk.store.cases import (
    ActionRecordRepository,
    CaseRepository,
    ChannelMessageRepository,
    CommentRepository,
    CustomerRepository,
    TaskRepository,
)
from casedesk.store.configuration import (
    QueueRepository,
    StateMachineRepository,
    TemplateRepository,
)
from casedesk.store.database import WRITE_OPTION, Database
from casedesk.store.events import DeadLetterRepository, OutboxRepository, ProcessedEventRepository
from casedesk.store.idempotency import IdempotencyRepository
from casedesk.store.identity import (
    ApiKeyRepository,
    OneTimeLinkRepository,
    TenantRepository,
    UserRepository,
    WebSessionRepository,
)
from casedesk.store.jobs import JobRepository
from casedesk.store.macros import MacroRepository
from casedesk.store.mailboxes import MailboxRepository
from casedesk.store.models import OutboxEvent
from casedesk.store.notifications import NotificationTemplateRepository
from casedesk.store.platform import (
    AuthorizationRepository,
    ConnectionRepository,
    ConnectorRepository,
    ExecutionRepository,
    InboxRepository,
    SeenItemRepository,
    SubscriptionRepository,
    WorkflowRepository,
)
from casedesk.store.portal import PortalLinkRepository, PortalSessionRepository
from casedesk.store.rules import RuleRepository, TimeRuleRepository
from casedesk.store.search import SearchRepository
from casedesk.store.sla import SlaRepository
from casedesk.store.views import SavedViewRepository
from casedesk.store.webhooks import DeliveryRepository, WebhookRepository


class UnitOfWork:
    session: AsyncSession
    tenants: TenantRepository
    users: UserRepository
    api_keys: ApiKeyRepository
    web_sessions: WebSessionRepository
    links: OneTimeLinkRepository
    portal_sessions: PortalSessionRepository
    portal_links: PortalLinkRepository
    saved_views: SavedViewRepository
    search: SearchRepository
    queues: QueueRepository
    machines: StateMachineRepository
    templates: TemplateRepository
    customers: CustomerRepository
    cases: CaseRepository
    tasks: TaskRepository
    comments: CommentRepository
    attachments: AttachmentRepository
    channel_messages: ChannelMessageRepository
    actions: ActionRecordRepository
    idempotency: IdempotencyRepository
    outbox: OutboxRepository
    processed: ProcessedEventRepository
    dead_letters: DeadLetterRepository
    rules: RuleRepository
    time_rules: TimeRuleRepository
    jobs: JobRepository
    sla: SlaRepository
    webhooks: WebhookRepository
    deliveries: DeliveryRepository
    connectors: ConnectorRepository
    connections: ConnectionRepository
    authorizations: AuthorizationRepository
    subscriptions: SubscriptionRepository
    seen: SeenItemRepository
    inbox: InboxRepository
    workflows: WorkflowRepository
    executions: ExecutionRepository
    macros: MacroRepository
    mailboxes: MailboxRepository
    notification_templates: NotificationTemplateRepository
    assignment: AssignmentRepository

    def __init__(self, database: Database, tenant_id: uuid.UUID | None = None) -> None:
        self.database = database
        self.tenant_id = tenant_id

    async def __aenter__(self) -> UnitOfWork:
        self.session = self.database.session(self.tenant_id)
        self._writing = False
        self._writer_turn = False
        self._held = False
        self._new_events: list[OutboxEvent] = []
        self.tenants = TenantRepository(self.session)
        self.users = UserRepository(self.session)
        self.api_keys = ApiKeyRepository(self.session)
        self.web_sessions = WebSessionRepository(self.session)
        self.links = OneTimeLinkRepository(self.session)
        self.portal_sessions = PortalSessionRepository(self.session)
        self.portal_links = PortalLinkRepository(self.session)
        self.saved_views = SavedViewRepository(self.session)
        self.search = SearchRepository(self.session)
        self.queues = QueueRepository(self.session)
        self.machines = StateMachineRepository(self.session)
        self.templates = TemplateRepository(self.session)
        self.customers = CustomerRepository(self.session)
        self.cases = CaseRepository(self.session)
        self.tasks = TaskRepository(self.session)
        self.comments = CommentRepository(self.session)
        self.attachments = AttachmentRepository(self.session)
        self.channel_messages = ChannelMessageRepository(self.session)
        self.actions = ActionRecordRepository(self.session)
        self.idempotency = IdempotencyRepository(self.session)
        self.outbox = OutboxRepository(self.session)
        self.processed = ProcessedEventRepository(self.session)
        self.dead_letters = DeadLetterRepository(self.session)
        self.rules = RuleRepository(self.session)
        self.time_rules = TimeRuleRepository(self.session)
        self.jobs = JobRepository(self.session)
        self.sla = SlaRepository(self.session)
        self.webhooks = WebhookRepository(self.session)
        self.deliveries = DeliveryRepository(self.session)
        self.connectors = ConnectorRepository(self.session)
        self.connections = ConnectionRepository(self.session)
        self.authorizations = AuthorizationRepository(self.session)
        self.subscriptions = SubscriptionRepository(self.session)
        self.seen = SeenItemRepository(self.session)
        self.inbox = InboxRepository(self.session)
        self.workflows = WorkflowRepository(self.session)
        self.executions = ExecutionRepository(self.session)
        self.macros = MacroRepository(self.session)
        self.mailboxes = MailboxRepository(self.session)
        self.notification_templates = NotificationTemplateRepository(self.session)
        self.assignment = AssignmentRepository(self.session)
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        # Closing rolls back whatever was not committed and detaches the loaded objects
        # without expiring them, so callers may still read what they fetched.
        try:
            await self.session.close()
        finally:
            self._end_writer_turn()

    async def begin_write(self) -> None:
        """Open the transaction as a writer (on SQLite: take the write lock now, at BEGIN).

        It must come before the first query of the transaction; a second call is a no-op.
        """
        if self._writing:
            return
        if self.session.in_transaction():
            raise RuntimeError("begin_write() must run before the transaction's first query")
        # The turn comes before the connection: writers waiting for theirs hold none, so
        # readers never wait for a connection because writers queue.
        await self.database.begin_writer()
        self._writer_turn = True
        try:
            await self.session.connection(execution_options={WRITE_OPTION: True})
        except BaseException:
            self._end_writer_turn()
            raise
        self._writing = True

    def _end_writer_turn(self) -> None:
        if self._writer_turn:
            self._writer_turn = False
            self.database.end_writer()

    async def flush(self) -> None:
        await self.session.flush()

    def add_events(self, events: Iterable[OutboxEvent]) -> None:
        """Events of the changes made in this transaction: written to the outbox when it
        commits, dropped if it rolls back."""
        self._new_events.extend(events)

    def collect_new_events(self) -> list[OutboxEvent]:
        """Hand over the events added so far, once: a second call returns only newer ones."""
        events, self._new_events = self._new_events, []
        return events

    async def commit(self) -> None:
        if self._held:
            await self.session.flush()
            return
        await self.session.flush()
        # The events go last, straight before COMMIT, in one INSERT of their own.
        await self.outbox.write(self.collect_new_events())
        await self.session.commit()
        self._writing = False
        self._end_writer_turn()

    @contextlib.asynccontextmanager
    async def one_transaction(self) -> AsyncIterator[None]:
        """Inside, ``commit()`` only flushes: several activities commit together, once, after."""
        self._held = True
        try:
            yield
        finally:
            self._held = False

    async def rollback(self) -> None:
        try:
            await self.session.rollback()
        finally:
            self._new_events.clear()
            self._writing = False
            self._end_writer_turn()
