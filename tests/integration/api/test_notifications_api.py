"""Previews of the mail casedesk writes, over HTTP (no storage: one database)."""

from __future__ import annotations

import pytest

from tests.support.cases import Desk

pytestmark = pytest.mark.backends("sqlite")


async def test_kinds_and_previews(desk: Desk) -> None:
    kinds = (await desk.http.get("/api/v1/notifications", headers=desk.headers)).json()
    assert [k["kind"] for k in kinds] == [
        "case_received",
        "agent_reply",
        "case_solved",
        "portal_sign_in",
        "invitation",
        "password_reset",
    ]
    assert kinds[0]["languages"] == ["en", "zh-Hans"]
    assert kinds[0]["variables"]["case"]["number"] == 1042
    shown = await desk.http.get(
        "/api/v1/notifications/case_received/preview?language=zh-CN", headers=desk.headers
    )
    assert shown.status_code == 200
    body = shown.json()
    assert body["language"] == "zh-Hans"
    assert body["subject"].startswith("我们已收到您的请求")
    assert "[#1042]" in body["subject"]
    assert body["auto_submitted"] == "auto-replied"


async def test_a_draft_is_previewed_or_refused_with_its_line(desk: Desk) -> None:
    url = "/api/v1/notifications/invitation/preview"
    draft = {"subject": "Join {{ desk.name }}", "text": "{{ link }}"}
    good = await desk.http.post(url, json=draft, headers=desk.headers)
    assert good.status_code == 200
    assert good.json()["subject"] == "Join Acme Support"
    bad = await desk.http.post(
        url, json={"subject": "s", "text": "a\n{{ link }\n"}, headers=desk.headers
    )
    assert bad.status_code == 422
    assert "text, line 2" in bad.json()["detail"]
    broken = await desk.http.post(
        url, json={"subject": "s", "text": "{{ hours / 0 }}"}, headers=desk.headers
    )
    assert broken.status_code == 422
    assert "ZeroDivisionError" in broken.json()["detail"]
    unknown = await desk.http.get("/api/v1/notifications/welcome/preview", headers=desk.headers)
    assert unknown.status_code == 422
    extra = await desk.http.post(
        url, json={"subject": "s", "text": "t", "from": "x"}, headers=desk.headers
    )
    assert extra.status_code == 422


async def test_previews_need_a_caller(desk: Desk) -> None:
    anonymous = await desk.http.get(
        "/api/v1/notifications", headers={"Authorization": "Bearer nope"}
    )
    assert anonymous.status_code == 401
