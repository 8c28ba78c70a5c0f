"""Setting up a tenant for case work over the API: a queue, a published machine, a template."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

import httpx

from casedesk.bootstrap import Container
from casedesk.store.bus.inprocess import InProcessBus
from casedesk.worker.relay import Relay
from tests.conftest import TenantHandle

BASIC_MACHINE: dict[str, Any] = {
    "states": [
        {"code": "new", "name": "New", "type": "start"},
        {"code": "open", "name": "Open", "type": "normal"},
        {"code": "waiting", "name": "Waiting on customer", "type": "pending"},
        {"code": "solved", "name": "Solved", "type": "end"},
    ],
    "transitions": [
        {"action": "start", "name": "Start", "from": "new", "to": "open"},
        {"action": "solve", "name": "Solve", "from": "new", "to": "solved"},
        {"action": "wait", "name": "Ask customer", "from": "open", "to": "waiting"},
        {"action": "resume", "name": "Resume", "from": "waiting", "to": "open"},
        {"action": "close", "name": "Close", "from": "open", "to": "solved"},
        {"action": "reopen", "name": "Reopen", "from": "solved", "to": "open", "reopen": True},
    ],
}

FORM_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "product": {"type": "string", "minLength": 1},
        "quantity": {"type": "integer", "minimum": 1},
        "order_id": {"type": "string"},
        "address": {
            "type": "object",
            "properties": {"zip": {"type": "string", "pattern": "^[0-9]{5}$"}},
        },
    },
    "additionalProperties": True,
}


@dataclass
class Desk:
    """A tenant ready for cases: queue ``support`` (+ ``billing``), machine ``basic``,
    template ``question``."""

    tenant: TenantHandle
    http: httpx.AsyncClient
    container: Container

    @property
    def headers(self) -> dict[str, str]:
        return self.tenant.headers

    async def create_case(self, **fields: Any) -> httpx.Response:
        body = {"template": "question", "title": "Printer on fire", "form": {"product": "P-1"}}
        body.update(fields)
        return await self.http.post("/api/v1/cases", json=body, headers=self.headers)

    async def new_case(self, **fields: Any) -> dict[str, Any]:
        response = await self.create_case(**fields)
        assert response.status_code == 201, response.text
        result: dict[str, Any] = response.json()
        return result

    async def act(
        self, case_id: str, action: str, headers: dict[str, str] | None = None, **kwargs: Any
    ) -> httpx.Response:
        return await self.http.post(
            f"/api/v1/cases/{case_id}/actions/{action}",
            headers=headers or self.headers,
            **kwargs,
        )

    async def relay(self) -> None:
        """Deliver every committed event (to no consumer), as a running relay would: the
        feed shows events once they are delivered."""
        bus = InProcessBus()
        await bus.start()
        relay = Relay(self.container.database, bus)
        while await relay.relay_once():
            pass

    async def events(self, **params: Any) -> list[dict[str, Any]]:
        await self.relay()
        response = await self.http.get(
            "/api/v1/events", params=params | {"limit": 500}, headers=self.headers
        )
        assert response.status_code == 200, response.text
        items: list[dict[str, Any]] = response.json()["items"]
        return items


async def make_desk(http: httpx.AsyncClient, tenant: TenantHandle, container: Container) -> Desk:
    headers = tenant.headers
    for code in ("support", "billing"):
        response = await http.post(
            "/api/v1/queues", json={"code": code, "name": code.title()}, headers=headers
        )
        assert response.status_code == 201, response.text
    saved = await http.post(
        "/api/v1/state-machines",
        json={"code": "basic", "name": "Basic"} | BASIC_MACHINE,
        headers=headers,
    )
    assert saved.status_code == 200, saved.text
    published = await http.post("/api/v1/state-machines/basic/publish", headers=headers)
    assert published.status_code == 201, published.text
    template = await http.post(
        "/api/v1/templates",
        json={
            "code": "question",
            "name": "Question",
            "state_machine": "basic",
            "default_queue": "support",
            "form_schema": FORM_SCHEMA,
        },
        headers=headers,
    )
    assert template.status_code == 201, template.text
    return Desk(tenant, http, container)


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"
