"""A desk's side of a channel in tests: its cases and comments read through the API, agents'
replies written through it, and the reply deliveries run as a worker would."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import select

from casedesk.activities.channel_delivery import DELIVER
from casedesk.bootstrap import Container
from casedesk.store.models import Execution
from tests.support.cases import Desk
from tests.support.instant import run_jobs


class DeskSide:
    def __init__(self, desk: Desk, container: Container) -> None:
        self.desk, self.container = desk, container
        self.subscription_id = ""
        """the channel workflow's subscription, once connected"""

    async def executions(self) -> list[Execution]:
        """The subscription's executions, in the order they were queued."""
        async with self.container.unit_of_work(self.desk.tenant.id) as uow:
            found = await uow.session.scalars(
                select(Execution)
                .where(Execution.subscription_id == uuid.UUID(self.subscription_id))
                .order_by(Execution.created_at, Execution.id)
            )
            return list(found.all())

    async def outcomes(self) -> list[str]:
        """The receive step's outcome of every execution, in the order they were queued."""
        outcomes = []
        for made in await self.executions():
            shown = await self.desk.http.get(
                f"/api/v1/executions/{made.id}", headers=self.desk.headers
            )
            assert shown.status_code == 200, shown.text
            body = shown.json()
            assert body["status"] == "succeeded", body
            (step,) = [s for s in body["steps"] if s["kind"] == "receive_message"]
            outcomes.append(step["output"]["outcome"])
        return outcomes

    async def cases(self) -> list[dict[str, Any]]:
        response = await self.desk.http.get("/api/v1/cases?limit=100", headers=self.desk.headers)
        assert response.status_code == 200, response.text
        items: list[dict[str, Any]] = response.json()["items"]
        return items

    async def case(self, case_id: str) -> dict[str, Any]:
        response = await self.desk.http.get(f"/api/v1/cases/{case_id}", headers=self.desk.headers)
        assert response.status_code == 200, response.text
        found: dict[str, Any] = response.json()
        return found

    async def comments(self, case_id: str) -> list[dict[str, Any]]:
        response = await self.desk.http.get(
            f"/api/v1/cases/{case_id}/comments", headers=self.desk.headers
        )
        assert response.status_code == 200, response.text
        items: list[dict[str, Any]] = response.json()["items"]
        return items

    async def reply(self, case_id: str, body: str, *, public: bool = True) -> dict[str, Any]:
        """An agent's comment; the comment as the API shows it."""
        response = await self.desk.http.post(
            f"/api/v1/cases/{case_id}/comments",
            json={"body": body, "public": public},
            headers=self.desk.headers,
        )
        assert response.status_code == 201, response.text
        return (await self.comments(case_id))[-1]

    async def send_replies(self, rounds: int = 10) -> int:
        """Run the pending deliveries, due or not; ``rounds``: how many times one that plans
        itself again is run."""
        return await run_jobs(self.container, self.desk.tenant.id, DELIVER, rounds=rounds)
