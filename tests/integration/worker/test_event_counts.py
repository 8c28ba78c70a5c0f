"""Each activity writes its own events once: exact outbox counts per activity and per rule run.

A rule's actions share one activity context and one transaction; each action's events are
written once, when that transaction commits, however many actions came before it.
"""

from __future__ import annotations

import uuid
from collections import Counter
from typing import Any

from sqlalchemy import select

from casedesk.bootstrap import Container
from casedesk.store.models import OutboxEvent
from tests.support.cases import Desk
from tests.support.delivery import Settle


async def _outbox(container: Container, desk: Desk, case_id: str) -> list[OutboxEvent]:
    async with container.unit_of_work(desk.tenant.id) as uow:
        statement = (
            select(OutboxEvent)
            .where(OutboxEvent.subject_id == uuid.UUID(case_id))
            .order_by(OutboxEvent.id)
        )
        return list((await uow.session.scalars(statement)).all())


async def _counts(container: Container, desk: Desk, case_id: str) -> Counter[str]:
    return Counter(event.type for event in await _outbox(container, desk, case_id))


async def _new_events(
    container: Container, desk: Desk, case_id: str, before: Counter[str]
) -> dict[str, int]:
    return dict(await _counts(container, desk, case_id) - before)


async def test_each_case_activity_writes_exactly_its_events(
    desk: Desk, container: Container
) -> None:
    case = await desk.new_case()
    case_id = case["id"]
    assert dict(await _counts(container, desk, case_id)) == {"case.created": 1, "task.created": 1}

    steps: list[tuple[str, str, dict[str, Any], dict[str, int]]] = [
        ("patch", "", {"priority": "high"}, {"case.updated": 1}),
        ("post", "/accept", {}, {"task.accepted": 1}),
        ("post", "/transfer", {"queue": "billing"}, {"case.transferred": 1}),
        ("post", "/comments", {"body": "internal note", "public": False}, {"comment.added": 1}),
        ("post", "/actions/start", {}, {"case.state_changed": 1}),
        (
            "post",
            "/actions/close",
            {"comment": "done"},
            {"case.state_changed": 1, "case.closed": 1, "comment.added": 1},
        ),
        ("post", "/rating", {"score": 5}, {"case.rated": 1}),
        ("post", "/actions/reopen", {}, {"case.state_changed": 1, "case.reopened": 1}),
    ]
    for method, path, body, expected in steps:
        before = await _counts(container, desk, case_id)
        response = await desk.http.request(
            method.upper(), f"/api/v1/cases/{case_id}{path}", json=body, headers=desk.headers
        )
        assert response.status_code in (200, 201), (path, response.text)
        assert await _new_events(container, desk, case_id, before) == expected, path


async def test_a_rule_with_three_actions_writes_one_event_per_change(
    desk: Desk, container: Container, settle: Settle
) -> None:
    rule = await desk.http.post(
        "/api/v1/rules",
        json={
            "name": "triage",
            "on": ["case.created"],
            "actions": [
                {"type": "add_tag", "tag": "triaged"},
                {"type": "set_priority", "priority": "urgent"},
                {"type": "add_comment", "body": "seen by triage"},
            ],
        },
        headers=desk.headers,
    )
    assert rule.status_code == 201, rule.text
    case = await desk.new_case()
    before = await _counts(container, desk, case["id"])
    await settle()

    made = await _outbox(container, desk, case["id"])
    by_rule = [event for event in made if event.data["actor"]["type"] == "rule"]
    assert Counter(event.type for event in by_rule) == {"case.updated": 2, "comment.added": 1}
    assert len({event.event_id for event in by_rule}) == 3
    assert dict(await _counts(container, desk, case["id"]) - before) == {
        "case.updated": 2,
        "comment.added": 1,
    }
    # Each event carries the case as its own action left it, in the order they ran.
    tags_then_priority = [event.data["case"] for event in by_rule if event.type == "case.updated"]
    assert [(c["tags"], c["priority"]) for c in tags_then_priority] == [
        (["triaged"], "normal"),
        (["triaged"], "urgent"),
    ]
    versions = [event.data["case"]["version"] for event in by_rule]
    assert versions == sorted(versions)


async def test_a_refused_rule_writes_no_event_of_the_actions_before_the_refusal(
    desk: Desk, container: Container, settle: Settle
) -> None:
    rule = await desk.http.post(
        "/api/v1/rules",
        json={
            "name": "tag then fail",
            "on": ["case.created"],
            "actions": [
                {"type": "add_tag", "tag": "first"},
                {"type": "apply_action", "action": "close"},  # not allowed from "new"
            ],
        },
        headers=desk.headers,
    )
    assert rule.status_code == 201, rule.text
    case = await desk.new_case()
    before = await _counts(container, desk, case["id"])
    await settle()
    assert dict(await _counts(container, desk, case["id"]) - before) == {}
    detail = (await desk.http.get(f"/api/v1/cases/{case['id']}", headers=desk.headers)).json()
    assert detail["tags"] == []
