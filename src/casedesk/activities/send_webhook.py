"""A rule sends the case to a webhook: queued as a delivery in the rule's transaction."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from casedesk.activities.base import Activity
from casedesk.domain.events import case_snapshot
from casedesk.domain.webhooks.deliveries import queue_delivery
from casedesk.kit.clock import utcnow
from casedesk.kit.errors import InvalidInput
from casedesk.kit.ids import uuid7

EVENT_TYPE = "automation.webhook"


@dataclass(frozen=True, slots=True)
class WebhookParams:
    case_id: uuid.UUID
    webhook_id: uuid.UUID


class SendWebhookActivity(Activity[WebhookParams, uuid.UUID]):
    """Returns the delivery's id. The message is a CloudEvent naming the rule and the case."""

    name = "webhook.send"

    async def execute(self, params: WebhookParams) -> uuid.UUID:
        case = self.case = await self.load_case(params.case_id)
        subscription = await self.uow.webhooks.find(params.webhook_id)
        if subscription is None:
            raise InvalidInput(f"no webhook {params.webhook_id}", field="webhook_id")
        message_id = str(uuid7())
        operator = self.ctx.operator
        payload = {
            "specversion": "1.0",
            "id": message_id,
            "source": f"/tenants/{self.ctx.tenant_id}/cases",
            "type": EVENT_TYPE,
            "subject": str(case.id),
            "time": utcnow().isoformat().replace("+00:00", "Z"),
            "datacontenttype": "application/json",
            "data": {
                "case": case_snapshot(case),
                "operator": {"type": operator.type, "id": operator.id, "name": operator.name},
            },
        }
        delivery = await queue_delivery(
            self.uow,
            subscription,
            message_id=message_id,
            event_type=EVENT_TYPE,
            case_id=case.id,
            payload=payload,
            traceparent=self.ctx.trace.traceparent,
        )
        self.record(
            case,
            "webhook.queued",
            {
                "webhook_id": str(subscription.id),
                "webhook": subscription.name,
                "delivery_id": str(delivery.id),
            },
        )
        return delivery.id
