"""A desk's side of a channel in tests: its cases and comments read through the API, agents'
replies written through it, and the reply deliveries run as a worker would."""

from __future__ import annotations

from typing import Any

from casedesk.activities.channel_delivery import DELIVER
from casedesk.bootstrap import Container
from tests.support.cases import Desk
from tests.support.instant import run_jobs


class DeskSide:
    def __init__(self, desk: Desk, container: Container) -> None:
        self.desk, self.container = desk, container

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
