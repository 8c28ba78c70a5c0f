"""``/hooks/{token}``: deliveries stored once and acknowledged, handshakes answered, forgeries
refused with nothing stored, bad input a 4xx that says why, and the inbox worker firing each
event once.

The senders' requests are made as the senders make them: GitHub's and Slack's signatures
(the Standard Webhooks one by its reference library), Slack's url_verification and its
form-encoded slash commands and interactions, Microsoft Graph's validationToken.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import time
import uuid
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

import httpx
import orjson
import pytest
from sqlalchemy import event, func, select

from casedesk.bootstrap import Container, job_handlers
from casedesk.domain.identity.roles import Role
from casedesk.platform.instant import PROCESS
from casedesk.store.models import Execution, InboxDelivery, ScheduledJob
from tests.conftest import Tenants
from tests.support.graph import GRAPH_MAIL
from tests.support.instant import (
    Hook,
    add_connection,
    add_connector,
    disable,
    enable,
    pending_jobs,
    run_jobs,
)

PROBLEM = "application/problem+json"
JSON = {"Content-Type": "application/json"}
FORM = {"Content-Type": "application/x-www-form-urlencoded"}
GITHUB = {"type": "hmac", "header": "X-Hub-Signature-256", "prefix": "sha256="}
SECRET = "a signing secret of the sender's"
SLACK_APP: dict[str, Any] = {
    "id": "slack-app",
    "name": "A Slack app",
    "connection": {"secrets": [{"name": "signing_secret"}]},
    "triggers": {
        "event": {
            "kind": "instant",
            "instant": {
                "verify": {
                    "type": "hmac",
                    "header": "X-Slack-Signature",
                    "prefix": "v0=",
                    "base": "v0:{{ timestamp }}:{{ body }}",
                    "timestamp_header": "X-Slack-Request-Timestamp",
                    "tolerance_seconds": 300,
                },
                "handshakes": [
                    {
                        "when": "body.type == 'url_verification'",
                        "content_type": "application/json",
                        "answer": {"challenge": "{{ body.challenge }}"},
                    }
                ],
                "form_json": ["payload"],
                "events": "[body]",
                "event_id": "event_id || payload.trigger_id || trigger_id",
            },
        }
    },
}


def _github_signature(body: bytes, secret: str = SECRET) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def _slack_headers(body: bytes, *, at: int | None = None, secret: str = SECRET) -> dict[str, str]:
    timestamp = str(int(time.time()) if at is None else at)
    base = f"v0:{timestamp}:".encode() + body
    signature = "v0=" + hmac.new(secret.encode(), base, hashlib.sha256).hexdigest()
    return {"X-Slack-Request-Timestamp": timestamp, "X-Slack-Signature": signature}


async def _github_hook(container: Container, tenants: Tenants, **settings: Any) -> Hook:
    tenant = await tenants.create()
    return await enable(
        container,
        tenant.id,
        settings={"verify": GITHUB, **settings},
        own_secrets={"signing_secret": SECRET},
    )


async def _slack_hook(container: Container, tenants: Tenants) -> Hook:
    tenant = await tenants.create()
    await add_connector(container, tenant.id, SLACK_APP)
    connection = await add_connection(
        container, tenant.id, "slack-app", secrets={"signing_secret": SECRET}
    )
    return await enable(
        container, tenant.id, connector="slack-app", trigger="event", connection_id=connection
    )


async def _stored(container: Container, hook: Hook) -> list[InboxDelivery]:
    async with container.unit_of_work(hook.tenant_id) as uow:
        found = await uow.session.scalars(
            select(InboxDelivery)
            .where(InboxDelivery.subscription_id == hook.subscription_id)
            .order_by(InboxDelivery.id)
        )
        return list(found.all())


async def _executions(container: Container, hook: Hook) -> list[Execution]:
    async with container.unit_of_work(hook.tenant_id) as uow:
        found = await uow.session.scalars(
            select(Execution).where(Execution.subscription_id == hook.subscription_id)
        )
        return list(found.all())


async def _jobs(container: Container, hook: Hook, kind: str) -> int:
    async with container.unit_of_work(hook.tenant_id) as uow:
        count = await uow.session.scalar(
            select(func.count()).select_from(ScheduledJob).where(ScheduledJob.kind == kind)
        )
    return int(count or 0)


def _push_event(push_id: int) -> bytes:
    return orjson.dumps(
        {"ref": "refs/heads/main", "after": "6113728f27", "head_commit": {"id": push_id}}
    )


async def test_a_replayed_delivery_is_stored_once_and_runs_one_execution(
    client: httpx.AsyncClient, container: Container, tenants: Tenants
) -> None:
    hook = await _github_hook(container, tenants)
    body = _push_event(1)
    delivery_id = str(uuid.uuid4())
    headers = JSON | {
        "X-GitHub-Event": "push",
        "X-GitHub-Delivery": delivery_id,
        "X-Hub-Signature-256": _github_signature(body),
    }
    first = await client.post(hook.path, content=body, headers=headers)
    again = await client.post(hook.path, content=body, headers=headers)  # GitHub's redelivery
    assert (first.status_code, again.status_code) == (200, 200)
    assert first.content == again.content == b""
    stored = await _stored(container, hook)
    assert [(row.event_id, row.status) for row in stored] == [(delivery_id, "pending")]
    assert stored[0].body == body.decode()
    assert await _jobs(container, hook, PROCESS) == 1

    assert await run_jobs(container, hook.tenant_id, PROCESS) == 1
    (execution,) = await _executions(container, hook)
    assert execution.source_id == delivery_id
    assert execution.status == "queued"
    assert execution.trigger_item["body"] == orjson.loads(body)
    assert execution.trigger_item["headers"]["x-github-event"] == "push"
    # A second runner of the same job (a lost lease) finds it handled and does nothing.
    async with container.unit_of_work(hook.tenant_id) as uow:
        job = await uow.session.scalar(select(ScheduledJob).where(ScheduledJob.kind == PROCESS))
    assert job is not None
    await job_handlers(container)[PROCESS](job)
    assert len(await _executions(container, hook)) == 1
    assert [row.status for row in await _stored(container, hook)] == ["processed"]


async def test_copies_of_one_delivery_arriving_together_are_stored_once(
    client: httpx.AsyncClient, container: Container, tenants: Tenants
) -> None:
    hook = await _github_hook(container, tenants)
    body = _push_event(2)
    headers = JSON | {
        "X-GitHub-Delivery": "same-delivery",
        "X-Hub-Signature-256": _github_signature(body),
    }
    answers = await asyncio.gather(
        *(client.post(hook.path, content=body, headers=headers) for _ in range(6))
    )
    assert [answer.status_code for answer in answers] == [200] * 6
    assert len(await _stored(container, hook)) == 1
    assert await _jobs(container, hook, PROCESS) == 1


async def test_a_delivery_without_an_id_is_known_by_its_body(
    client: httpx.AsyncClient, container: Container, tenants: Tenants
) -> None:
    tenant = await tenants.create()
    hook = await enable(container, tenant.id)
    body = b'{"order": "A-1", "total": 12.5}'
    for _ in range(2):
        assert (await client.post(hook.path, content=body, headers=JSON)).status_code == 200
    assert (
        await client.post(hook.path, content=b'{"order": "A-2"}', headers=JSON)
    ).status_code == 200
    ids = sorted(row.event_id for row in await _stored(container, hook))
    assert ids == sorted(
        [hashlib.sha256(body).hexdigest(), hashlib.sha256(b'{"order": "A-2"}').hexdigest()]
    )


@pytest.mark.parametrize(
    "signature",
    [
        None,
        "",
        "sha256=" + "0" * 64,
        "sha1=" + "0" * 40,
        _github_signature(_push_event(3), secret="another secret"),
    ],
    ids=["missing", "empty", "wrong", "other-algorithm", "other-secret"],
)
async def test_a_bad_or_missing_signature_is_401_and_stores_nothing(
    client: httpx.AsyncClient, container: Container, tenants: Tenants, signature: str | None
) -> None:
    hook = await _github_hook(container, tenants)
    headers = dict(JSON) | ({} if signature is None else {"X-Hub-Signature-256": signature})
    answer = await client.post(hook.path, content=_push_event(3), headers=headers)
    assert answer.status_code == 401
    assert answer.headers["content-type"] == PROBLEM
    assert answer.json()["type"] == "/problems/delivery-not-authentic"
    assert await _stored(container, hook) == []
    assert await _jobs(container, hook, PROCESS) == 0


async def test_a_body_changed_after_signing_is_401(
    client: httpx.AsyncClient, container: Container, tenants: Tenants
) -> None:
    hook = await _github_hook(container, tenants)
    signature = _github_signature(_push_event(4))
    forged = _push_event(5)
    answer = await client.post(
        hook.path, content=forged, headers=JSON | {"X-Hub-Signature-256": signature}
    )
    assert answer.status_code == 401
    assert await _stored(container, hook) == []


async def test_a_slack_event_is_taken_within_five_minutes_and_refused_outside(
    client: httpx.AsyncClient, container: Container, tenants: Tenants
) -> None:
    hook = await _slack_hook(container, tenants)
    now = int(time.time())
    body = orjson.dumps(
        {
            "token": "XXYYZZ",
            "team_id": "T123ABC456",
            "api_app_id": "A123ABC456",
            "event": {"type": "message", "channel": "C123ABC456", "user": "U123", "text": "Hi"},
            "type": "event_callback",
            "event_id": "Ev123ABC456",
            "event_time": now,
        }
    )
    for stale in (now - 302, now + 310):
        answer = await client.post(
            hook.path, content=body, headers=JSON | _slack_headers(body, at=stale)
        )
        assert answer.status_code == 401, stale
        assert "more than 300 s" in answer.json()["detail"]
    answer = await client.post(
        hook.path, content=body, headers=JSON | {"X-Slack-Signature": "v0=x"}
    )
    assert answer.status_code == 401
    assert "X-Slack-Request-Timestamp" in answer.json()["detail"]
    assert await _stored(container, hook) == []
    fresh = await client.post(
        hook.path, content=body, headers=JSON | _slack_headers(body, at=now - 290)
    )
    assert fresh.status_code == 200
    retried = (
        JSON
        | _slack_headers(body)
        | {"X-Slack-Retry-Num": "1", "X-Slack-Retry-Reason": "http_timeout"}
    )
    assert (await client.post(hook.path, content=body, headers=retried)).status_code == 200
    assert [row.event_id for row in await _stored(container, hook)] == ["Ev123ABC456"]


async def test_slacks_url_verification_is_answered_with_its_challenge_and_not_stored(
    client: httpx.AsyncClient, container: Container, tenants: Tenants
) -> None:
    hook = await _slack_hook(container, tenants)
    challenge = "3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P"
    body = orjson.dumps(
        {"token": "Jhj5dZrVaK7ZwHHjRyZWjbDl", "challenge": challenge, "type": "url_verification"}
    )
    answer = await client.post(hook.path, content=body, headers=JSON | _slack_headers(body))
    assert answer.status_code == 200
    assert answer.headers["content-type"] == "application/json"
    assert answer.json() == {"challenge": challenge}
    assert await _stored(container, hook) == []


async def test_form_encoded_slash_commands_and_interactions_are_verified_and_stored(
    client: httpx.AsyncClient, container: Container, tenants: Tenants
) -> None:
    hook = await _slack_hook(container, tenants)
    command = (
        b"token=gIkuvaNzQIHg97ATvDxqgjtO&team_id=T0001&team_domain=example&channel_id="
        b"C2147483705&channel_name=test&user_id=U2147483697&user_name=Steve&command=%2Fweather"
        b"&text=94070&response_url=https%3A%2F%2Fhooks.slack.com%2Fcommands%2F1234%2F5678"
        b"&trigger_id=13345224609.738474920.8088930838d88f008e0&api_app_id=A123456"
    )
    interaction = {
        "type": "block_actions",
        "trigger_id": "12466734323.1395872398",
        "user": {"id": "U0CA5", "username": "Amy McGee"},
        "actions": [{"action_id": "approve", "value": "yes", "type": "button"}],
    }
    clicked = ("payload=" + quote(json.dumps(interaction))).encode()
    for body in (command, clicked):
        forged = await client.post(
            hook.path, content=body, headers=FORM | _slack_headers(body, secret="x")
        )
        assert forged.status_code == 401
        answer = await client.post(hook.path, content=body, headers=FORM | _slack_headers(body))
        assert answer.status_code == 200, answer.text
    stored = await _stored(container, hook)
    assert sorted(row.event_id for row in stored) == [
        "12466734323.1395872398",
        "13345224609.738474920.8088930838d88f008e0",
    ]
    await run_jobs(container, hook.tenant_id, PROCESS)
    items = {e.source_id: e.trigger_item for e in await _executions(container, hook)}
    assert items["12466734323.1395872398"]["payload"]["actions"][0]["action_id"] == "approve"
    assert items["13345224609.738474920.8088930838d88f008e0"]["command"] == "/weather"


async def test_a_standard_webhooks_signature_made_by_the_reference_library_verifies(
    client: httpx.AsyncClient, container: Container, tenants: Tenants
) -> None:
    from standardwebhooks import Webhook

    secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
    verify = {
        "type": "hmac",
        "header": "webhook-signature",
        "encoding": "base64",
        "prefix": "v1,",
        "base": '{{ headers["webhook-id"] }}.{{ timestamp }}.{{ body }}',
        "timestamp_header": "webhook-timestamp",
        "key": "base64",
    }
    tenant = await tenants.create()
    hook = await enable(
        container, tenant.id, settings={"verify": verify}, own_secrets={"signing_secret": secret}
    )
    body = '{"type": "invoice.paid", "data": {"id": "in_1"}}'
    moment = int(time.time())
    signature = Webhook(secret).sign(
        "msg_2Lh9KRb0pzN4LePd3XiA4v12Axj", datetime.fromtimestamp(moment, UTC), body
    )
    headers = JSON | {
        "webhook-id": "msg_2Lh9KRb0pzN4LePd3XiA4v12Axj",
        "webhook-timestamp": str(moment),
        "webhook-signature": f"v1,{'A' * 43}= {signature}",  # a rotated-out key's first
    }
    assert (await client.post(hook.path, content=body, headers=headers)).status_code == 200
    assert [row.event_id for row in await _stored(container, hook)] == [
        "msg_2Lh9KRb0pzN4LePd3XiA4v12Axj"
    ]


async def test_a_shared_token_is_checked_and_never_stored(
    client: httpx.AsyncClient, container: Container, tenants: Tenants
) -> None:
    tenant = await tenants.create()
    hook = await enable(
        container,
        tenant.id,
        settings={
            "verify": {"type": "bearer", "header": "X-Gitlab-Token", "secret_field": "hook_token"}
        },
        own_secrets={"hook_token": "gitlab-secret-token"},
    )
    body = b'{"object_kind": "issue", "object_attributes": {"id": 301}}'
    wrong = await client.post(hook.path, content=body, headers=JSON | {"X-Gitlab-Token": "guess"})
    assert wrong.status_code == 401
    right = await client.post(
        hook.path,
        content=body,
        headers=JSON | {"X-Gitlab-Token": "gitlab-secret-token", "Cookie": "s=1"},
    )
    assert right.status_code == 200
    (stored,) = await _stored(container, hook)
    assert "x-gitlab-token" not in stored.headers
    assert "cookie" not in stored.headers


async def test_graph_validation_is_echoed_as_plain_text_and_not_stored(
    client: httpx.AsyncClient, container: Container, tenants: Tenants
) -> None:
    tenant = await tenants.create()
    await add_connector(container, tenant.id, GRAPH_MAIL)
    connection = await add_connection(
        container, tenant.id, "graph-mail", settings={"base_url": "https://graph.example"}
    )
    hook = await enable(
        container, tenant.id, connector="graph-mail", trigger="new_mail", connection_id=connection
    )
    token = (
        "Validation: Testing client application reachability for subscription Request-Id: 7d2f-4c1e"
    )
    query = "validationToken=" + token.replace(" ", "+").replace(":", "%3a")
    answer = await client.post(
        f"{hook.path}?{query}", headers={"Content-Type": "text/plain; charset=utf-8"}
    )
    assert answer.status_code == 200
    assert answer.headers["content-type"] == "text/plain; charset=utf-8"
    assert answer.text == token
    assert await _stored(container, hook) == []


async def test_bad_requests_to_a_hook_are_4xx_problems_that_say_why_and_store_nothing(
    client: httpx.AsyncClient, container: Container, tenants: Tenants
) -> None:
    tenant = await tenants.create()
    hook = await enable(container, tenant.id, settings={"max_body_bytes": 4096})
    slack = await _slack_hook(container, tenants)
    deep: Any = "bottom"
    for _ in range(20):
        deep = {"d": deep}
    cases: list[tuple[Hook, bytes, dict[str, str], int, str]] = [
        (hook, b'{"order": ', JSON, 400, "not JSON"),
        (hook, b'{"n": NaN}', JSON, 400, "not JSON"),
        (hook, b'{"s": "\\ud800"}', JSON, 400, "not JSON"),
        (hook, b'{"title": "a\\u0000b"}', JSON, 422, "body.title"),
        (hook, b"a\x00b", {"Content-Type": "text/plain"}, 422, "body"),
        (hook, b"name=a%00b", FORM, 422, "body.name"),
        (hook, "caf\u00e9".encode("latin-1"), {"Content-Type": "text/plain"}, 400, "not UTF-8"),
        (hook, orjson.dumps(deep), JSON, 422, "levels deep"),
        (hook, b"x" * 4097, {"Content-Type": "text/plain"}, 413, "at most 4096 bytes"),
    ]
    payload = b"payload=%7Bnot-json"
    cases.append((slack, payload, FORM | _slack_headers(payload), 400, "`payload` is not JSON"))
    for target, body, headers, status, says in cases:
        answer = await client.post(target.path, content=body, headers=headers)
        assert answer.status_code == status, (body[:40], answer.text)
        assert answer.headers["content-type"] == PROBLEM
        assert says in answer.text, (body[:40], answer.text)
    assert await _stored(container, hook) == []
    assert await _stored(container, slack) == []


async def test_the_servers_limit_unknown_tokens_and_other_methods_are_problems_too(
    client: httpx.AsyncClient, container: Container, tenants: Tenants
) -> None:
    tenant = await tenants.create()
    hook = await enable(container, tenant.id)
    huge = await client.post(hook.path, content=b"x" * (1_048_576 + 1), headers=JSON)
    assert huge.status_code == 413
    assert huge.headers["content-type"] == PROBLEM
    unknown = await client.post("/hooks/not-a-token", content=b"{}", headers=JSON)
    assert (unknown.status_code, unknown.headers["content-type"]) == (404, PROBLEM)
    nul = await client.post(f"{hook.path}?x=a%00b", content=b"{}", headers=JSON)
    assert nul.status_code == 422
    get = await client.get(hook.path, params={"anything": "goes"})
    assert (get.status_code, get.headers["allow"]) == (405, "POST")
    assert await _stored(container, hook) == []


async def test_a_disabled_hook_answers_410_until_enabled_again(
    client: httpx.AsyncClient, container: Container, tenants: Tenants
) -> None:
    tenant = await tenants.create()
    hook = await enable(container, tenant.id)
    await disable(container, hook)
    answer = await client.post(hook.path, content=b'{"id": 1}', headers=JSON)
    assert answer.status_code == 410
    assert answer.json()["type"] == "/problems/hook-disabled"
    assert await _stored(container, hook) == []


async def test_an_admin_sets_a_hooks_own_signing_secret_and_sees_only_which_are_set(
    client: httpx.AsyncClient, container: Container, tenants: Tenants
) -> None:
    tenant = await tenants.create()
    hook = await enable(container, tenant.id, settings={"verify": GITHUB})
    where = f"/api/v1/subscriptions/{hook.subscription_id}/hook"
    before = (await client.get(where, headers=tenant.headers)).json()
    assert before["url"] == f"http://127.0.0.1:8000/hooks/{hook.token}"
    assert (before["verification"], before["secrets_set"]) == ("hmac", [])
    body = _push_event(9)
    signed = JSON | {"X-Hub-Signature-256": _github_signature(body)}
    refused = await client.post(hook.path, content=body, headers=signed)
    assert refused.status_code == 401
    assert "no signing secret is set" in refused.json()["detail"]

    viewer = await tenants.member(tenant.id, Role.VIEWER)
    put = {"secrets": {"signing_secret": SECRET}}
    assert (
        await client.put(f"{where}/secrets", json=put, headers=viewer.headers)
    ).status_code == 403
    other = await tenants.create()
    assert (
        await client.put(f"{where}/secrets", json=put, headers=other.headers)
    ).status_code == 404
    unknown = await client.put(
        f"{where}/secrets", json={"secrets": {"api_key": "x"}}, headers=tenant.headers
    )
    assert unknown.status_code == 422
    assert unknown.json()["field"] == "secrets.api_key"
    answer = await client.put(f"{where}/secrets", json=put, headers=tenant.headers)
    assert answer.status_code == 200
    assert answer.json()["secrets_set"] == ["signing_secret"]
    assert SECRET not in answer.text
    assert (await client.post(hook.path, content=body, headers=signed)).status_code == 200
    cleared = await client.put(
        f"{where}/secrets", json={"secrets": {"signing_secret": None}}, headers=tenant.headers
    )
    assert cleared.json()["secrets_set"] == []
    assert await pending_jobs(container, tenant.id, [PROCESS])


@pytest.mark.parametrize(
    "body", [{"secrets": {"signing_secret": ""}}, {"secrets": {"Bad Name": "x"}}, {"secret": {}}]
)
async def test_hook_secrets_that_cannot_be_kept_are_422(
    client: httpx.AsyncClient, container: Container, tenants: Tenants, body: dict[str, Any]
) -> None:
    tenant = await tenants.create()
    hook = await enable(container, tenant.id)
    where = f"/api/v1/subscriptions/{hook.subscription_id}/hook/secrets"
    assert (await client.put(where, json=body, headers=tenant.headers)).status_code == 422


async def test_a_delivery_racing_the_deletion_of_its_subscription_is_refused_not_an_error(
    client: httpx.AsyncClient, container: Container, tenants: Tenants, backend: str
) -> None:
    tenant = await tenants.create()
    hook = await enable(container, tenant.id)
    async with container.unit_of_work(tenant.id) as uow:
        await uow.begin_write()
        await uow.subscriptions.delete(await uow.subscriptions.get(hook.subscription_id))
        await uow.flush()
        racing = asyncio.create_task(client.post(hook.path, content=b'{"id": 7}', headers=JSON))
        await asyncio.sleep(0.5)  # it found the subscription, and waits on the deletion's locks
        await uow.commit()
    answer = await asyncio.wait_for(racing, 30)
    # MariaDB's INSERT IGNORE drops the row whose subscription is gone, as it drops a repeat.
    assert answer.status_code == (200 if backend == "mariadb" else 404), answer.text
    assert await _stored(container, hook) == []


async def test_a_hook_heeds_a_change_of_its_connection_subscription_or_tenant_at_once(
    client: httpx.AsyncClient, container: Container, tenants: Tenants
) -> None:
    """The trigger a hook resolves to is kept between deliveries, but never past a change."""
    tenant = await tenants.create()
    await add_connector(container, tenant.id, SLACK_APP)
    connection = await add_connection(
        container, tenant.id, "slack-app", secrets={"signing_secret": SECRET}
    )
    hook = await enable(
        container, tenant.id, connector="slack-app", trigger="event", connection_id=connection
    )
    body = orjson.dumps({"type": "event_callback", "event_id": "Ev1", "event": {}})
    assert (
        await client.post(hook.path, content=body, headers=_slack_headers(body))
    ).status_code == 200
    where = f"/api/v1/connections/{connection}"
    renamed = {"name": "Slack", "secrets": {"signing_secret": "a new signing secret"}}
    changed = await client.put(where, json=renamed, headers=tenant.headers)
    assert changed.status_code == 200, changed.text
    again = orjson.dumps({"type": "event_callback", "event_id": "Ev2", "event": {}})
    old = await client.post(hook.path, content=again, headers=_slack_headers(again))
    assert old.status_code == 401
    new = _slack_headers(again, secret="a new signing secret")
    assert (await client.post(hook.path, content=again, headers=new)).status_code == 200

    await disable(container, hook)
    later = orjson.dumps({"type": "event_callback", "event_id": "Ev3", "event": {}})
    signed = _slack_headers(later, secret="a new signing secret")
    assert (await client.post(hook.path, content=later, headers=signed)).status_code == 410
    async with container.unit_of_work() as uow:
        await uow.begin_write()
        found = await uow.tenants.find(tenant.id)
        assert found is not None
        found.enabled = False
        await uow.commit()
    assert (await client.post(hook.path, content=later, headers=signed)).status_code == 404
    assert [row.event_id for row in await _stored(container, hook)] == ["Ev1", "Ev2"]


async def test_a_delivery_is_one_query_and_one_transaction_of_two_inserts(
    client: httpx.AsyncClient, container: Container, tenants: Tenants
) -> None:
    hook = await _github_hook(container, tenants)
    statements: list[str] = []

    def seen(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        statements.append(statement.split(None, 1)[0].upper())

    first = _push_event(1)
    signed = JSON | {"X-Hub-Signature-256": _github_signature(first)}
    assert (await client.post(hook.path, content=first, headers=signed)).status_code == 200
    engine = container.database.engine.sync_engine
    event.listen(engine, "before_cursor_execute", seen)
    try:
        second = _push_event(2)
        signed = JSON | {"X-Hub-Signature-256": _github_signature(second)}
        assert (await client.post(hook.path, content=second, headers=signed)).status_code == 200
    finally:
        event.remove(engine, "before_cursor_execute", seen)
    assert [s for s in statements if s != "BEGIN"] == ["SELECT", "INSERT", "INSERT"]
    assert len(await _stored(container, hook)) == 2
