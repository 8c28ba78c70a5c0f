"""Workflows for tests: drafts over the API, items fired the way triggers fire them, runs of
the ``execution.run`` jobs, and connectors and connections written straight to the store
(their own API is another part of the product)."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

import orjson

from casedesk.bootstrap import Container
from casedesk.kit.tracing import new_trace
from casedesk.platform.intake import RUN, TriggerItem, fire
from casedesk.platform.runner import EnrichStage, Runner, enrich_entities
from casedesk.store.models import Connection, Execution
from casedesk.worker.scheduler import Scheduler
from tests.support.cases import Desk
from tests.support.instant import add_connector as add_connector  # the one way to add one


def webhook_workflow(code: str, steps: list[dict[str, Any]], **fields: Any) -> dict[str, Any]:
    """A workflow on the generic webhook (no connection), whose items are deliveries."""
    return {
        "code": code,
        "name": f"Workflow {code}",
        "trigger": {"connector": "webhook", "trigger": "delivery"},
        "steps": steps,
    } | fields


OPEN_CASE: dict[str, Any] = {
    "name": "open",
    "kind": "create_case",
    "template": "question",
    "title": "{{ trigger.body.subject }}",
    "description": "{{ trigger.body.text }}",
    "priority": "{{ trigger.body.urgency }}",
    "customer_email": "{{ trigger.body.from }}",
    "form": {"product": "{{ trigger.body.product }}", "quantity": "{{ trigger.body.count }}"},
    "tags": ["inbound", "{{ trigger.body.label }}"],
}


def delivery(source_id: str, **body: Any) -> TriggerItem:
    """An item as the generic webhook's inbox hands it over: the delivery."""
    fields = {
        "subject": "Printer on fire",
        "text": "It smokes.",
        "urgency": "high",
        "from": "ann@example.com",
        "product": "P-9",
        "count": 2,
        "label": "hardware",
    }
    return TriggerItem(source_id, {"body": fields | body, "headers": {}, "query": {}})


async def save(desk: Desk, body: dict[str, Any]) -> dict[str, Any]:
    response = await desk.http.post("/api/v1/workflows", json=body, headers=desk.headers)
    assert response.status_code == 200, response.text
    saved: dict[str, Any] = response.json()
    return saved


async def publish(desk: Desk, code: str, **body: Any) -> dict[str, Any]:
    response = await desk.http.post(
        f"/api/v1/workflows/{code}/publish", json=body or None, headers=desk.headers
    )
    assert response.status_code in (200, 201), response.text
    published: dict[str, Any] = response.json()
    return published


async def published(desk: Desk, body: dict[str, Any]) -> dict[str, Any]:
    await save(desk, body)
    return await publish(desk, body["code"])


async def fire_items(
    container: Container, tenant_id: uuid.UUID, subscription_id: str, *items: TriggerItem
) -> list[Execution]:
    async with container.unit_of_work(tenant_id) as uow:
        await uow.begin_write()
        subscription = await uow.subscriptions.get(uuid.UUID(subscription_id))
        made = await fire(uow, subscription, list(items), new_trace())
        await uow.commit()
    return made


def quick_runner(
    container: Container, *, retries: int = 2, enrich: EnrichStage = enrich_entities
) -> Runner:
    """The runner, its retries due at once."""
    return Runner(
        container.database,
        container.extensions,
        container.hub,
        container.box,
        enrich=enrich,
        retry_delays=[timedelta(0)] * retries,
    )


async def run_due(runner: Runner, container: Container) -> None:
    """Run every due ``execution.run`` job, as a worker would, until none is due."""
    scheduler = Scheduler(container.database, {RUN: runner.run_job})
    while await scheduler.run_once():
        pass


async def execution(desk: Desk, execution_id: uuid.UUID | str) -> dict[str, Any]:
    response = await desk.http.get(f"/api/v1/executions/{execution_id}", headers=desk.headers)
    assert response.status_code == 200, response.text
    found: dict[str, Any] = response.json()
    return found


async def add_connection(
    container: Container,
    tenant_id: uuid.UUID,
    connector: str,
    settings: dict[str, Any],
    secrets: dict[str, str] | None = None,
) -> str:
    async with container.unit_of_work(tenant_id) as uow:
        await uow.begin_write()
        connection = uow.connections.add(
            Connection(
                name=f"{connector} account",
                connector=connector,
                connector_version=1,
                settings=settings,
                secrets_sealed=None
                if secrets is None
                else container.box.seal(orjson.dumps(secrets).decode()),
            )
        )
        await uow.commit()
    return str(connection.id)
