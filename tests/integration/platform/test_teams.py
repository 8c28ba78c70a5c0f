"""Teams channel messages, end to end: the built-in ``teams`` connector through the real hook
ingress, inbox worker, subscription lifecycle, runner, enricher, sender lookup and reply
delivery, against a local Microsoft Graph (``tests/support/graph.py``) that validates the hook,
sends change and lifecycle notifications and answers its Teams API as Graph does.

A root message opens one case with its first line as title, its HTML made text (the HTML kept)
and its author's name and e-mail (GET /users/{id}, once per person); a reply under it is one
comment; an agent's public comment goes back as a reply under the root, an internal note does
not, and the posted reply never comes back as a comment; other apps' posts and system events
open nothing; a repeated notification, a lost one caught up by the ``missed`` lifecycle
notification, a subscription that expired (an hour is all Graph gives) and a 429 each end with
every message exactly once.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from datetime import timedelta

import pytest

from casedesk.bootstrap import Container
from casedesk.kit.clock import utcnow
from casedesk.platform.instant import RENEW
from tests.support.cases import Desk
from tests.support.graph import (
    ACCESS_TOKEN,
    CHANNEL,
    OTHER_APP,
    TEAM,
    USER,
    GraphTeams,
    teams_server,
)
from tests.support.graph_desk import GraphDesk
from tests.support.instant import pending_jobs

CHANNEL_PATH = f"/v1.0/teams/{TEAM}/channels/{CHANNEL}"


class TeamsDesk(GraphDesk):
    def __init__(self, desk: Desk, container: Container, teams: GraphTeams) -> None:
        super().__init__(desk, container)
        self.teams = teams
        self.ann = teams.add_user("Ann Smith", "ann@example.com")
        self.bob = teams.add_user("Bob Jones", "bob@example.com")


@pytest.fixture
async def teams(desk: Desk, container: Container) -> AsyncIterator[TeamsDesk]:
    async with teams_server(desk.http, token=ACCESS_TOKEN) as graph:
        connected = TeamsDesk(desk, container, graph)
        await graph.post(connected.bob, "<p>Old message, before casedesk</p>", notify=False)
        settings = {
            "base_url": graph.base_url,
            "team_id": TEAM,
            "channel_id": CHANNEL,
            "user_id": USER,
        }
        await connected.connect("teams", "channel_messages", settings, "teams-in")
        yield connected


def _users_fetched(graph: GraphTeams) -> list[str]:
    return [s.path.removeprefix("/v1.0/users/") for s in graph.requests("GET", "/v1.0/users/")]


async def test_a_conversation_in_the_channel_is_one_case_and_its_comments(
    teams: TeamsDesk,
) -> None:
    graph = teams.teams
    (request,) = graph.requests("POST", "/v1.0/subscriptions")
    assert request.body["resource"] == f"/teams/{TEAM}/channels/{CHANNEL}/messages"
    assert request.headers["authorization"] == f"Bearer {ACCESS_TOKEN}"
    root = await graph.post(
        teams.ann,
        "<div><p>Printer <b>on fire</b> &amp; smoking</p><p>See <a href='https://x.example/1'>"
        "the log</a></p></div>",
    )
    await graph.reply(root, teams.ann, "<p>Still smoking</p>")
    await graph.reply(root, teams.bob, "<p>Same here</p>")
    await teams.work()
    assert await teams.outcomes() == ["opened", "commented", "commented"]
    (case,) = await teams.cases()
    found = await teams.case(case["id"])
    assert found["title"] == "Printer on fire & smoking"
    assert found["description"] == "Printer on fire & smoking\n\nSee the log"
    assert found["customer"]["email"] == "ann@example.com"
    assert found["customer"]["name"] == "Ann Smith"
    assert found["channel"] == "teams"
    comments = await teams.comments(case["id"])
    assert [c["body"] for c in comments] == ["Still smoking", "Same here"]
    assert {c["thread_id"] for c in comments} == {root["id"]}
    # The original HTML is kept with the message the case was opened from.
    (execution, *_) = await teams.executions()
    shown = await teams.desk.http.get(
        f"/api/v1/executions/{execution.id}", headers=teams.desk.headers
    )
    (enriched,) = [s for s in shown.json()["steps"] if s["kind"] == "enrich"]
    assert enriched["output"]["body"] == root["body"]
    assert enriched["output"]["body"]["contentType"] == "html"
    # Each message fetched once, at its own path; each person looked up once.
    fetched = [s.path for s in graph.requests("GET", f"{CHANNEL_PATH}/messages/")]
    fetched = [path for path in fetched if not path.endswith("/delta")]
    assert fetched[0] == f"{CHANNEL_PATH}/messages/{root['id']}"
    assert fetched[1].startswith(f"{CHANNEL_PATH}/messages/{root['id']}/replies/")
    assert len(fetched) == 3
    assert sorted(_users_fetched(graph)) == sorted([teams.ann, teams.bob])


async def test_an_agents_comment_goes_back_under_the_root_and_a_note_does_not(
    teams: TeamsDesk,
) -> None:
    graph = teams.teams
    root = await graph.post(teams.ann, "<p>Printer on fire</p>")
    await teams.work()
    (case,) = await teams.cases()
    comment = await teams.reply(case["id"], "Pull the plug <now> & wait")
    note = await teams.reply(case["id"], "Internal: the vendor again", public=False)
    assert note["delivery"] is None
    assert await teams.send_replies() == 1
    (posted,) = graph.requests("POST", CHANNEL_PATH)
    assert posted.path == f"{CHANNEL_PATH}/messages/{root['id']}/replies"
    assert posted.body == {
        "body": {"contentType": "html", "content": "<p>Pull the plug &lt;now&gt; &amp; wait</p>"}
    }
    (answer,) = graph.replies[root["id"]]
    assert "vendor" not in str(graph.replies)
    shown = {c["id"]: c for c in await teams.comments(case["id"])}
    assert shown[comment["id"]]["delivery"]["status"] == "sent"
    assert shown[comment["id"]]["delivery"]["provider_id"] == answer["id"]
    # Graph notifies the subscription of the reply casedesk posted: never a comment.
    (echo,) = await graph.deliver_echoes()
    assert echo.status_code == 202
    await graph.reply(root, teams.ann, "<p>Unplugged, thanks</p>")
    await teams.work()
    assert (await teams.outcomes())[1:] == ["own", "commented"]
    bodies = [c["body"] for c in await teams.comments(case["id"])]
    assert bodies[-1] == "Unplugged, thanks"
    assert len(bodies) == 3
    assert len(await teams.cases()) == 1


async def test_other_apps_posts_and_system_events_open_nothing(teams: TeamsDesk) -> None:
    graph = teams.teams
    await graph.app_post(OTHER_APP, "<p>Deploy finished</p>")
    await graph.system_event()
    await teams.work()
    assert await teams.outcomes() == ["ignored", "ignored"]
    assert await teams.cases() == []
    assert _users_fetched(graph) == []


async def test_a_repeated_notification_makes_one_case(teams: TeamsDesk) -> None:
    graph = teams.teams
    root = await graph.post(teams.ann, "<p>Printer on fire</p>")
    for _ in range(2):
        assert (await graph.notify(root)).status_code == 202
    await teams.work()
    assert await teams.outcomes() == ["opened"]
    assert len(await teams.cases()) == 1


async def test_a_lost_notification_is_caught_up_by_the_missed_lifecycle_notification(
    teams: TeamsDesk,
) -> None:
    graph = teams.teams
    await graph.post(teams.ann, "<p>Notified</p>")
    graph.lose()
    await graph.post(teams.bob, "<p>Never notified</p>")
    await teams.work()
    assert [c["title"] for c in await teams.cases()] == ["Notified"]
    assert (await graph.lifecycle(graph.only_subscription(), "missed")).status_code == 202
    await teams.work()
    assert sorted(c["title"] for c in await teams.cases()) == ["Never notified", "Notified"]
    assert await teams.outcomes() == ["opened", "opened"]
    deltas = graph.requests("GET", f"{CHANNEL_PATH}/messages/delta")
    assert "$deltatoken=1" in deltas[-1].query  # from where the baseline left off


async def test_a_subscription_is_renewed_within_its_hour_and_made_again_when_it_expired(
    teams: TeamsDesk,
) -> None:
    graph = teams.teams
    (renewal,) = await pending_jobs(teams.container, teams.desk.tenant.id, [RENEW])
    assert renewal.due_at < utcnow() + timedelta(minutes=31)
    assert await teams.renew() == 1
    first = graph.only_subscription()
    (patch,) = graph.requests("PATCH", "/v1.0/subscriptions/")
    assert patch.path == f"/v1.0/subscriptions/{first.id}"
    await graph.post(teams.ann, "<p>Before</p>")
    await teams.work()
    graph.forget(first.id)  # the hour ran out: nothing is notified now
    await graph.post(teams.bob, "<p>In the gap</p>", notify=False)
    assert await teams.renew() == 1
    await teams.work()
    remade = graph.only_subscription()
    assert remade.id != first.id
    await graph.post(teams.ann, "<p>After</p>")
    await teams.work()
    assert sorted(c["title"] for c in await teams.cases()) == ["After", "Before", "In the gap"]
    assert await teams.outcomes() == ["opened"] * 3


async def test_rate_limited_fetches_wait_for_retry_after_and_make_one_case(
    teams: TeamsDesk,
) -> None:
    graph = teams.teams
    graph.throttle("message", 1)
    graph.throttle("user", 1)
    await graph.post(teams.ann, "<p>Printer on fire</p>")
    started = time.monotonic()
    await teams.work()
    assert time.monotonic() - started >= 2
    fetched = graph.requests("GET", f"{CHANNEL_PATH}/messages/")
    assert len([s for s in fetched if not s.path.endswith("/delta")]) == 2
    assert _users_fetched(graph) == [teams.ann, teams.ann]
    assert await teams.outcomes() == ["opened"]
    (case,) = await teams.cases()
    assert (await teams.case(case["id"]))["customer"]["email"] == "ann@example.com"


async def test_a_rate_limited_reply_is_posted_once_later(teams: TeamsDesk) -> None:
    graph = teams.teams
    root = await graph.post(teams.ann, "<p>Printer on fire</p>")
    await teams.work()
    (case,) = await teams.cases()
    graph.throttle("reply", 30)
    await teams.reply(case["id"], "On our way")
    await teams.send_replies(rounds=1)
    (waiting,) = await teams.comments(case["id"])
    assert waiting["delivery"]["status"] == "pending"
    await teams.send_replies()
    assert len(graph.requests("POST", CHANNEL_PATH)) == 2
    (answer,) = graph.replies[root["id"]]
    assert answer["body"]["content"] == "<p>On our way</p>"
    (sent,) = await teams.comments(case["id"])
    assert sent["delivery"]["status"] == "sent"
