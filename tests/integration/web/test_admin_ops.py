"""The admins' screens of people and delivery over HTTP: an invitation link that works, a
role changed, an API key shown once that then authenticates and stops when revoked,
webhooks made, edited and redelivered, dead letters replayed and discarded; not for agents
or viewers, nothing of another tenant, bad input named. What the screens did is what the API
then reads."""

from __future__ import annotations

import re
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from casedesk.bootstrap import Container, job_handlers
from casedesk.domain.identity.roles import Role
from casedesk.domain.webhooks.deliveries import DELIVER
from casedesk.domain.webhooks.subscriptions import RETRY_SCHEDULE
from casedesk.kit.ids import uuid7
from casedesk.store.models import DeadLetter
from casedesk.worker.scheduler import Scheduler
from casedesk.worker.webhooks import Webhooks
from tests.conftest import TenantHandle, Tenants
from tests.support.http_server import LocalHTTPServer, Reply, local_http_server
from tests.support.web import PASSWORD, hidden, set_password, sign_in, signed_in

# The pages run the activities the API runs, tested there on every database.
pytestmark = pytest.mark.backends("sqlite")

Admin = tuple[TenantHandle, str]


@pytest.fixture
async def admin(client: httpx.AsyncClient, tenants: Tenants) -> Admin:
    tenant = await tenants.create()
    await signed_in(client, tenant, tenant.admin_id)
    page = await client.get("/app/admin/users")
    return tenant, hidden(page.text, "csrf_token")


@pytest.fixture(scope="module")
async def receiver() -> AsyncIterator[LocalHTTPServer]:
    async with local_http_server() as server:
        yield server


def _shown(page: str, field_id: str) -> str:
    found = re.search(rf'id="{field_id}"[^>]*value="([^"]*)"', page)
    assert found is not None, f"no {field_id} on the page"
    return found.group(1)


async def _dead_letter(container: Container, tenant: TenantHandle, group: str) -> uuid.UUID:
    """A dead letter as the relay keeps one, of a consumer group no worker runs."""
    async with container.unit_of_work(tenant.id) as uow:
        await uow.begin_write()
        dead = uow.dead_letters.add(
            DeadLetter(
                consumer_group=group,
                event_id=uuid7(),
                type="case.created",
                sequence=1,
                attempts=5,
                error="the tag service is down",
                envelope={"subject": str(uuid.uuid4()), "traceparent": None, "data": {}},
            )
        )
        await uow.commit()
    return dead.id


async def test_every_screen_opens_and_refuses_a_form_without_the_session_s_token(
    client: httpx.AsyncClient, admin: Admin
) -> None:
    tenant, _ = admin
    for path, heading in (
        ("/app/admin/users", "Invite a user"),
        ("/app/admin/keys", "New API key"),
        ("/app/admin/webhooks", "New webhook"),
        ("/app/admin/dead-letters", "No dead letters."),
    ):
        page = await client.get(path)
        assert page.status_code == 200, path
        assert heading in page.text
        assert 'aria-current="page"' in page.text
    for path in ("/app/admin/users", "/app/admin/keys", "/app/admin/dead-letters/replay"):
        forged = await client.post(path, data={"csrf_token": "forged", "name": "x"})
        assert forged.status_code == 403, path
    assert len((await client.get("/api/v1/users", headers=tenant.headers)).json()["items"]) == 1


async def test_an_invitation_link_sets_a_password_and_signs_in(
    client: httpx.AsyncClient, app: object, admin: Admin
) -> None:
    tenant, csrf = admin
    invited = await client.post(
        "/app/admin/users",
        data={
            "csrf_token": csrf,
            "name": "Grace Hopper",
            "email": "Grace@Example.com",
            "role": "agent",
        },
    )
    assert invited.status_code == 201, invited.text
    assert "Invitation link" in invited.text
    link = _shown(invited.text, "one-time-link")
    assert "/set-password/" in link
    listed = (await client.get("/api/v1/users", headers=tenant.headers)).json()["items"]
    [grace] = [u for u in listed if u["email"] == "grace@example.com"]
    assert (grace["role"], grace["has_password"]) == ("agent", False)
    assert link not in (await client.get("/app/admin/users")).text  # shown that once

    transport = httpx.ASGITransport(app=app)  # type: ignore[arg-type]
    async with httpx.AsyncClient(transport=transport, base_url="http://casedesk.test") as other:
        path = link.removeprefix("http://casedesk.test")
        assert (await set_password(other, path)).status_code == 303
        assert (await sign_in(other, tenant.slug, "grace@example.com", PASSWORD)).status_code == 303
        assert (await other.get("/app/cases?view=mine")).status_code == 200
        assert (await other.get(path)).status_code == 404  # spent

    reset = await client.post(
        f"/app/admin/users/{grace['id']}/password-link", data={"csrf_token": csrf}
    )
    assert reset.status_code == 201
    assert "Password reset link" in reset.text
    assert "/set-password/" in _shown(reset.text, "one-time-link")


async def test_bad_invitations_are_named_and_nothing_is_stored(
    client: httpx.AsyncClient, admin: Admin
) -> None:
    tenant, csrf = admin
    for form, field in (
        ({"name": "No Mail", "email": "not-an-address", "role": "agent"}, "email"),
        ({"name": " ", "email": "blank@example.com", "role": "agent"}, "name"),
        ({"name": "Boss", "email": "boss@example.com", "role": "owner"}, "role"),
    ):
        refused = await client.post("/app/admin/users", data={"csrf_token": csrf} | form)
        assert refused.status_code == 422, form
        assert f"{field}:" in refused.text
        assert form["name"] in refused.text or field == "name"  # what was typed stays
    me = (await client.get(f"/api/v1/users/{tenant.admin_id}", headers=tenant.headers)).json()
    twice = await client.post(
        "/app/admin/users",
        data={"csrf_token": csrf, "name": "Again", "email": me["email"], "role": "agent"},
    )
    assert twice.status_code == 422
    assert "email: a user with e-mail" in twice.text
    listed = (await client.get("/api/v1/users", headers=tenant.headers)).json()["items"]
    assert len(listed) == 1


async def test_a_role_change_and_a_deactivation_are_read_back_by_the_api(
    client: httpx.AsyncClient, tenants: Tenants, admin: Admin
) -> None:
    tenant, csrf = admin
    member = await tenants.member(tenant.id, Role.AGENT)
    url = f"/app/admin/users/{member.id}"
    changed = await client.post(url, data={"csrf_token": csrf, "role": "viewer"})
    assert changed.status_code == 303
    assert "The user is changed." in (await client.get(changed.headers["location"])).text
    read = f"/api/v1/users/{member.id}"
    assert (await client.get(read, headers=tenant.headers)).json()["role"] == "viewer"
    assert (await client.post(url, data={"csrf_token": csrf, "active": "false"})).status_code == 303
    assert (await client.get(read, headers=tenant.headers)).json()["active"] is False
    gone = await client.get("/api/v1/me", headers={"Authorization": f"Bearer {member.key}"})
    assert gone.status_code == 401
    assert (await client.post(url, data={"csrf_token": csrf, "active": "true"})).status_code == 303
    assert (await client.get(read, headers=tenant.headers)).json()["active"] is True

    bad = await client.post(url, data={"csrf_token": csrf, "role": "owner"})
    assert bad.status_code == 422
    assert "role:" in bad.text
    # The activity keeps the last active admin: the admin cannot demote themself.
    myself = f"/app/admin/users/{tenant.admin_id}"
    last = await client.post(myself, data={"csrf_token": csrf, "role": "agent"})
    assert last.status_code == 409
    assert "last active admin" in last.text
    still = await client.get(f"/api/v1/users/{tenant.admin_id}", headers=tenant.headers)
    assert still.json()["role"] == "admin"


async def test_a_key_is_shown_once_authenticates_and_is_refused_after_revoking(
    client: httpx.AsyncClient, tenants: Tenants, admin: Admin
) -> None:
    tenant, csrf = admin
    agent = await tenants.member(tenant.id, Role.AGENT)
    made = await client.post(
        "/app/admin/keys", data={"csrf_token": csrf, "name": "order sync", "user_id": agent.id}
    )
    assert made.status_code == 201, made.text
    key = _shown(made.text, "new-key")
    assert key.startswith("cdk_")
    assert "shown only this once" in made.text
    assert key not in (await client.get("/app/admin/keys")).text
    bearer = {"Authorization": f"Bearer {key}"}
    me = await client.get("/api/v1/me", headers=bearer)
    assert me.status_code == 200
    assert (me.json()["user"]["id"], me.json()["role"]) == (str(agent.id), "agent")

    [listed] = [
        k
        for k in (await client.get("/api/v1/api-keys", headers=tenant.headers)).json()["items"]
        if k["name"] == "order sync"
    ]
    confirm = await client.get(f"/app/admin/keys/{listed['id']}/revoke")
    assert confirm.status_code == 200
    assert "cannot be undone" in confirm.text
    assert (await client.get("/api/v1/me", headers=bearer)).status_code == 200  # not yet
    revoked = await client.post(f"/app/admin/keys/{listed['id']}/revoke", data={"csrf_token": csrf})
    assert revoked.status_code == 303
    assert (await client.get("/api/v1/me", headers=bearer)).status_code == 401
    assert "The key is revoked." in (await client.get(revoked.headers["location"])).text

    for form, field in (
        ({"name": "", "user_id": str(agent.id)}, "name"),
        ({"name": "x", "user_id": "someone"}, "user_id"),
        ({"name": "x", "user_id": str(uuid.uuid4())}, "user_id"),
    ):
        refused = await client.post("/app/admin/keys", data={"csrf_token": csrf} | form)
        assert refused.status_code == 422, form
        assert f"{field}:" in refused.text


async def test_a_webhook_is_made_edited_and_a_failed_delivery_redelivered(
    client: httpx.AsyncClient,
    container: Container,
    admin: Admin,
    receiver: LocalHTTPServer,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    tenant, csrf = admin
    receiver.reset()
    receiver.script("/down", *[Reply(503, b"maintenance")] * len(RETRY_SCHEDULE), Reply(204))
    form = {
        "csrf_token": csrf,
        "name": "crm",
        "url": f"{receiver.url}/down",
        "events": ["case.*", "comment.added"],
        "enabled": "on",
    }
    made = await client.post("/app/admin/webhooks", data=form)
    assert made.status_code == 201, made.text
    secret = _shown(made.text, "signing-secret")
    assert secret.startswith("whsec_")
    [hook] = (await client.get("/api/v1/webhooks", headers=tenant.headers)).json()
    assert (hook["events"], hook["enabled"]) == (["case.*", "comment.added"], True)
    page = f"/app/admin/webhooks/{hook['id']}"
    assert secret not in (await client.get(page)).text

    edited = await client.post(page, data=form | {"name": "crm 2", "events": ["*"], "enabled": ""})
    assert edited.status_code == 303
    shown = (await client.get(f"/api/v1/webhooks/{hook['id']}", headers=tenant.headers)).json()
    assert (shown["name"], shown["events"], shown["enabled"]) == ("crm 2", ["*"], False)
    bad = await client.post(page, data=form | {"url": "ftp://example.com/x", "events": ["nope"]})
    assert bad.status_code == 422
    assert "url:" in bad.text
    assert "events:" in bad.text
    internal = await client.post(page, data=form | {"url": "http://10.1.2.3/hook"})
    assert internal.status_code == 422
    assert "url:" in internal.text

    enabled = await client.post(page, data=form)
    assert enabled.status_code == 303
    shown = (await client.get(f"/api/v1/webhooks/{hook['id']}", headers=tenant.headers)).json()
    assert (shown["enabled"], shown["disabled_reason"]) == (True, None)

    tested = await client.post(f"{page}/test", data={"csrf_token": csrf})
    assert tested.status_code == 303
    sender = Webhooks(container.database, container.hub, container.box, listening_ttl=0)
    ahead = timedelta(0)
    for wait in RETRY_SCHEDULE:
        ahead += wait + timedelta(seconds=1)
        moment = datetime.now(UTC) + ahead
        monkeypatch.setattr("casedesk.store.jobs.utcnow", lambda moment=moment: moment)
        scheduler = Scheduler(container.database, {DELIVER: sender.run_job})
        while await scheduler.run_once():
            pass
    monkeypatch.undo()
    listed = await client.get(page, params={"status": "failed"})
    assert "webhook.test" in listed.text
    delivery_id = re.search(rf"{page}/deliveries/([0-9a-f-]+)", listed.text)
    assert delivery_id is not None
    detail_url = f"{page}/deliveries/{delivery_id.group(1)}"
    detail = await client.get(detail_url)
    assert detail.status_code == 200
    assert "maintenance" in detail.text  # the receiver's answer
    assert "503" in detail.text
    assert "&#34;type&#34;: &#34;webhook.test&#34;" in detail.text  # the request sent

    again = await client.post(f"{detail_url}/redeliver", data={"csrf_token": csrf})
    assert again.status_code == 303
    busy = await client.post(f"{detail_url}/redeliver", data={"csrf_token": csrf})
    assert busy.status_code == 409
    assert "still being tried" in busy.text
    scheduler = Scheduler(container.database, {DELIVER: sender.run_job})
    while await scheduler.run_once():
        pass
    read = f"/api/v1/webhook-deliveries/{delivery_id.group(1)}"
    after = (await client.get(read, headers=tenant.headers)).json()
    assert after["status"] == "succeeded"
    assert [a["manual"] for a in after["attempt_log"]][-1] is True

    assert (await client.get(f"{page}/delete")).status_code == 200
    deleted = await client.post(f"{page}/delete", data={"csrf_token": csrf})
    assert deleted.status_code == 303
    assert (await client.get("/api/v1/webhooks", headers=tenant.headers)).json() == []


async def test_dead_letters_are_replayed_one_or_several_and_discarded(
    client: httpx.AsyncClient, container: Container, admin: Admin
) -> None:
    tenant, csrf = admin
    first, second, third = [await _dead_letter(container, tenant, "retired") for _ in range(3)]
    listed = await client.get("/app/admin/dead-letters")
    assert listed.status_code == 200
    assert "the tag service is down" in listed.text
    detail = await client.get(f"/app/admin/dead-letters/{first}")
    assert "Never asked" in detail.text

    one = await client.post(f"/app/admin/dead-letters/{first}/replay", data={"csrf_token": csrf})
    assert one.status_code == 303
    api = f"/api/v1/dead-letters/{first}"
    assert (await client.get(api, headers=tenant.headers)).json()["replay_status"] == "pending"

    scheduler = Scheduler(container.database, job_handlers(container))
    while await scheduler.run_once():
        pass
    failed = (await client.get(api, headers=tenant.headers)).json()
    assert failed["replay_status"] == "failed"
    assert (
        "no consumer group &#39;retired&#39;"
        in (await client.get(f"/app/admin/dead-letters/{first}")).text
    )

    async with container.unit_of_work(tenant.id) as uow:
        await uow.begin_write()
        (await uow.dead_letters.get(third)).replay_status = "succeeded"
        await uow.commit()
    several = await client.post(
        "/app/admin/dead-letters/replay",
        data={"csrf_token": csrf, "id": [str(first), str(second), str(third), "nonsense"]},
    )
    assert several.status_code == 200
    assert "Replay asked for 2 dead letters" in several.text
    assert "already replayed successfully" in several.text  # the third is refused, listed
    assert "nonsense" in several.text
    for dead in (first, second):
        shown = (await client.get(f"/api/v1/dead-letters/{dead}", headers=tenant.headers)).json()
        assert shown["replay_status"] == "pending"

    nothing = await client.post("/app/admin/dead-letters/replay", data={"csrf_token": csrf})
    assert nothing.status_code == 422
    assert "id:" in nothing.text

    gone = await client.post(f"/app/admin/dead-letters/{second}/discard", data={"csrf_token": csrf})
    assert gone.status_code == 303
    assert (
        await client.get(f"/api/v1/dead-letters/{second}", headers=tenant.headers)
    ).status_code == 404
    assert (await client.get(f"/app/admin/dead-letters/{second}")).status_code == 404


@pytest.mark.parametrize("role", [Role.AGENT, Role.VIEWER])
async def test_the_screens_are_not_for_agents_or_viewers(
    client: httpx.AsyncClient, tenants: Tenants, container: Container, role: Role
) -> None:
    tenant = await tenants.create()
    dead = await _dead_letter(container, tenant, "retired")
    member = await tenants.member(tenant.id, role)
    await signed_in(client, tenant, member.id)
    csrf = hidden((await client.get("/app/cases?view=open")).text, "csrf_token")
    for path in (
        "/app/admin/users",
        "/app/admin/keys",
        "/app/admin/webhooks",
        "/app/admin/dead-letters",
        f"/app/admin/dead-letters/{dead}",
    ):
        assert (await client.get(path)).status_code == 403, path
    for path, form in (
        ("/app/admin/users", {"name": "Sneaky", "email": "s@example.com", "role": "admin"}),
        (f"/app/admin/users/{member.id}", {"role": "admin"}),
        ("/app/admin/keys", {"name": "mine", "user_id": str(tenant.admin_id)}),
        ("/app/admin/webhooks", {"name": "x", "url": "https://example.com/x"}),
        (f"/app/admin/dead-letters/{dead}/discard", {}),
        ("/app/admin/dead-letters/replay", {"id": str(dead)}),
    ):
        assert (await client.post(path, data={"csrf_token": csrf} | form)).status_code == 403
    shown = (await client.get(f"/api/v1/users/{member.id}", headers=tenant.headers)).json()
    assert shown["role"] == role.value
    assert (await client.get("/api/v1/webhooks", headers=tenant.headers)).json() == []
    read = await client.get(f"/api/v1/dead-letters/{dead}", headers=tenant.headers)
    assert read.json()["replay_status"] is None


async def test_another_tenant_s_ids_are_not_found(
    client: httpx.AsyncClient,
    tenants: Tenants,
    container: Container,
    admin: Admin,
    receiver: LocalHTTPServer,
) -> None:
    _, csrf = admin
    other = await tenants.create()
    theirs = await tenants.member(other.id, Role.AGENT)
    hook = await client.post(
        "/api/v1/webhooks",
        json={"name": "theirs", "url": f"{receiver.url}/theirs"},
        headers=other.headers,
    )
    hook_id = hook.json()["id"]
    delivery = await client.post(f"/api/v1/webhooks/{hook_id}/test", headers=other.headers)
    delivery_id = delivery.json()["id"]
    dead = await _dead_letter(container, other, "retired")
    key = (await client.get("/api/v1/api-keys", headers=other.headers)).json()["items"][0]["id"]
    for path in (
        f"/app/admin/keys/{key}/revoke",
        f"/app/admin/webhooks/{hook_id}",
        f"/app/admin/webhooks/{hook_id}/delete",
        f"/app/admin/webhooks/{hook_id}/deliveries/{delivery_id}",
        f"/app/admin/dead-letters/{dead}",
        "/app/admin/webhooks/not-an-id",
    ):
        assert (await client.get(path)).status_code == 404, path
    for path, form in (
        (f"/app/admin/users/{theirs.id}", {"role": "admin"}),
        (f"/app/admin/users/{theirs.id}/password-link", {}),
        (f"/app/admin/keys/{key}/revoke", {}),
        (f"/app/admin/webhooks/{hook_id}", {"name": "mine", "url": "https://example.com/x"}),
        (f"/app/admin/webhooks/{hook_id}/test", {}),
        (f"/app/admin/webhooks/{hook_id}/delete", {}),
        (f"/app/admin/webhooks/{hook_id}/deliveries/{delivery_id}/redeliver", {}),
        (f"/app/admin/dead-letters/{dead}/replay", {}),
        (f"/app/admin/dead-letters/{dead}/discard", {}),
    ):
        answer = await client.post(path, data={"csrf_token": csrf} | form)
        assert answer.status_code == 404, path
    several = await client.post(
        "/app/admin/dead-letters/replay", data={"csrf_token": csrf, "id": str(dead)}
    )
    assert "Replay asked for 0 dead letters" in several.text
    assert (await client.get(f"/api/v1/users/{theirs.id}", headers=other.headers)).json()[
        "role"
    ] == "agent"
    still = (await client.get(f"/api/v1/webhooks/{hook_id}", headers=other.headers)).json()
    assert still["name"] == "theirs"
    assert (
        await client.get(f"/api/v1/dead-letters/{dead}", headers=other.headers)
    ).status_code == 200
