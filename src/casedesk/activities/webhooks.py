"""Admin operations on outbound webhooks and their deliveries."""

from __future__ import annotations

import uuid

from casedesk.domain.identity.principal import Principal
from casedesk.domain.identity.roles import Role
from casedesk.domain.webhooks.deliveries import queue_delivery, schedule_attempt
from casedesk.domain.webhooks.signing import new_secret
from casedesk.domain.webhooks.subscriptions import WebhookSpec
from casedesk.integrations.errors import HubError
from casedesk.integrations.hub import Hub
from casedesk.kit.clock import utcnow
from casedesk.kit.crypto import SecretBox
from casedesk.kit.errors import Conflict, InvalidInput
from casedesk.kit.ids import uuid7
from casedesk.kit.tracing import trace_or_new
from casedesk.store.models import WebhookDelivery, WebhookSubscription
from casedesk.store.unit_of_work import UnitOfWork

TEST_EVENT = "webhook.test"


def _reachable(hub: Hub, spec: WebhookSpec) -> None:
    """An internal address is refused when the webhook is saved, not a day of retries later."""
    try:
        hub.check_destination(spec.url)
    except HubError as refused:
        raise InvalidInput(refused.detail, field="url") from None


def _fill(subscription: WebhookSubscription, spec: WebhookSpec) -> None:
    subscription.name, subscription.url, subscription.events = spec.name, spec.url, spec.events
    if spec.enabled:  # (re-)enabled by an admin: the endpoint gets a fresh start
        subscription.failing_since = subscription.disabled_at = None
        subscription.disabled_reason = None
    elif subscription.enabled is not False:
        subscription.disabled_at, subscription.disabled_reason = utcnow(), "disabled by an admin"
    subscription.enabled, subscription.description = spec.enabled, spec.description


async def create_webhook(
    uow: UnitOfWork, actor: Principal, box: SecretBox, hub: Hub, spec: WebhookSpec
) -> tuple[WebhookSubscription, str]:
    """The new webhook and its signing secret, which is shown this once."""
    actor.require(Role.ADMIN, "creating a webhook")
    _reachable(hub, spec)
    await uow.begin_write()
    secret = new_secret()
    subscription = WebhookSubscription(secret_sealed=box.seal(secret))
    _fill(subscription, spec)
    uow.webhooks.add(subscription)
    await uow.commit()
    return subscription, secret


async def replace_webhook(
    uow: UnitOfWork, actor: Principal, hub: Hub, webhook_id: uuid.UUID, spec: WebhookSpec
) -> WebhookSubscription:
    actor.require(Role.ADMIN, "changing a webhook")
    _reachable(hub, spec)
    await uow.begin_write()
    subscription = await uow.webhooks.get(webhook_id)
    _fill(subscription, spec)
    await uow.commit()
    return subscription


async def rotate_secret(
    uow: UnitOfWork, actor: Principal, box: SecretBox, webhook_id: uuid.UUID
) -> tuple[WebhookSubscription, str]:
    actor.require(Role.ADMIN, "changing a webhook's secret")
    await uow.begin_write()
    subscription = await uow.webhooks.get(webhook_id)
    secret = new_secret()
    subscription.secret_sealed = box.seal(secret)
    await uow.commit()
    return subscription, secret


async def delete_webhook(uow: UnitOfWork, actor: Principal, webhook_id: uuid.UUID) -> None:
    actor.require(Role.ADMIN, "deleting a webhook")
    await uow.begin_write()
    await uow.webhooks.delete(await uow.webhooks.get(webhook_id))
    await uow.commit()


async def send_test(uow: UnitOfWork, actor: Principal, webhook_id: uuid.UUID) -> WebhookDelivery:
    """A ``webhook.test`` message, delivered like any other, to check the receiver."""
    actor.require(Role.ADMIN, "testing a webhook")
    await uow.begin_write()
    subscription = await uow.webhooks.get(webhook_id)
    message_id = str(uuid7())
    payload = {
        "specversion": "1.0",
        "id": message_id,
        "source": f"/tenants/{subscription.tenant_id}/webhooks",
        "type": TEST_EVENT,
        "subject": str(subscription.id),
        "time": utcnow().isoformat().replace("+00:00", "Z"),
        "datacontenttype": "application/json",
        "data": {"webhook_id": str(subscription.id), "name": subscription.name},
    }
    delivery = await queue_delivery(
        uow,
        subscription,
        message_id=message_id,
        event_type=TEST_EVENT,
        case_id=None,
        payload=payload,
        traceparent=trace_or_new().traceparent,
    )
    await uow.commit()
    return delivery


async def redeliver(uow: UnitOfWork, actor: Principal, delivery_id: uuid.UUID) -> WebhookDelivery:
    """One more attempt now, with the same message id, of a delivery that has finished."""
    actor.require(Role.ADMIN, "redelivering a webhook message")
    await uow.begin_write()
    delivery = await uow.deliveries.get(delivery_id)
    if delivery.status == "pending":
        due = delivery.next_attempt_at.isoformat() if delivery.next_attempt_at else "soon"
        raise Conflict(
            f"this delivery is still being tried; its next attempt is at {due}",
            field="status",
        )
    delivery.status = "pending"
    await schedule_attempt(uow, delivery, utcnow(), trace_or_new().traceparent, manual=True)
    await uow.commit()
    return delivery
