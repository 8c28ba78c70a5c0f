"""The agents' workbench over HTTP: views with counts, the case list with filters and pages,
the case page, and replies, notes, actions and transfers through its forms. Each form runs the same activity as the API, so what the API then
reads is what the page did."""

from __future__ import annotations

import re

import httpx
import pytest

from casedesk.domain.identity.roles import Role
from tests.conftest import Tenants
from tests.support.cases import Desk
from tests.support.web import hidden, signed_in

# The pages run the activities the API runs, tested there on every database.
pytestmark = pytest.mark.backends("sqlite")


def _count(page: str, view: str) -> str:
    found = re.search(rf'data-view="{view}">([^<]*)<', page)
    assert found is not None, f"no count of {view}"
    return found.group(1)


@pytest.fixture
async def agent_desk(desk: Desk, tenants: Tenants) -> tuple[Desk, str]:
    """The desk with an agent signed in on its client; the agent's id."""
    agent = await tenants.member(desk.tenant.id, Role.AGENT)
    await signed_in(desk.http, desk.tenant, agent.id)
    return desk, str(agent.id)


async def test_the_views_count_what_they_list(agent_desk: tuple[Desk, str]) -> None:
    desk, agent_id = agent_desk
    mine = await desk.new_case(title="Mine to do")
    await desk.new_case(title="Nobody's yet")
    taken = await desk.http.post(
        f"/api/v1/cases/{mine['id']}/transfer",
        json={"assignee_id": agent_id},
        headers=desk.headers,
    )
    assert taken.status_code == 200, taken.text

    page = await desk.http.get("/app/cases?view=mine")
    assert page.status_code == 200
    assert (_count(page.text, "mine"), _count(page.text, "unassigned")) == ("1", "1")
    assert _count(page.text, "open") == "2"
    assert "Mine to do" in page.text
    assert "Nobody&#39;s yet" not in page.text
    unassigned = await desk.http.get("/app/cases?view=unassigned")
    assert "Nobody&#39;s yet" in unassigned.text
    assert "Mine to do" not in unassigned.text

    await desk.act(mine["id"], "start")
    await desk.act(mine["id"], "wait")
    waiting = await desk.http.get("/app/cases?view=waiting")
    assert _count(waiting.text, "waiting") == "1"
    assert "Mine to do" in waiting.text
    assert "Nobody&#39;s yet" not in waiting.text
    counts = (await desk.http.get("/app/counts")).json()
    assert counts["waiting"] == "1"
    assert counts["open"] == "2"
    assert counts["sla_due"] == "0"


async def test_the_list_filters_sorts_and_pages_like_the_api(agent_desk: tuple[Desk, str]) -> None:
    desk, _ = agent_desk
    for n in range(3):
        await desk.new_case(title=f"Paged {n}", priority="high" if n == 1 else "normal")
    high = await desk.http.get("/app/cases?view=open&priority=high")
    assert "Paged 1" in high.text
    assert "Paged 0" not in high.text
    oldest = await desk.http.get("/app/cases?view=open&sort=created")
    assert oldest.text.index("Paged 0") < oldest.text.index("Paged 2")
    unknown = await desk.http.get("/app/cases?view=open&queue=nowhere")
    assert unknown.status_code == 422
    assert "no queue" in unknown.text
    bad_cursor = await desk.http.get("/app/cases?view=open&cursor=garbage")
    assert bad_cursor.status_code == 422


async def test_a_reply_a_note_an_action_and_a_transfer_from_the_case_page(
    agent_desk: tuple[Desk, str],
) -> None:
    desk, agent_id = agent_desk
    case = await desk.new_case(title="Printer on fire")
    page = await desk.http.get(f"/app/cases/{case['number']}")
    assert page.status_code == 200
    csrf = hidden(page.text, "csrf_token")
    path = f"/app/cases/{case['number']}"
    public = await desk.http.post(
        f"{path}/comments", data={"csrf_token": csrf, "body": "On our way", "visibility": "public"}
    )
    assert public.status_code == 303
    note = await desk.http.post(
        f"{path}/comments",
        data={"csrf_token": csrf, "body": "Check the toner", "visibility": "internal"},
    )
    assert note.status_code == 303
    page = await desk.http.get(path)
    version = hidden(page.text, "version")
    started = await desk.http.post(
        f"{path}/actions/start", data={"csrf_token": csrf, "version": version}
    )
    assert started.status_code == 303
    page = await desk.http.get(path)
    moved = await desk.http.post(
        f"{path}/transfer",
        data={
            "csrf_token": csrf,
            "version": hidden(page.text, "version"),
            "queue": "billing",
            "assignee": agent_id,
        },
    )
    assert moved.status_code == 303

    shown = (await desk.http.get(f"/api/v1/cases/{case['id']}", headers=desk.headers)).json()
    assert (shown["state"], shown["queue"], shown["assignee_id"]) == ("open", "billing", agent_id)
    comments = [(c["body"], c["public"]) for c in shown["comments"]]
    assert ("On our way", True) in comments
    assert ("Check the toner", False) in comments
    history = await desk.http.get(f"/api/v1/cases/{case['id']}/history", headers=desk.headers)
    operators = {entry["operator"]["id"] for entry in history.json()["items"][1:]}
    assert operators == {agent_id}
    page = await desk.http.get(path)
    assert 'class="entry internal"' in page.text
    assert "Internal note" in page.text


async def test_a_stale_form_is_refused_and_the_case_is_shown_as_it_is(
    agent_desk: tuple[Desk, str],
) -> None:
    desk, _ = agent_desk
    case = await desk.new_case(title="Two agents at once")
    path = f"/app/cases/{case['number']}"
    page = await desk.http.get(path)
    csrf, seen = hidden(page.text, "csrf_token"), hidden(page.text, "version")
    meanwhile = await desk.act(case["id"], "start")
    assert meanwhile.status_code == 200
    stale = await desk.http.post(
        f"{path}/actions/solve", data={"csrf_token": csrf, "version": seen}
    )
    assert stale.status_code == 409
    assert "Someone changed this case after you opened it" in stale.text
    assert hidden(stale.text, "version") != seen
    shown = (await desk.http.get(f"/api/v1/cases/{case['id']}", headers=desk.headers)).json()
    assert shown["state"] == "open"


async def test_forms_without_the_token_or_with_bad_values_change_nothing(
    agent_desk: tuple[Desk, str],
) -> None:
    desk, _ = agent_desk
    case = await desk.new_case(title="Careful")
    path = f"/app/cases/{case['number']}"
    page = await desk.http.get(path)
    csrf = hidden(page.text, "csrf_token")
    forged = await desk.http.post(f"{path}/comments", data={"body": "forged"})
    assert forged.status_code == 403
    empty = await desk.http.post(f"{path}/comments", data={"csrf_token": csrf, "body": "  "})
    assert empty.status_code == 422
    assert "write the reply first" in empty.text
    nobody = await desk.http.post(
        f"{path}/transfer", data={"csrf_token": csrf, "assignee": "not-an-id"}
    )
    assert nobody.status_code == 422
    wrong = await desk.http.post(f"{path}/actions/fly", data={"csrf_token": csrf})
    assert wrong.status_code in (409, 422)
    shown = (await desk.http.get(f"/api/v1/cases/{case['id']}", headers=desk.headers)).json()
    assert shown["comments"] == []
    assert shown["state"] == "new"


async def test_a_viewer_reads_but_cannot_change_and_other_tenants_cases_are_404(
    desk: Desk, tenants: Tenants, app: object
) -> None:
    case = await desk.new_case(title="Look, don't touch")
    viewer = await tenants.member(desk.tenant.id, Role.VIEWER)
    await signed_in(desk.http, desk.tenant, viewer.id)
    path = f"/app/cases/{case['number']}"
    page = await desk.http.get(path)
    assert page.status_code == 200
    refused = await desk.http.post(
        f"{path}/comments", data={"csrf_token": hidden(page.text, "csrf_token"), "body": "hi"}
    )
    assert refused.status_code == 403
    other = await tenants.create()
    transport = httpx.ASGITransport(app=app)  # type: ignore[arg-type]
    async with httpx.AsyncClient(transport=transport, base_url="http://casedesk.test") as stranger:
        await signed_in(stranger, other, other.admin_id)
        assert (await stranger.get(path)).status_code == 404
        listed = await stranger.get("/app/cases?view=open")
        assert "Look, don&#39;t touch" not in listed.text
        assert _count(listed.text, "open") == "0"


async def test_a_case_number_out_of_range_is_a_4xx_and_an_unknown_one_a_404(
    agent_desk: tuple[Desk, str],
) -> None:
    desk, _ = agent_desk
    assert (await desk.http.get("/app/cases/99999999999999999999")).status_code == 422
    assert (await desk.http.get("/app/cases/0")).status_code == 422
    assert (await desk.http.get("/app/cases/123456")).status_code == 404
    assert (await desk.http.get("/app/cases/123456/live")).status_code == 404
    page = await desk.http.get("/app/cases?view=open")
    posted = await desk.http.post(
        "/app/cases/99999999999999999999/comments",
        data={"csrf_token": hidden(page.text, "csrf_token"), "body": "x"},
    )
    assert posted.status_code == 422


async def test_a_nul_character_in_a_form_or_a_query_is_a_422_on_every_database(
    agent_desk: tuple[Desk, str],
) -> None:
    """PostgreSQL refuses U+0000 in text; the pages refuse it first, naming the field."""
    desk, _ = agent_desk
    case = await desk.new_case(title="Nothing odd")
    page = await desk.http.get(f"/app/cases/{case['number']}")
    csrf = hidden(page.text, "csrf_token")
    posted = await desk.http.post(
        f"/app/cases/{case['number']}/comments", data={"csrf_token": csrf, "body": "a\x00b"}
    )
    assert posted.status_code == 422
    assert "body: a NUL character is not text" in posted.text
    listed = await desk.http.get("/app/cases", params={"view": "open", "state": "x\x00"})
    assert listed.status_code == 422
    signed = await desk.http.post(
        "/sign-in", data={"workspace": "w\x00", "email": "a@b.c", "password": "x"}
    )
    assert signed.status_code == 422
    assert "workspace" in signed.text
    shown = (await desk.http.get(f"/api/v1/cases/{case['id']}", headers=desk.headers)).json()
    assert shown["comments"] == []


async def test_unassigned_lists_the_queues_i_work(
    agent_desk: tuple[Desk, str], tenants: Tenants
) -> None:
    desk, agent_id = agent_desk
    colleague = await tenants.member(desk.tenant.id, Role.AGENT)
    await desk.new_case(title="Support waits")
    billing = await desk.new_case(title="Billing waits")
    moved = await desk.http.post(
        f"/api/v1/cases/{billing['id']}/transfer", json={"queue": "billing"}, headers=desk.headers
    )
    assert moved.status_code == 200, moved.text
    # billing is the colleague's queue alone
    members = await desk.http.put(
        "/api/v1/queues/billing/members",
        json={"user_ids": [str(colleague.id)]},
        headers=desk.headers,
    )
    assert members.status_code == 200
    page = await desk.http.get("/app/cases?view=unassigned")
    assert "Support waits" in page.text
    assert "Billing waits" not in page.text
    assert _count(page.text, "unassigned") == "1"
    mine = await desk.http.put(
        "/api/v1/queues/billing/members",
        json={"user_ids": [str(colleague.id), agent_id]},
        headers=desk.headers,
    )
    assert mine.status_code == 200
    assert "Billing waits" in (await desk.http.get("/app/cases?view=unassigned")).text
