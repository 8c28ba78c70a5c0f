"""The rules and SLA screens over HTTP: an event rule built row by row in the form is the
rule the API reads, and it acts on a new case; a bad value is named and nothing is stored;
edit and delete; time rules; an SLA policy with its calendar; admins only, each tenant's own."""

from __future__ import annotations

import html
import re
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from casedesk.bootstrap import Container
from casedesk.domain.identity.roles import Role
from casedesk.worker.automation import Automation
from tests.conftest import Tenants
from tests.support.cases import Desk
from tests.support.delivery import Settle, delivering_to
from tests.support.web import hidden, signed_in

# The pages run the activities the API runs, tested there on every database.
pytestmark = pytest.mark.backends("sqlite")

HOT_RULE = {
    "name": "Urgent printers to billing",
    "enabled": "on",
    "on": "case.created",
    "match": "all",
    "c-0-field": "case.priority",
    "c-0-op": "in",
    "c-0-value": '["high", "urgent"]',
    "c-1-field": "case.form.product",
    "c-1-op": "eq",
    "c-1-value": "P-1",
    "a-0-type": "add_tag",
    "a-0-tag": "hot",
    "a-1-type": "transfer",
    "a-1-queue": "billing",
}


@pytest.fixture
async def settle(container: Container) -> AsyncIterator[Settle]:
    async with delivering_to(
        container, Automation(container.database, container.extensions, rules_ttl=0).group()
    ) as settle:
        yield settle


@pytest.fixture
async def csrf(client: httpx.AsyncClient, desk: Desk) -> str:
    """The desk's admin, signed in on ``client``: the session's CSRF token."""
    await signed_in(client, desk.tenant, desk.tenant.admin_id)
    return hidden((await client.get("/app/admin/rules")).text, "csrf_token")


def textarea(page: str, name: str) -> str:
    """What a page's text area holds, as the browser would post it."""
    found = re.search(rf'name="{name}"[^>]*>(.*?)</textarea>', page, re.S)
    assert found is not None, f"no {name} in the page"
    return html.unescape(found.group(1))


async def _rules(desk: Desk, path: str = "rules") -> list[dict[str, Any]]:
    listed = await desk.http.get(f"/api/v1/{path}", headers=desk.headers)
    assert listed.status_code == 200, listed.text
    rules: list[dict[str, Any]] = listed.json()
    return rules


async def test_the_builder_adds_and_removes_rows_without_saving(
    client: httpx.AsyncClient, desk: Desk, csrf: str
) -> None:
    page = await client.get("/app/admin/rules/new")
    assert page.status_code == 200
    assert 'name="c-0-field"' in page.text
    assert 'name="c-1-field"' not in page.text
    assert 'value="case.sla_breached"' not in page.text
    assert 'value="sla.breached"' in page.text  # the events come from the domain
    more = await client.post(
        "/app/admin/rules/new",
        data=HOT_RULE | {"csrf_token": csrf, "builder": "add-condition"},
    )
    assert more.status_code == 200
    assert 'name="c-2-field"' in more.text
    assert 'value="case.form.product"' in more.text  # what was typed stays
    action = await client.post(
        "/app/admin/rules/new",
        data=HOT_RULE | {"csrf_token": csrf, "builder": "add-action", "new_action": "add_comment"},
    )
    assert 'name="a-2-body"' in action.text
    assert 'name="a-2-public"' in action.text
    dropped = await client.post(
        "/app/admin/rules/new", data=HOT_RULE | {"csrf_token": csrf, "builder": "drop-c-0"}
    )
    assert 'name="c-1-field"' not in dropped.text
    assert 'name="c-0-field" value="case.form.product"' in dropped.text
    assert await _rules(desk) == []


async def test_a_rule_built_in_the_form_is_the_apis_and_acts_on_a_new_case(
    client: httpx.AsyncClient, desk: Desk, csrf: str, settle: Settle
) -> None:
    saved = await client.post("/app/admin/rules/new", data=HOT_RULE | {"csrf_token": csrf})
    assert saved.status_code == 303, saved.text
    [rule] = await _rules(desk)
    assert rule["name"] == "Urgent printers to billing"
    assert (rule["enabled"], rule["stop"], rule["on"]) == (True, False, ["case.created"])
    assert rule["conditions"] == {
        "all": [
            {"field": "case.priority", "op": "in", "value": ["high", "urgent"]},
            {"field": "case.form.product", "op": "eq", "value": "P-1"},
        ]
    }
    assert rule["actions"] == [
        {"type": "add_tag", "tag": "hot"},
        {"type": "transfer", "queue": "billing"},
    ]
    listed = await client.get(saved.headers["location"])
    assert "The rule was saved." in listed.text
    assert "Urgent printers to billing" in listed.text

    hot = await desk.new_case(priority="urgent")
    calm = await desk.new_case(priority="low")
    await settle()
    after = (await desk.http.get(f"/api/v1/cases/{hot['id']}", headers=desk.headers)).json()
    assert (after["tags"], after["queue"]) == (["hot"], "billing")
    untouched = (await desk.http.get(f"/api/v1/cases/{calm['id']}", headers=desk.headers)).json()
    assert (untouched["tags"], untouched["queue"]) == ([], "support")


async def test_a_bad_value_or_field_is_named_at_its_row_and_nothing_is_stored(
    client: httpx.AsyncClient, desk: Desk, csrf: str
) -> None:
    bad_value = await client.post(
        "/app/admin/rules/new",
        data=HOT_RULE | {"csrf_token": csrf, "c-0-value": '["high", "urgent"'},
    )
    assert bad_value.status_code == 422
    assert "conditions.all.0.value: not JSON" in bad_value.text
    assert 'value="[&#34;high&#34;, &#34;urgent&#34;"' in bad_value.text  # kept as typed
    not_finite = await client.post(
        "/app/admin/rules/new", data=HOT_RULE | {"csrf_token": csrf, "c-1-value": "[NaN]"}
    )
    assert not_finite.status_code == 422, "NaN is not JSON, as the API reads it"
    assert "conditions.all.1.value: not JSON" in not_finite.text
    unknown = await client.post(
        "/app/admin/rules/new",
        data=HOT_RULE
        | {"csrf_token": csrf, "c-1-field": "case.colour", "a-1-queue": "nowhere", "on": []},
    )
    assert unknown.status_code == 422
    assert "on: List should have at least 1 item" in unknown.text
    refused = await client.post(
        "/app/admin/rules/new",
        data=HOT_RULE | {"csrf_token": csrf, "c-1-field": "case.colour", "a-1-queue": "nowhere"},
    )
    assert refused.status_code == 422
    assert "conditions.all.1.field: case.colour names no field" in refused.text
    assert "actions.1.queue: no queue &#39;nowhere&#39;" in refused.text
    assert 'aria-invalid="true"' in refused.text
    priority = await client.post(
        "/app/admin/rules/new",
        data=HOT_RULE | {"csrf_token": csrf, "a-1-type": "set_priority", "a-1-priority": "extreme"},
    )
    assert priority.status_code == 422
    assert "actions.1.set_priority.priority" in priority.text
    assert await _rules(desk) == []


async def test_a_rule_is_edited_and_deleted_in_its_form(
    client: httpx.AsyncClient, desk: Desk, csrf: str
) -> None:
    await client.post("/app/admin/rules/new", data=HOT_RULE | {"csrf_token": csrf})
    [rule] = await _rules(desk)
    form = await client.get(f"/app/admin/rules/{rule['id']}")
    assert form.status_code == 200
    assert 'value="[&#34;high&#34;, &#34;urgent&#34;]"' in form.text
    assert 'name="c-1-value" value="P-1"' in form.text
    edited = HOT_RULE | {
        "csrf_token": csrf,
        "name": "Calm",
        "match": "any",
        "stop": "on",
        "a-1-type": "add_comment",
        "a-1-body": "Seen by a rule",
        "a-1-public": "on",
    }
    edited |= {"a-0-type": "assign", "a-0-user_id": "", "a-0-strategy": "least_loaded"}
    del edited["enabled"], edited["a-1-queue"], edited["a-0-tag"]
    saved = await client.post(f"/app/admin/rules/{rule['id']}", data=edited)
    assert saved.status_code == 303, saved.text
    [again] = await _rules(desk)
    assert (again["id"], again["name"], again["enabled"], again["stop"]) == (
        rule["id"],
        "Calm",
        False,
        True,
    )
    assert list(again["conditions"]) == ["any"]
    assert again["actions"] == [
        {"type": "assign", "user_id": None, "strategy": "least_loaded"},
        {"type": "add_comment", "body": "Seen by a rule", "public": True},
    ]
    shown = await client.get(f"/app/admin/rules/{rule['id']}")
    assert '<option value="least_loaded" selected>' in shown.text
    deleted = await client.post(f"/app/admin/rules/{rule['id']}/delete", data={"csrf_token": csrf})
    assert deleted.status_code == 303
    assert await _rules(desk) == []


async def test_nested_conditions_from_the_api_are_edited_as_json_and_kept(
    client: httpx.AsyncClient, desk: Desk, csrf: str
) -> None:
    nested = {
        "all": [
            {"field": "case.priority", "op": "eq", "value": "high"},
            {"any": [{"field": "case.tags", "op": "contains", "value": "vip"}]},
        ]
    }
    made = await desk.http.post(
        "/api/v1/rules",
        json={
            "name": "Nested",
            "on": ["case.updated"],
            "conditions": nested,
            "actions": [{"type": "assign", "user_id": None}],
        },
        headers=desk.headers,
    )
    rule = made.json()
    form = await client.get(f"/app/admin/rules/{rule['id']}")
    assert 'name="conditions_json"' in form.text
    assert 'name="c-0-field"' not in form.text
    posted = {
        "csrf_token": csrf,
        "name": "Nested, renamed",
        "enabled": "on",
        "on": "case.updated",
        "conditions_json": textarea(form.text, "conditions_json"),
        "a-0-type": "assign",
        "a-0-user_id": "",
    }
    saved = await client.post(f"/app/admin/rules/{rule['id']}", data=posted)
    assert saved.status_code == 303, saved.text
    [again] = await _rules(desk)
    assert again["conditions"] == nested
    assert again["actions"] == [{"type": "assign", "user_id": None, "strategy": None}]


async def test_a_time_rule_with_business_hours(
    client: httpx.AsyncClient, desk: Desk, csrf: str
) -> None:
    base = {
        "csrf_token": csrf,
        "name": "Nudge waiting cases",
        "enabled": "on",
        "since": "state_entered",
        "hours": "4",
        "minutes": "30",
        "use_calendar": "on",
        "cal-time_zone": "Europe/Berlin",
        "cal-mon": "09:00-12:00, 13:00-17:00",
        "cal-fri": "09:00-15:00",
        "cal-holidays": "2026-12-25\n2026-12-26",
        "match": "all",
        "c-0-field": "case.state",
        "c-0-op": "eq",
        "c-0-value": "waiting",
        "a-0-type": "add_comment",
        "a-0-body": "Any news?",
        "a-0-public": "on",
    }
    change_op = await client.post("/app/admin/time-rules/new", data=base | {"c-0-op": "changed_to"})
    assert change_op.status_code == 422
    assert "looks at an event" in change_op.text
    bad_hours = await client.post("/app/admin/time-rules/new", data=base | {"cal-fri": "9-late"})
    assert bad_hours.status_code == 422
    assert "calendar.week.fri.0.end" in bad_hours.text
    assert 'name="cal-fri" aria-invalid="true"' in bad_hours.text
    assert 'name="cal-mon" aria-invalid' not in bad_hours.text
    assert await _rules(desk, "time-rules") == []
    saved = await client.post("/app/admin/time-rules/new", data=base)
    assert saved.status_code == 303, saved.text
    [rule] = await _rules(desk, "time-rules")
    assert (rule["since"], rule["hours"], rule["minutes"]) == ("state_entered", 4, 30)
    assert rule["calendar"] == {
        "time_zone": "Europe/Berlin",
        "week": {
            "mon": [
                {"start": "09:00:00", "end": "12:00:00"},
                {"start": "13:00:00", "end": "17:00:00"},
            ],
            "fri": [{"start": "09:00:00", "end": "15:00:00"}],
        },
        "holidays": ["2026-12-25", "2026-12-26"],
    }
    listed = await client.get("/app/admin/rules")
    assert "Nudge waiting cases" in listed.text
    form = await client.get(f"/app/admin/time-rules/{rule['id']}")
    assert 'value="09:00-12:00, 13:00-17:00"' in form.text
    plain = base | {"name": "Plain time"}
    del plain["use_calendar"]
    assert (await client.post(f"/app/admin/time-rules/{rule['id']}", data=plain)).status_code == 303
    [again] = await _rules(desk, "time-rules")
    assert (again["name"], again["calendar"]) == ("Plain time", None)
    gone = await client.post(
        f"/app/admin/time-rules/{rule['id']}/delete", data={"csrf_token": csrf}
    )
    assert gone.status_code == 303
    assert await _rules(desk, "time-rules") == []


async def test_an_sla_policy_and_its_calendar_are_what_the_api_reads(
    client: httpx.AsyncClient, desk: Desk, csrf: str
) -> None:
    new = await client.get("/app/admin/sla/new")
    assert new.status_code == 200
    assert 'name="cal-sun" value="00:00-00:00"' in new.text  # the API's default: always open
    form = {
        "csrf_token": csrf,
        "name": "Urgent questions",
        "template": "question",
        "priority": "urgent",
        "first_response_minutes": "30",
        "resolution_minutes": "",
        "warning_percent": "75",
        "cal-time_zone": "Asia/Shanghai",
        "cal-mon": "09:00-18:00",
        "cal-tue": "09:00-18:00",
        "cal-holidays": "2026-10-01",
    }
    bad = await client.post(
        "/app/admin/sla/new",
        data=form | {"first_response_minutes": "soon", "cal-time_zone": "Mars"},
    )
    assert bad.status_code == 422
    assert "first_response_minutes:" in bad.text
    assert "unknown IANA time zone" in bad.text
    assert 'name="first_response_minutes" aria-invalid="true"' in bad.text
    assert 'name="cal-time_zone" aria-invalid="true"' in bad.text
    assert 'name="name" aria-invalid' not in bad.text
    no_target = await client.post("/app/admin/sla/new", data=form | {"first_response_minutes": ""})
    assert no_target.status_code == 422
    assert "give first_response_minutes, resolution_minutes or both" in no_target.text
    assert (await desk.http.get("/api/v1/sla-policies", headers=desk.headers)).json() == []

    saved = await client.post("/app/admin/sla/new", data=form)
    assert saved.status_code == 303, saved.text
    [policy] = (await desk.http.get("/api/v1/sla-policies", headers=desk.headers)).json()
    assert (policy["name"], policy["template"], policy["priority"]) == (
        "Urgent questions",
        "question",
        "urgent",
    )
    assert (policy["first_response_minutes"], policy["resolution_minutes"]) == (30, None)
    assert policy["warning_percent"] == 75
    assert policy["calendar"] == {
        "time_zone": "Asia/Shanghai",
        "week": {
            "mon": [{"start": "09:00:00", "end": "18:00:00"}],
            "tue": [{"start": "09:00:00", "end": "18:00:00"}],
        },
        "holidays": ["2026-10-01"],
    }
    assert "Urgent questions" in (await client.get("/app/admin/sla")).text
    shown = await client.get(f"/app/admin/sla/{policy['id']}")
    assert 'name="cal-mon" value="09:00-18:00"' in shown.text
    edited = form | {"template": "", "priority": "", "resolution_minutes": "480"}
    assert (await client.post(f"/app/admin/sla/{policy['id']}", data=edited)).status_code == 303
    [again] = (await desk.http.get("/api/v1/sla-policies", headers=desk.headers)).json()
    assert (again["template"], again["priority"], again["resolution_minutes"]) == (None, None, 480)
    deleted = await client.post(f"/app/admin/sla/{policy['id']}/delete", data={"csrf_token": csrf})
    assert deleted.status_code == 303
    assert (await desk.http.get("/api/v1/sla-policies", headers=desk.headers)).json() == []


@pytest.mark.parametrize("role", [Role.AGENT, Role.VIEWER])
async def test_the_rules_and_sla_screens_are_for_admins_only(
    client: httpx.AsyncClient, desk: Desk, tenants: Tenants, role: Role
) -> None:
    member = await tenants.member(desk.tenant.id, role)
    await signed_in(client, desk.tenant, member.id)
    for path in (
        "/app/admin/rules",
        "/app/admin/rules/new",
        "/app/admin/time-rules/new",
        "/app/admin/sla",
        "/app/admin/sla/new",
    ):
        assert (await client.get(path)).status_code == 403, path
    csrf = hidden((await client.get("/app/cases?view=open")).text, "csrf_token")
    posted = await client.post("/app/admin/rules/new", data=HOT_RULE | {"csrf_token": csrf})
    assert posted.status_code == 403
    sla = await client.post(
        "/app/admin/sla/new",
        data={
            "csrf_token": csrf,
            "name": "Sneaky",
            "first_response_minutes": "5",
            "cal-time_zone": "UTC",
        },
    )
    assert sla.status_code == 403
    assert await _rules(desk) == []
    assert (await desk.http.get("/api/v1/sla-policies", headers=desk.headers)).json() == []


async def test_another_tenants_rule_or_policy_is_not_found(
    client: httpx.AsyncClient, desk: Desk, tenants: Tenants, csrf: str
) -> None:
    other = await tenants.create()
    theirs = await desk.http.post(
        "/api/v1/rules",
        json={
            "name": "Theirs",
            "on": ["case.created"],
            "actions": [{"type": "add_tag", "tag": "x"}],
        },
        headers=other.headers,
    )
    policy = await desk.http.post(
        "/api/v1/sla-policies",
        json={"name": "Theirs", "first_response_minutes": 10},
        headers=other.headers,
    )
    rule_id, policy_id = theirs.json()["id"], policy.json()["id"]
    assert (await client.get(f"/app/admin/rules/{rule_id}")).status_code == 404
    assert (await client.get(f"/app/admin/time-rules/{rule_id}")).status_code == 404
    assert (await client.get("/app/admin/rules/not-an-id")).status_code == 404
    changed = await client.post(f"/app/admin/rules/{rule_id}", data=HOT_RULE | {"csrf_token": csrf})
    assert changed.status_code == 404
    rebuilt = await client.post(
        f"/app/admin/rules/{rule_id}",
        data=HOT_RULE | {"csrf_token": csrf, "builder": "add-condition"},
    )
    assert rebuilt.status_code == 404
    deleted = await client.post(f"/app/admin/rules/{rule_id}/delete", data={"csrf_token": csrf})
    assert deleted.status_code == 404
    assert (await client.get(f"/app/admin/sla/{policy_id}")).status_code == 404
    gone = await client.post(f"/app/admin/sla/{policy_id}/delete", data={"csrf_token": csrf})
    assert gone.status_code == 404
    still = await desk.http.get(f"/api/v1/rules/{rule_id}", headers=other.headers)
    assert still.json()["name"] == "Theirs"
    assert await _rules(desk) == []
