"""Composition root: builds the long-lived components from the settings, in one place."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import timedelta

from sqlalchemy.exc import OperationalError

from casedesk.activities.add_attachments import Attacher
from casedesk.activities.channel_delivery import DELIVER as DELIVER_REPLY
from casedesk.activities.dead_letters import REPLAY
from casedesk.activities.mailboxes import ACKNOWLEDGE
from casedesk.activities.mailboxes import POLL as MAILBOX_POLL
from casedesk.activities.notify_mail import NOTIFY
from casedesk.config import Settings
from casedesk.domain.attachments import AttachmentLimits
from casedesk.domain.extensions.registry import ExtensionRegistry
from casedesk.domain.identity.principal_cache import PrincipalCache
from casedesk.domain.webhooks.deliveries import DELIVER
from casedesk.integrations.hub import Hub
from casedesk.kit.crypto import SecretBox
from casedesk.kit.logging import get_logger
from casedesk.platform import intake
from casedesk.platform.channels import Deliverer, message_domain
from casedesk.platform.inbox import HookResolutions, Inbox
from casedesk.platform.instant import CREATE, DELETE, PROCESS, RENEW, RESYNC
from casedesk.platform.lifecycle import SubscriptionLifecycle
from casedesk.platform.mail_replies import Acknowledger, MailReplies, Notifier
from casedesk.platform.mailbox_idle import MailboxWatcher
from casedesk.platform.mailboxes import MailboxPoller
from casedesk.platform.polling import POLL, Poller
from casedesk.platform.runner import Runner
from casedesk.store.blob_sweep import BlobSweeper
from casedesk.store.blobs import BlobStore, LocalBlobStore
from casedesk.store.blobs_s3 import S3BlobStore
from casedesk.store.database import Database
from casedesk.store.migrate import migration_state
from casedesk.store.trace_queue import InProcessTraceQueue, RabbitMQTraceQueue, TraceQueue
from casedesk.store.unit_of_work import UnitOfWork
from casedesk.traces.buffer import TraceBuffer
from casedesk.traces.hot import HotStore, hot_store
from casedesk.traces.reader import TraceReader
from casedesk.worker.automation import Automation
from casedesk.worker.case_mail import CaseMail
from casedesk.worker.consumers import ConsumerGroup, Consumers
from casedesk.worker.dead_letters import DeadLetterReplay
from casedesk.worker.housekeeping import Housekeeping
from casedesk.worker.runner import Background, make_bus
from casedesk.worker.scheduler import JobHandler
from casedesk.worker.search_index import SearchIndexer
from casedesk.worker.sla import BREACH, WARNING, Sla
from casedesk.worker.timers import RUN, SCAN, Timers
from casedesk.worker.trace_work import TraceWork
from casedesk.worker.webhooks import Webhooks

log = get_logger(__name__)


@dataclass
class Container:
    settings: Settings
    database: Database
    extensions: ExtensionRegistry
    hub: Hub
    """The one way out to third parties; every call leaves a record in ``traces``."""
    traces: TraceBuffer
    hot: HotStore
    """The hot tier of the trace store: Redis when configured, this process's memory if not."""
    trace_queue: TraceQueue
    trace_reader: TraceReader
    box: SecretBox
    """Seals the secrets casedesk keeps (webhook signing keys)."""
    blobs: BlobStore
    """The bytes of attachments, by SHA-256."""
    hooks: HookResolutions = field(default_factory=HookResolutions)
    """The triggers this process's hook ingress resolved lately (``platform.inbox``)."""
    principals: PrincipalCache = field(init=False)
    """The callers this process authenticated in the last ``auth_cache_seconds``."""

    def __post_init__(self) -> None:
        self.principals = PrincipalCache(
            self.database.engine.sync_engine, self.settings.auth_cache_seconds
        )

    @property
    def attachment_limits(self) -> AttachmentLimits:
        return AttachmentLimits(
            self.settings.attachment_max_bytes, self.settings.attachment_quota_bytes
        )

    def unit_of_work(self, tenant_id: uuid.UUID | None = None) -> UnitOfWork:
        return UnitOfWork(self.database, tenant_id)

    async def close(self) -> None:
        await self.hub.aclose()
        await self.hot.aclose()
        await self.database.dispose()


class NotMigrated(RuntimeError):
    """The database schema is behind the code."""


async def ensure_migrated(container: Container) -> None:
    state = await migration_state(container.database.engine)
    if not state.up_to_date:
        current = ", ".join(state.current) or "empty"
        raise NotMigrated(
            f"the database is not migrated (at {current}, code needs {', '.join(state.heads)}); "
            "run `casedesk db upgrade` first"
        )


async def start_database(container: Container) -> None:
    """What a starting server or worker checks and refreshes: the schema is migrated, and
    SQLite's planner statistics describe the tables as they have grown."""
    await ensure_migrated(container)
    try:
        await container.database.refresh_statistics()
    except OperationalError as exc:  # the file busy beyond the timeout: start all the same
        log.warning("planner statistics not refreshed; housekeeping will", error=str(exc))


def consumer_groups(container: Container) -> dict[str, ConsumerGroup]:
    """Every consumer group of the product, by name; routing is this literal map."""
    automation = Automation(container.database, container.extensions).group()
    sla = Sla(container.database, container.extensions).group()
    timers = Timers(container.database, container.extensions).group()
    webhooks = _webhooks(container).group()
    case_mail = CaseMail(
        container.database, container.box, base_url=container.settings.external_url
    ).group()
    search = SearchIndexer(container.database).group()
    return {
        automation.name: automation,
        case_mail.name: case_mail,
        search.name: search,
        sla.name: sla,
        timers.name: timers,
        webhooks.name: webhooks,
    }


def _webhooks(container: Container) -> Webhooks:
    days = container.settings.webhook_disable_after_days
    disable_after = timedelta(days=days) if days else None
    return Webhooks(container.database, container.hub, container.box, disable_after=disable_after)


def job_handlers(container: Container) -> dict[str, JobHandler]:
    """Every kind of scheduled job, by name; routing is this literal map."""
    sla = Sla(container.database, container.extensions)
    timers = Timers(container.database, container.extensions)
    webhooks = _webhooks(container)
    replay = DeadLetterReplay(
        container.database, Consumers(container.database, consumer_groups(container))
    )
    workflows = runner(container)
    inbox = Inbox(container.database, container.hub, container.box)
    lifecycle = SubscriptionLifecycle(
        container.database,
        container.hub,
        container.box,
        public_url=container.settings.external_url,
    )
    return {
        WARNING: sla.run_job,
        BREACH: sla.run_job,
        RUN: timers.run_job,
        SCAN: timers.scan_job,
        DELIVER: webhooks.run_job,
        REPLAY: replay.run_job,
        intake.RUN: workflows.run_job,
        POLL: poller(container).run_job,
        MAILBOX_POLL: mailbox_poller(container).run_job,
        ACKNOWLEDGE: Acknowledger(
            container.database,
            container.box,
            timeout=container.settings.imap_timeout_seconds,
            recorder=container.traces,
        ).run_job,
        NOTIFY: Notifier(
            container.database, container.box, timeout=container.settings.imap_timeout_seconds
        ).run_job,
        PROCESS: inbox.run_job,
        CREATE: lifecycle.create_job,
        RENEW: lifecycle.renew_job,
        RESYNC: lifecycle.resync_job,
        DELETE: lifecycle.delete_job,
        DELIVER_REPLY: Deliverer(
            container.database,
            container.hub,
            container.box,
            domain=message_domain(container.settings.external_url),
            mail=MailReplies(
                container.box,
                timeout=container.settings.imap_timeout_seconds,
                blobs=container.blobs,
                files_max_bytes=container.settings.attachment_max_bytes,
                recorder=container.traces,
                base_url=container.settings.external_url,
            ),
            blobs=container.blobs,
            files_max_bytes=container.settings.attachment_max_bytes,
        ).run_job,
    }


def runner(container: Container) -> Runner:
    """The workflow runner (``execution.run`` jobs)."""
    return Runner(
        container.database,
        container.extensions,
        container.hub,
        container.box,
        attacher=Attacher(container.blobs, container.attachment_limits),
    )


def poller(container: Container) -> Poller:
    settings = container.settings
    return Poller(
        container.database,
        container.hub,
        container.box,
        failing_after=settings.poll_failing_after,
        max_backoff=timedelta(seconds=settings.poll_max_backoff_seconds),
    )


def mailbox_poller(container: Container) -> MailboxPoller:
    """Polls mailboxes (``mailbox.poll`` jobs) and tests them for the API."""
    settings = container.settings
    return MailboxPoller(
        container.database,
        container.box,
        container.extensions,
        Attacher(container.blobs, container.attachment_limits),
        allow_plain=settings.imap_allow_plain,
        timeout=settings.imap_timeout_seconds,
        max_backoff=timedelta(seconds=settings.poll_max_backoff_seconds),
    )


def mailbox_watcher(container: Container) -> MailboxWatcher:
    """Waits in IMAP IDLE on the mailboxes and polls one when new mail arrives."""
    settings = container.settings
    return MailboxWatcher(
        container.database,
        container.box,
        allow_plain=settings.imap_allow_plain,
        timeout=settings.imap_timeout_seconds,
    )


def trace_work(container: Container, *, persist: bool) -> TraceWork:
    """Flush this process's trace records; with ``persist``, also write the queue to SQL."""
    settings = container.settings
    return TraceWork(
        container.database,
        container.traces,
        container.hot,
        container.trace_queue,
        persist=persist,
        rate=settings.trace_persist_rate,
        keep=timedelta(days=settings.trace_retention_days),
    )


def background(container: Container) -> Background:
    settings = container.settings
    bus = make_bus(settings.broker_url, settings.broker_namespace)
    days = settings.event_retention_days
    housekeeping = Housekeeping(
        container.database,
        keep=timedelta(days=days) if days else None,
        idempotency=timedelta(hours=settings.idempotency_hours),
        blobs=blob_sweeper(container) if settings.blob_sweep_interval_hours else None,
        blob_every=timedelta(hours=settings.blob_sweep_interval_hours or 24),
    )
    return Background(
        container.database,
        bus,
        consumer_groups(container),
        job_handlers(container),
        housekeeping,
        job_lease=timedelta(seconds=settings.job_lease_seconds),
        job_concurrency=settings.job_concurrency,
        watcher=mailbox_watcher(container) if settings.imap_idle else None,
    )


def blob_sweeper(container: Container) -> BlobSweeper:
    """Deletes the blobs no attachment refers to (``casedesk attachments sweep``)."""
    return BlobSweeper(
        container.database,
        container.blobs,
        grace=timedelta(hours=container.settings.blob_sweep_grace_hours),
    )


def blob_store(settings: Settings) -> BlobStore:
    """The attachments' store the settings name: an S3 bucket, else a folder."""
    if settings.blob_url is not None and settings.blob_url.startswith("s3://"):
        return S3BlobStore.from_url(settings.blob_url, endpoint_url=settings.blob_endpoint_url)
    return LocalBlobStore(settings.attachments_path)


def build(settings: Settings) -> Container:
    database = Database(settings.database_url, pool_size=settings.database_pool_size)
    extensions = ExtensionRegistry()
    extensions.load_entry_points()
    traces = TraceBuffer(settings.trace_buffer_size)
    hot = hot_store(
        settings.redis_url,
        namespace=settings.broker_namespace,
        ttl=timedelta(hours=settings.trace_hot_hours),
    )
    queue: TraceQueue = (
        InProcessTraceQueue()
        if settings.broker_url is None
        else RabbitMQTraceQueue(settings.broker_url, namespace=settings.broker_namespace)
    )
    return Container(
        settings=settings,
        database=database,
        extensions=extensions,
        hub=Hub(settings, recorder=traces),
        traces=traces,
        hot=hot,
        trace_queue=queue,
        trace_reader=TraceReader(database, hot),
        box=SecretBox(settings.secret_key, settings.secret_keys[1:]),
        blobs=blob_store(settings),
    )
