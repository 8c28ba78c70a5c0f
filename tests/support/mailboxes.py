"""A desk with a mailbox on the test dovecot, driven over the API."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from tests.support.cases import Desk
from tests.support.dovecot import Dovecot


@dataclass
class MailDesk:
    desk: Desk
    dovecot: Dovecot
    user: str
    mailbox: dict[str, Any] = field(default_factory=dict)

    @property
    def http(self):  # type: ignore[no-untyped-def]
        return self.desk.http

    @property
    def headers(self) -> dict[str, str]:
        return self.desk.headers

    def settings(self, **overrides: Any) -> dict[str, Any]:
        body: dict[str, Any] = {
            "name": "Support",
            "address": self.user,
            "host": self.dovecot.host,
            "port": self.dovecot.port,
            "security": "starttls",
            "tls_ca": self.dovecot.ca_file.read_text(),
            "username": self.user,
            "password": self.dovecot.password,
            "template": "question",
            "queue": "support",
        }
        body.update(overrides)
        return body

    async def create(self, **overrides: Any) -> dict[str, Any]:
        response = await self.http.post(
            "/api/v1/mailboxes", json=self.settings(**overrides), headers=self.headers
        )
        assert response.status_code == 201, response.text
        self.mailbox = response.json()
        return self.mailbox

    async def poll(self) -> dict[str, Any]:
        response = await self.http.post(
            f"/api/v1/mailboxes/{self.mailbox['id']}/poll", headers=self.headers
        )
        assert response.status_code == 200, response.text
        answer: dict[str, Any] = response.json()
        return answer

    async def read(self) -> dict[str, Any]:
        response = await self.http.get(
            f"/api/v1/mailboxes/{self.mailbox['id']}", headers=self.headers
        )
        assert response.status_code == 200, response.text
        answer: dict[str, Any] = response.json()
        return answer

    async def test(self) -> dict[str, Any]:
        response = await self.http.post(
            f"/api/v1/mailboxes/{self.mailbox['id']}/test", headers=self.headers
        )
        assert response.status_code == 200, response.text
        answer: dict[str, Any] = response.json()
        return answer

    def append(self, raw: bytes, folder: str = "INBOX") -> None:
        self.dovecot.append(raw, user=self.user, folder=folder)

    async def cases(self) -> list[dict[str, Any]]:
        response = await self.http.get("/api/v1/cases?limit=100", headers=self.headers)
        assert response.status_code == 200, response.text
        items: list[dict[str, Any]] = response.json()["items"]
        return items

    async def case(self, case_id: str) -> dict[str, Any]:
        response = await self.http.get(f"/api/v1/cases/{case_id}", headers=self.headers)
        assert response.status_code == 200, response.text
        found: dict[str, Any] = response.json()
        return found

    async def comments(self, case_id: str) -> list[dict[str, Any]]:
        response = await self.http.get(f"/api/v1/cases/{case_id}/comments", headers=self.headers)
        assert response.status_code == 200, response.text
        items: list[dict[str, Any]] = response.json()["items"]
        return items
