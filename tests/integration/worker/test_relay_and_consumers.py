"""The outbox relay and consumer groups over the in-process bus, on every database."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import httpx
import orjson
import pytest

from casedesk.bootstrap import Container, build
from casedesk.domain.identity.roles import Role
from casedesk.store.bus.base import BusUnavailable, Message, Subscription
from casedesk.store.bus.inprocess import InProcessBus
from casedesk.store.leases import Lease
from casedesk.store.models import Comment
from casedesk.store.unit_of_work import UnitOfWork
from casedesk.worker.consumers import ConsumerGroup, Consumers
from casedesk.worker.relay import Relay
from tests.conftest import Tenants, settings_for
from tests.support.cases import Desk


@pytest.fixture
async def bus() -> AsyncIterator[InProcessBus]:
    bus = InProcessBus(retry_delay=0.001)
    await bus.start()
    yield bus
    await bus.close()


async def _drain(relay: Relay) -> None:
    while await relay.relay_once():
        pass


async def _record(bus: InProcessBus, types: list[str]) -> list[Message]:
    seen: list[Message] = []

    async def handler(message: Message) -> None:
        seen.append(message)

    async def no_dead_letters(group: str, message: Message, error: str) -> None:
        raise AssertionError(f"unexpected dead letter: {error}")

    await bus.subscribe(Subscription("recorder", types, handler), no_dead_letters)
    return seen


async def test_relay_publishes_committed_events_once_in_outbox_order(
    desk: Desk, container: Container, bus: InProcessBus
) -> None:
    relay = Relay(container.database, bus)
    await _drain(relay)
    seen = await _record(bus, ["*"])
    first = await desk.new_case()
    await desk.act(first["id"], "start")
    second = await desk.new_case()
    await _drain(relay)
    mine = [m for m in seen if m.tenant_id == str(desk.tenant.id)]
    assert [m.type for m in mine] == [
        "case.created",
        "task.created",
        "case.state_changed",
        "task.accepted",
        "case.created",
        "task.created",
    ]
    assert [m.sequence for m in mine] == sorted(m.sequence for m in mine)
    assert {m.subject for m in mine} == {first["id"], second["id"]}
    envelope = orjson.loads(mine[0].body)
    assert envelope["specversion"] == "1.0"
    assert envelope["id"] == mine[0].id
    assert mine[0].traceparent == envelope["traceparent"]
    before = len(seen)
    assert await relay.relay_once() == 0
    assert len(seen) == before


async def test_a_subscription_gets_only_its_types(
    desk: Desk, container: Container, bus: InProcessBus
) -> None:
    relay = Relay(container.database, bus)
    await _drain(relay)
    seen = await _record(bus, ["case.state_changed", "comment.*"])
    case = await desk.new_case()
    await desk.act(case["id"], "start", json={"comment": "on it"})
    await _drain(relay)
    assert [m.type for m in seen if m.subject == case["id"]] == [
        "case.state_changed",
        "comment.added",
    ]


async def test_events_wait_in_the_outbox_while_the_bus_is_down(
    desk: Desk, container: Container, bus: InProcessBus
) -> None:
    relay = Relay(container.database, bus)
    await _drain(relay)
    seen = await _record(bus, ["case.created"])
    await bus.close()
    case = await desk.new_case()
    with pytest.raises(BusUnavailable):
        await relay.relay_once()
    assert case["id"] not in {m.subject for m in seen}
    await bus.start()
    await _drain(relay)
    assert [m.subject for m in seen].count(case["id"]) == 1


def _commenting_group(calls: list[str], *, fail_times: int = 0) -> ConsumerGroup:
    """A group whose effect is a comment on the case, written in the consumer's transaction."""

    async def handler(message: Message, uow: UnitOfWork) -> None:
        calls.append(message.id)
        if len(calls) <= fail_times:
            raise RuntimeError("flaky")
        uow.comments.add(
            Comment(
                case_id=uuid.UUID(message.subject or ""),
                body=f"saw {message.type}",
                public=False,
                author_type="system",
            )
        )

    return ConsumerGroup("commenter", ["case.created"], handler, max_attempts=3)


async def _comments(desk: Desk, case_id: str) -> list[str]:
    response = await desk.http.get(f"/api/v1/cases/{case_id}", headers=desk.headers)
    return [c["body"] for c in response.json()["comments"]]


async def test_a_redelivered_event_acts_once(
    desk: Desk, container: Container, bus: InProcessBus
) -> None:
    relay = Relay(container.database, bus)
    await _drain(relay)
    calls: list[str] = []
    consumers = Consumers(container.database, {"commenter": _commenting_group(calls)})
    await consumers.subscribe_all(bus)
    case = await desk.new_case()
    async with UnitOfWork(container.database) as uow:
        pending = [
            e for e in await uow.outbox.pending(limit=1000) if str(e.subject_id) == case["id"]
        ]
    await _drain(relay)
    from casedesk.worker.relay import to_message

    await bus.publish([to_message(e) for e in pending])  # the same events, delivered again
    assert await _comments(desk, case["id"]) == ["saw case.created"]
    assert len(calls) == 1


async def test_a_failing_handler_is_retried_then_succeeds(
    desk: Desk, container: Container, bus: InProcessBus
) -> None:
    relay = Relay(container.database, bus)
    await _drain(relay)
    calls: list[str] = []
    group = _commenting_group(calls, fail_times=2)
    await Consumers(container.database, {"commenter": group}).subscribe_all(bus)
    case = await desk.new_case()
    await _drain(relay)
    assert len(calls) == 3
    assert await _comments(desk, case["id"]) == ["saw case.created"]


async def test_an_event_that_keeps_failing_is_dead_lettered_and_shown_to_admins(
    desk: Desk, container: Container, bus: InProcessBus, tenants: Tenants, client: httpx.AsyncClient
) -> None:
    relay = Relay(container.database, bus)
    await _drain(relay)
    calls: list[str] = []
    failing = _commenting_group(calls, fail_times=99)
    healthy_calls: list[str] = []
    healthy = ConsumerGroup("other", ["case.created"], _commenting_group(healthy_calls).handler)
    consumers = Consumers(container.database, {"commenter": failing, "other": healthy})
    await consumers.subscribe_all(bus)
    case = await desk.new_case()
    await _drain(relay)
    assert len(calls) == 3
    assert len(healthy_calls) == 1
    listed = await client.get("/api/v1/dead-letters", headers=desk.headers)
    assert listed.status_code == 200
    items = [i for i in listed.json()["items"] if i["envelope"]["subject"] == case["id"]]
    assert len(items) == 1
    assert items[0]["consumer_group"] == "commenter"
    assert items[0]["attempts"] == 3
    assert "flaky" in items[0]["error"]
    assert items[0]["type"] == "case.created"
    handed_again = Message(
        id=items[0]["event_id"],
        type="case.created",
        tenant_id=str(desk.tenant.id),
        subject=case["id"],
        sequence=items[0]["sequence"],
        traceparent="00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
        body=orjson.dumps(items[0]["envelope"]),
    )
    await consumers.dead_letter("commenter", handed_again, "the broker's dead queue again")
    relisted = await client.get("/api/v1/dead-letters", headers=desk.headers)
    mine = [i for i in relisted.json()["items"] if i["envelope"]["subject"] == case["id"]]
    assert len(mine) == 1
    other = await tenants.create()
    theirs = await client.get("/api/v1/dead-letters", headers=other.headers)
    assert theirs.json()["items"] == []
    viewer = await tenants.member(desk.tenant.id, Role.VIEWER)
    assert (await client.get("/api/v1/dead-letters", headers=viewer.headers)).status_code == 403
    assert await relay.relay_once() == 0


async def test_only_one_process_holds_the_relay_lease(backend_url: str) -> None:
    first, second = build(settings_for(backend_url)), build(settings_for(backend_url))
    one, two = Lease(first.database, "test.lease"), Lease(second.database, "test.lease")
    try:
        assert await one.try_acquire()
        assert not await two.try_acquire()
        assert await one.alive()
        await one.release()
        assert await two.try_acquire()
    finally:
        await one.release()
        await two.release()
        await first.close()
        await second.close()
