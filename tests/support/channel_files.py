"""What the tests of a channel's files read through the API: a case's attachments, their
bytes, the case's history, and that another tenant gets a 404 for them."""

from __future__ import annotations

import hashlib
import os
import uuid
from typing import Any

import pytest
from sqlalchemy import select

from casedesk.bootstrap import Container
from casedesk.store.models import Attachment
from tests.conftest import Tenants
from tests.support.cases import Desk
from tests.support.channels import DeskSide

PNG = bytes.fromhex("89504e470d0a1a0a0000000d4948445200000001000000010806000000") + bytes(64)
"""A PNG's signature and header: sniffed as ``image/png``."""


def pdf(size: int) -> bytes:
    """A PDF's signature and ``size`` bytes in all, not the same twice."""
    head = b"%PDF-1.7\n"
    return head + os.urandom(max(0, size - len(head)))


def small_limit(monkeypatch: pytest.MonkeyPatch, container: Container, max_bytes: int) -> None:
    """Attachments of at most ``max_bytes`` from now on, for the jobs the test runs."""
    changed = container.settings.model_copy(update={"attachment_max_bytes": max_bytes})
    monkeypatch.setattr(container, "settings", changed)


async def attachments(desk: Desk, case_id: str) -> dict[str, dict[str, Any]]:
    """The case's attachments by filename."""
    listed = await desk.http.get(f"/api/v1/cases/{case_id}/attachments", headers=desk.headers)
    assert listed.status_code == 200, listed.text
    return {item["filename"]: item for item in listed.json()["items"]}


async def content(desk: Desk, item: dict[str, Any]) -> bytes:
    answer = await desk.http.get(item["content_url"], headers=desk.headers)
    assert answer.status_code == 200, answer.text
    return answer.content


async def stored_sha256(container: Container, tenant_id: uuid.UUID, item: dict[str, Any]) -> str:
    async with container.unit_of_work(tenant_id) as uow:
        found = await uow.session.scalar(
            select(Attachment.sha256).where(Attachment.id == uuid.UUID(item["id"]))
        )
    assert found is not None
    return str(found)


async def check_kept(
    desk: Desk, container: Container, item: dict[str, Any], expected: bytes
) -> None:
    """The attachment holds ``expected``: its bytes through the API, its size and SHA-256."""
    assert item["size"] == len(expected)
    assert await content(desk, item) == expected
    digest = hashlib.sha256(expected).hexdigest()
    assert await stored_sha256(container, desk.tenant.id, item) == digest


async def receive_steps(side: DeskSide) -> list[dict[str, Any]]:
    """The receive steps' records of the subscription's latest execution, every run's."""
    latest = (await side.executions())[-1]
    shown = await side.desk.http.get(f"/api/v1/executions/{latest.id}", headers=side.desk.headers)
    assert shown.status_code == 200, shown.text
    return [s for s in shown.json()["steps"] if s["kind"] == "receive_message"]


async def received(side: DeskSide) -> list[dict[str, Any]]:
    """What the receive step that succeeded says of the message's files."""
    (step,) = [s for s in await receive_steps(side) if s["status"] == "succeeded"]
    files: list[dict[str, Any]] = step["output"].get("attachments", [])
    return files


async def history(desk: Desk, case_id: str) -> str:
    answer = await desk.http.get(f"/api/v1/cases/{case_id}/history", headers=desk.headers)
    assert answer.status_code == 200, answer.text
    return answer.text


async def check_other_tenant_cannot_read(
    desk: Desk, container: Container, item: dict[str, Any]
) -> None:
    other = await Tenants(container).create()
    for url in (f"/api/v1/attachments/{item['id']}", item["content_url"]):
        answer = await desk.http.get(url, headers=other.headers)
        assert answer.status_code == 404, (url, answer.text)
