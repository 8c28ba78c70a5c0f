"""Outbound webhooks: the consumer group that queues deliveries, and the job that sends them.

Every event a subscription listens to becomes a delivery row, written with the consumer's
processed-event record, and a ``webhook.deliver`` job due now. The job signs the message
(Standard Webhooks) and POSTs it through the hub, outside any transaction, then records the
attempt: a 2xx ends the delivery; anything else schedules the next attempt along
``RETRY_SCHEDULE`` (about a day in all) and, when that runs out, marks it failed. Every
attempt of one message carries the same ``webhook-id``, so a receiver can drop repeats.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass
from datetime import timedelta

import httpx
import orjson
from prometheus_client import Counter

from casedesk.domain.events import CASE, EVENTS
from casedesk.domain.webhooks.deliveries import attempt_number, queue_delivery, schedule_attempt
from casedesk.domain.webhooks.signing import signed_headers
from casedesk.domain.webhooks.subscriptions import listens_to, next_attempt_after
from casedesk.integrations.errors import HubError, ResponseTooLarge
from casedesk.integrations.hub import Hub, Timeouts
from casedesk.integrations.retry import RetryPolicy
from casedesk.kit.clock import utcnow
from casedesk.kit.crypto import SecretBox
from casedesk.kit.logging import get_logger
from casedesk.kit.tracing import TraceContext, parse_traceparent, trace_or_new
from casedesk.store.bus.base import Message
from casedesk.store.database import Database
from casedesk.store.models import (
    ScheduledJob,
    WebhookAttempt,
    WebhookDelivery,
    WebhookSubscription,
)
from casedesk.store.unit_of_work import UnitOfWork
from casedesk.worker.consumers import ConsumerGroup
from casedesk.worker.tenant_cache import TenantCache

GROUP = "webhooks"
RESPONSE_KEPT = 4096
"""Characters of a receiver's answer kept in the delivery log."""
RESPONSE_READ = 65_536
"""Bytes of a receiver's answer read at most; its status counts whatever its length."""
ATTEMPTS = Counter(
    "casedesk_webhook_attempts_total", "Webhook delivery attempts, by outcome", ["outcome"]
)
DISABLED = Counter("casedesk_webhooks_disabled_total", "Webhooks disabled after failing for days")
log = get_logger(__name__)
# Retries are the delivery's own, spread over a day; the hub tries each attempt once.
_ONE_TRY = RetryPolicy(max_attempts=1)
_TIMEOUT = Timeouts(total=15.0, connect=5.0)


@dataclass(frozen=True, slots=True)
class _Outcome:
    status_code: int | None
    response_body: str | None
    error: str | None
    duration_ms: int

    @property
    def delivered(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300


async def _listened_types(uow: UnitOfWork) -> list[str]:
    """Every event pattern some enabled webhook of the tenant listens to."""
    return sorted({pattern for hook in await uow.webhooks.enabled() for pattern in hook.events})


class Webhooks:
    def __init__(
        self,
        database: Database,
        hub: Hub,
        box: SecretBox,
        *,
        disable_after: timedelta | None = timedelta(days=5),
        listening_ttl: float = 1.0,
    ) -> None:
        self.database = database
        self.hub = hub
        self.box = box
        self.disable_after = disable_after
        """A webhook whose every attempt failed for this long is disabled (None: never)."""
        self._listening = TenantCache(database, _listened_types, ttl=listening_ttl)
        """Which events a tenant's webhooks want: a saved webhook applies within the ttl."""

    def group(self) -> ConsumerGroup:
        return ConsumerGroup(GROUP, EVENTS.families(), self.handle, wants=self.wants)

    async def wants(self, message: Message) -> bool:
        patterns = await self._listening.get(uuid.UUID(message.tenant_id))
        return listens_to(patterns, message.type)

    async def handle(self, message: Message, uow: UnitOfWork | None) -> None:
        assert uow is not None
        listening = [s for s in await uow.webhooks.enabled() if listens_to(s.events, message.type)]
        if not listening:
            return
        payload = orjson.loads(message.body)
        for subscription in listening:
            await queue_delivery(
                uow,
                subscription,
                message_id=message.id,
                event_type=message.type,
                case_id=uuid.UUID(message.subject) if message.subject_type == CASE else None,
                payload=payload,
                traceparent=message.traceparent,
            )

    async def run_job(self, job: ScheduledJob) -> None:
        """``webhook.deliver``: attempt number ``attempt_number(job)`` of one delivery.

        Before sending, with the delivery's row locked, the attempt must not have been made
        yet and this worker must still hold the job's lease; so a second runner of the same
        attempt (one whose lease ran out while the job waited its turn) sends nothing. The
        POST goes out after that transaction, and the attempt is counted under the lock."""
        delivery_id = uuid.UUID(str(job.payload["delivery_id"]))
        manual = bool(job.payload.get("manual"))
        number = attempt_number(job)
        async with UnitOfWork(self.database, job.tenant_id) as uow:
            await uow.begin_write()
            delivery = await uow.deliveries.locked(delivery_id)
            if delivery is None or delivery.status != "pending" or delivery.attempts >= number:
                return  # deleted with its webhook, finished, or this attempt was made already
            await uow.jobs.hold(job)  # LeaseLost: the worker that holds the job sends it
            subscription = await uow.webhooks.get(delivery.subscription_id)
            if not (subscription.enabled or manual):
                self._give_up(delivery, "the webhook is disabled")
                await uow.commit()
                return
            secret = self.box.open(subscription.secret_sealed)
            url, subscription_id = subscription.url, subscription.id
            body, message_id = orjson.dumps(delivery.payload), delivery.message_id
            await uow.commit()
        trace = (parse_traceparent(job.traceparent) or trace_or_new()).child()
        started = utcnow()
        outcome = await self._post(
            job.tenant_id, subscription_id, delivery_id, url, secret, message_id, body, trace
        )
        async with UnitOfWork(self.database, job.tenant_id) as uow:
            await uow.begin_write()
            delivery = await uow.deliveries.locked(delivery_id)
            if delivery is None:
                return  # deleted with its webhook while the POST was out
            if delivery.status != "pending" or delivery.attempts >= number:
                log.warning(
                    "webhook attempt was recorded by another runner",
                    delivery_id=str(delivery_id),
                    attempt=number,
                )
                return
            delivery.attempts = number
            uow.deliveries.add_attempt(
                WebhookAttempt(
                    delivery_id=delivery.id,
                    number=number,
                    manual=manual,
                    started_at=started,
                    duration_ms=outcome.duration_ms,
                    status_code=outcome.status_code,
                    response_body=outcome.response_body,
                    error=outcome.error,
                    trace_id=trace.trace_id,
                )
            )
            subscription = await uow.webhooks.get(delivery.subscription_id)
            self._watch(subscription, outcome, manual)
            if not subscription.enabled and not manual and not outcome.delivered:
                why = "not retried: the webhook is disabled"
                delivery.last_status = outcome.status_code
                delivery.last_error = f"{outcome.error}; {why}" if outcome.error else why
                delivery.status, delivery.next_attempt_at = "failed", None
            else:
                await self._settle(uow, delivery, outcome, manual, job.traceparent)
            await uow.commit()

    @staticmethod
    def _give_up(delivery: WebhookDelivery, reason: str) -> None:
        delivery.status, delivery.last_error = "failed", reason
        delivery.next_attempt_at = None

    def _watch(self, subscription: WebhookSubscription, outcome: _Outcome, manual: bool) -> None:
        """Keep the endpoint's run of failures; disable it once the run has lasted too long."""
        now = utcnow()
        if outcome.delivered:
            subscription.failing_since = None
            return
        if subscription.failing_since is None:
            subscription.failing_since = now
        since = subscription.failing_since
        if manual or self.disable_after is None or not subscription.enabled:
            return
        if now - since >= self.disable_after:
            subscription.enabled, subscription.disabled_at = False, now
            subscription.disabled_reason = (
                f"every attempt failed since {since.isoformat()}; fix the endpoint, then set"
                " enabled to true to resume"
            )
            DISABLED.inc()
            log.warning("webhook disabled after failing", webhook_id=str(subscription.id))

    async def _post(
        self,
        tenant_id: uuid.UUID,
        subscription_id: uuid.UUID,
        delivery_id: uuid.UUID,
        url: str,
        secret: str,
        message_id: str,
        body: bytes,
        trace: TraceContext,
    ) -> _Outcome:
        headers = signed_headers(secret, message_id, int(time.time()), body)
        connection = self.hub.connection(
            tenant_id=tenant_id,
            connector="webhooks",
            connection_id=subscription_id,
            timeout=_TIMEOUT,
            retry=_ONE_TRY,
            max_response_bytes=RESPONSE_READ,
        )
        began = time.perf_counter()
        try:
            response = await connection.request(
                "POST",
                url,
                content=body,
                headers=headers,
                action="deliver",
                execution_id=str(delivery_id),
                traceparent=trace.traceparent,
            )
        except ResponseTooLarge as error:
            # The receiver answered; only its body was longer than we read. Its status says
            # whether the message arrived, as for any answer.
            elapsed = round((time.perf_counter() - began) * 1000)
            kept = error.prefix.decode(errors="replace")[:RESPONSE_KEPT] or None
            return _Outcome(error.response.status_code, kept, error.detail, elapsed)
        except (HubError, httpx.HTTPError) as error:
            elapsed = round((time.perf_counter() - began) * 1000)
            return _Outcome(None, None, str(error) or type(error).__name__, elapsed)
        elapsed = round((time.perf_counter() - began) * 1000)
        return _Outcome(response.status_code, response.text[:RESPONSE_KEPT], None, elapsed)

    async def _settle(
        self,
        uow: UnitOfWork,
        delivery: WebhookDelivery,
        outcome: _Outcome,
        manual: bool,
        traceparent: str,
    ) -> None:
        delivery.last_status, delivery.last_error = outcome.status_code, outcome.error
        if outcome.delivered:
            ATTEMPTS.labels("delivered").inc()
            delivery.status, delivery.delivered_at = "succeeded", utcnow()
            delivery.next_attempt_at = None
            return
        wait = None if manual else next_attempt_after(delivery.attempts)
        if wait is None:
            ATTEMPTS.labels("failed").inc()
            delivery.status, delivery.next_attempt_at = "failed", None
            log.warning("webhook delivery failed", delivery_id=str(delivery.id))
            return
        ATTEMPTS.labels("retry").inc()
        await schedule_attempt(uow, delivery, utcnow() + wait, traceparent)
