"""Search over cases on every database: words, phrases, exclusions and field terms, in English
and Chinese; internal notes only for those who may read them; the indexer as a consumer group
that case writes never wait for; the rebuild; a query that cannot be read is a 422."""

from __future__ import annotations

import importlib
import random
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import delete
from typer.testing import CliRunner

from casedesk.bootstrap import Container
from casedesk.cli import app
from casedesk.config import get_settings
from casedesk.domain.cases.lists import CaseQuery, count_cases, find_cases
from casedesk.domain.search import indexing
from casedesk.domain.search.finding import Searcher
from casedesk.domain.search.tokens import MAX_TOKENS, PREFIX
from casedesk.store import search as store_search
from casedesk.store.bus.inprocess import InProcessBus
from casedesk.store.models import ScheduledJob
from casedesk.worker import search_index
from casedesk.worker.consumers import Consumers
from casedesk.worker.relay import Relay
from casedesk.worker.search_index import SearchIndexer, reindex, reindex_key
from tests.conftest import Tenants
from tests.support.cases import Desk, make_desk
from tests.support.delivery import Settle, delivering_to


@pytest.fixture
async def settle(container: Container) -> AsyncIterator[Settle]:
    """The search indexer receiving every event relayed by ``settle()``."""
    indexing._lags.clear()
    async with delivering_to(container, SearchIndexer(container.database).group()) as settle:
        yield settle
    indexing._lags.clear()


async def _search(desk: Desk, q: str, **params: Any) -> httpx.Response:
    indexing._lags.clear()  # the lag is measured once a second: each look here is fresh
    return await desk.http.get("/api/v1/cases", params={"q": q, **params}, headers=desk.headers)


async def _numbers(desk: Desk, q: str, **params: Any) -> list[int]:
    found = await _search(desk, q, **params)
    assert found.status_code == 200, found.text
    return [item["number"] for item in found.json()["items"]]


async def _comment(desk: Desk, case_id: str, body: str, *, public: bool = True) -> None:
    made = await desk.http.post(
        f"/api/v1/cases/{case_id}/comments",
        json={"body": body, "public": public},
        headers=desk.headers,
    )
    assert made.status_code == 201, made.text


async def _cases(desk: Desk) -> dict[str, dict[str, Any]]:
    made = {
        "fire": await desk.new_case(
            title="Printer on fire",
            description="我的打印机着火了",
            priority="urgent",
        ),
        "refund": await desk.new_case(
            title="Refund for order 1042",
            description="请给我退款，谢谢",  # noqa: RUF001
            tags=["vip"],
            priority="low",
        ),
        "login": await desk.new_case(
            title="Cannot log in",
            description="Login fails with 密码错误 since Tuesday",
            customer={"email": "lee@acme.example", "name": "Lee Wong"},
        ),
        "toner": await desk.new_case(title="Printer toner low", description="Café order"),
    }
    await _comment(desk, made["fire"]["id"], "The paper tray jammed, then smoke")
    await _comment(desk, made["toner"]["id"], "customer is angry about the 发票", public=False)
    return made


async def test_words_phrases_exclusions_and_fields_find_exactly_the_expected_cases(
    desk: Desk, settle: Settle
) -> None:
    made = await _cases(desk)
    await settle()
    n = {name: case["number"] for name, case in made.items()}

    async def found(q: str) -> set[int]:
        return set(await _numbers(desk, q))

    assert await found("printer") == {n["fire"], n["toner"]}
    assert await found("PRINTER") == {n["fire"], n["toner"]}, "case folded"
    assert await found("Ｐｒｉｎｔｅｒ") == {n["fire"], n["toner"]}, "full-width letters"  # noqa: RUF001
    assert await found("cafe") == {n["toner"]}, "accents folded"
    assert await found("print") == set(), "a Latin word is matched whole"
    # Chinese: a word anywhere in running text, as a substring.
    assert await found("打印机") == {n["fire"]}
    assert await found("打印") == {n["fire"]}
    assert await found("印机着") == {n["fire"]}
    assert await found("退款") == {n["refund"]}
    assert await found("打印机 退款") == set(), "every word must be found"
    assert await found("机打") == set()
    # Phrases, in straight and typographic quotes.
    assert await found('"on fire"') == {n["fire"]}
    assert await found("“on fire”") == {n["fire"]}
    assert await found('"fire on"') == set()
    assert await found('"cannot log in"') == {n["login"]}
    # Exclusions.
    assert await found("printer -toner") == {n["fire"]}
    assert await found('printer -"on fire"') == {n["toner"]}
    assert await found("-printer") >= {n["refund"], n["login"]}
    assert not await found("-printer") & {n["fire"], n["toner"]}
    # Comments, public and internal (an agent reads internal notes).
    assert await found("jammed") == {n["fire"]}
    assert await found("发票") == {n["toner"]}
    # Field terms, with and without words.
    assert await found("tag:vip") == {n["refund"]}
    assert await found("tag:VIP") == {n["refund"]}, "tags without regard to case"
    assert await found("tag:vi") == set(), "a tag is matched whole"
    assert await found("printer -tag:vip") == {n["fire"], n["toner"]}
    assert await found("order tag:vip") == {n["refund"]}
    assert await found("customer:acme") == {n["login"]}
    assert await found("customer:lee@acme.example") == {n["login"]}
    assert await found("wong") == {n["login"]}, "the customer's name is searched"
    assert await found("priority:urgent") == {n["fire"]}
    assert await found("priority:<normal") == {n["refund"]}
    assert await found("printer priority:>=high") == {n["fire"]}
    assert await found("printer -priority:urgent") == {n["toner"]}
    assert await found(f"#{n['refund']}") == {n["refund"]}
    assert await found(f"#{n['refund']} #{n['fire']}") == {n["refund"], n["fire"]}
    assert await found(f"printer -#{n['fire']}") == {n["toner"]}
    assert await found("1042") == {n["refund"]}
    assert await found("state:new printer") == {n["fire"], n["toner"]}
    assert await found("state:solved printer") == set()
    assert await found("queue:support 退款") == {n["refund"]}
    assert await found("queue:billing") == set()
    assert await found("channel:api 打印") == {n["fire"]}
    assert await found("assignee:none 打印") == {n["fire"]}
    assert await found("assignee:me") == set()
    assert await found("created:>2000-01-01 退款") == {n["refund"]}
    assert await found("created:<2000-01-01") == set()
    assert await found("created:2000-01-01..2000-01-31") == set()
    assert await found("-created:2000-01-01 退款") == {n["refund"]}


async def test_the_list_ranks_marks_the_fragment_and_pages_by_relevance(
    desk: Desk, settle: Settle
) -> None:
    once = await desk.new_case(title="A kettle", description="nothing else here")
    often = await desk.new_case(
        title="Kettle kettle", description="the kettle again, kettle and kettle"
    )
    third = await desk.new_case(title="Other", description="a <b>kettle</b> & a cup")
    await settle()
    first = await _search(desk, "kettle", limit=2)
    assert first.status_code == 200, first.text
    body = first.json()
    assert body["items"][0]["number"] == often["number"], "the most matches rank first"
    assert body["next_cursor"] is not None
    rest = await _search(desk, "kettle", limit=2, cursor=body["next_cursor"])
    numbers = [i["number"] for i in body["items"]] + [i["number"] for i in rest.json()["items"]]
    assert sorted(numbers) == sorted([once["number"], often["number"], third["number"]])
    assert rest.json()["next_cursor"] is None
    marked = {item["number"]: item["highlight"] for item in body["items"] + rest.json()["items"]}
    assert marked[once["number"]] == {"field": "title", "html": "A <mark>kettle</mark>"}
    assert marked[third["number"]]["field"] == "description"
    assert "&lt;b&gt;<mark>kettle</mark>&lt;/b&gt; &amp; a cup" in marked[third["number"]]["html"]
    assert body["meta"] == {
        "search_lag_seconds": 0.0,
        "search_lag_events": 0,
        "search_order": "relevance",
    }

    by_number = await _search(desk, "kettle", sort="-number")
    assert [i["number"] for i in by_number.json()["items"]] == sorted(numbers, reverse=True)
    cursor_of_another_sort = await _search(
        desk, "kettle", cursor=by_number.json()["items"][0]["id"]
    )
    assert cursor_of_another_sort.status_code == 422
    plain = await desk.http.get("/api/v1/cases", headers=desk.headers)
    assert "meta" not in plain.json(), "a list without q says nothing of search"
    refused = await _search(desk, "state:new", sort="relevance")
    assert refused.status_code == 422
    assert "relevance" in refused.json()["detail"]


async def test_words_in_too_many_cases_list_the_newest_first_and_all_of_them(
    desk: Desk, settle: Settle, monkeypatch: pytest.MonkeyPatch
) -> None:
    made = [await desk.new_case(title=f"Common {'word ' * n}") for n in (3, 1, 2)]
    await settle()
    monkeypatch.setattr(store_search, "RANKED_AT_MOST", 2)
    first = (await _search(desk, "word", limit=2)).json()
    assert first["meta"]["search_order"] == "newest"
    rest = (await _search(desk, "word", limit=2, cursor=first["next_cursor"])).json()
    listed = [i["number"] for i in first["items"] + rest["items"]]
    assert listed == sorted((c["number"] for c in made), reverse=True)
    monkeypatch.setattr(store_search, "RANKED_AT_MOST", 3)
    ranked = (await _search(desk, "word")).json()
    assert ranked["meta"]["search_order"] == "relevance"
    assert ranked["items"][0]["number"] == made[0]["number"]


async def test_internal_notes_only_match_for_who_may_read_them(
    desk: Desk, settle: Settle, container: Container
) -> None:
    case = await desk.new_case(title="Quiet case", description="public words only")
    await _comment(desk, case["id"], "secret 机密 remark", public=False)
    await settle()
    async with container.unit_of_work(desk.tenant.id) as uow:
        for q in ("secret", "机密", '"secret 机密 remark"'):
            reader = CaseQuery(q=q, searcher=Searcher(None, internal=True))
            outsider = CaseQuery(q=q, searcher=Searcher(None, internal=False))
            assert [
                c.number
                for c in (await find_cases(uow, reader, sort=None, limit=10, cursor=None)).items
            ] == [case["number"]]
            assert (await find_cases(uow, outsider, sort=None, limit=10, cursor=None)).items == []
            assert await count_cases(uow, outsider) == 0
        # An exclusion tells the outsider nothing of the notes either.
        outsider = CaseQuery(q="public -secret", searcher=Searcher(None, internal=False))
        kept = await find_cases(uow, outsider, sort=None, limit=10, cursor=None)
        assert [c.number for c in kept.items] == [case["number"]]
        reader = CaseQuery(q="public -secret", searcher=Searcher(None, internal=True))
        assert (await find_cases(uow, reader, sort=None, limit=10, cursor=None)).items == []


async def test_another_tenant_s_cases_never_appear(
    desk: Desk, settle: Settle, client: httpx.AsyncClient, tenants: Tenants
) -> None:
    other = await make_desk(client, await tenants.create(), desk.container)
    mine = await desk.new_case(title="Printer jam 卡纸", tags=["shared-tag"])
    theirs = await other.new_case(title="Printer jam 卡纸", tags=["shared-tag"])
    await settle()
    for q in ("printer", "卡纸", '"printer jam"', "tag:shared-tag", f"#{theirs['number']} printer"):
        found = await _search(desk, q)
        ids = [item["id"] for item in found.json()["items"]]
        assert theirs["id"] not in ids, q
    assert [i["id"] for i in (await _search(desk, "卡纸")).json()["items"]] == [mine["id"]]
    assert [i["id"] for i in (await _search(other, "卡纸")).json()["items"]] == [theirs["id"]]


async def test_a_comment_added_after_indexing_is_found_once_the_indexer_ran(
    desk: Desk, settle: Settle
) -> None:
    case = await desk.new_case(title="Slow laptop")
    await settle()
    assert await _numbers(desk, "zanzibar") == []
    await _comment(desk, case["id"], "it came back from Zanzibar 桑给巴尔")
    assert await _numbers(desk, "zanzibar") == [], "not indexed yet"
    behind = (await _search(desk, "laptop")).json()["meta"]
    assert behind["search_lag_events"] >= 1
    await settle()
    assert await _numbers(desk, "zanzibar") == [case["number"]]
    assert await _numbers(desk, "桑给巴尔") == [case["number"]]
    changed = await desk.http.patch(
        f"/api/v1/cases/{case['id']}", json={"title": "Fast laptop"}, headers=desk.headers
    )
    assert changed.status_code == 200, changed.text
    await settle()
    assert await _numbers(desk, "slow") == []
    assert await _numbers(desk, "fast zanzibar") == [case["number"]]


async def test_writes_go_on_while_the_indexer_is_stopped_and_it_catches_up(
    desk: Desk, container: Container
) -> None:
    # No relay and no indexer: the events wait in the outbox; the writes do not wait.
    made = [await desk.new_case(title=f"Backlog {n} 积压") for n in range(5)]
    for case in made:
        await _comment(desk, case["id"], "waiting for the indexer")
    meta = (await _search(desk, "积压")).json()
    assert meta["items"] == []
    assert meta["meta"]["search_lag_events"] >= 10
    assert meta["meta"]["search_lag_seconds"] >= 0
    before = _gauge(await desk.http.get("/metrics"), "casedesk_search_lag_events")
    assert before >= 10, "the deployment's lag is in /metrics"
    # The indexer starts again: it gets the events that waited.
    bus = InProcessBus(retry_delay=0.001)
    await bus.start()
    try:
        group = SearchIndexer(container.database).group()
        await Consumers(container.database, {group.name: group}).subscribe_all(bus)
        relay = Relay(container.database, bus)
        while await relay.relay_once():
            pass
    finally:
        await bus.close()
    caught_up = (await _search(desk, "积压 indexer")).json()
    assert sorted(i["number"] for i in caught_up["items"]) == sorted(c["number"] for c in made)
    assert caught_up["meta"]["search_lag_seconds"] == 0.0
    assert caught_up["meta"]["search_lag_events"] == 0
    metrics = await desk.http.get("/metrics")
    after = _gauge(metrics, "casedesk_search_lag_events")
    assert after <= before - 10, "other tests' events may still wait; ours do not"
    assert _gauge(metrics, "casedesk_search_index_delay_seconds") > 0, "they waited"


def _gauge(response: httpx.Response, name: str) -> float:
    assert response.status_code == 200
    (line,) = [row for row in response.text.splitlines() if row.startswith(name + " ")]
    return float(line.split()[1])


async def test_the_same_event_twice_or_late_writes_nothing_older(
    desk: Desk, settle: Settle, container: Container
) -> None:
    case = await desk.new_case(title="Ordered 有序")
    await settle()
    case_id = uuid.UUID(case["id"])
    async with container.unit_of_work(desk.tenant.id) as uow:
        await uow.begin_write()
        (kept,) = (await uow.search.positions([case_id])).values()
        assert not await uow.search.write(case_id, f"{PREFIX}stale", "", position=kept - 1)
        assert await uow.search.write(case_id, f"{PREFIX}ordered", "", position=kept)
        await uow.commit()
    assert await _numbers(desk, "ordered") == [case["number"]]
    assert await _numbers(desk, "stale") == []


async def test_reindex_rebuilds_every_document_beside_the_indexer(
    desk: Desk, container: Container
) -> None:
    made = [await desk.new_case(title=f"Rebuilt {n} 重建") for n in range(3)]
    seen: list[tuple[int, int]] = []
    written = await reindex(
        container.database, tenant_id=desk.tenant.id, progress=lambda d, t: seen.append((d, t))
    )
    assert written == 3
    assert seen[-1] == (3, 3)
    assert sorted(await _numbers(desk, "重建")) == sorted(c["number"] for c in made)
    # A rebuild over kept documents writes them again (the rows as they are now).
    assert await reindex(container.database, tenant_id=desk.tenant.id) == 3


async def test_the_largest_document_is_indexed_on_every_database(
    desk: Desk, container: Container
) -> None:
    case = await desk.new_case(title="Huge")
    rng = random.Random(7)
    distinct = " ".join(
        PREFIX + chr(rng.randint(0x4E00, 0x9FFF)) + chr(rng.randint(0x4E00, 0x9FFF))
        for _ in range(MAX_TOKENS)
    )
    async with container.unit_of_work(desk.tenant.id) as uow:
        await uow.begin_write()
        assert await uow.search.write(uuid.UUID(case["id"]), distinct, distinct, position=1)
        await uow.commit()
    last = distinct.rsplit(" ", 1)[1][len(PREFIX) :]
    assert await _numbers(desk, last) == [case["number"]]


@pytest.mark.parametrize(
    ("q", "where"),
    [
        ('"open', 1),
        ("stat:open", 1),
        ("printer -", 9),
        ("priority:hot", 10),
        ("created:yesterday", 9),
        ("x" * 501, 501),
        ("created:9999-12-31", 9),
        ("updated:2026-01-01..9999-12-31", 21),
        ("created:<0999-12-31", 10),
    ],
)
async def test_a_query_that_cannot_be_read_is_a_422_saying_where(
    desk: Desk, q: str, where: int
) -> None:
    refused = await _search(desk, q)
    assert refused.status_code == 422, refused.text
    problem = refused.json()
    assert problem["errors"][0]["field"] == "q" if "errors" in problem else True
    assert f"at character {where}" in problem["detail"]


async def test_names_the_tenant_does_not_have_are_a_422(desk: Desk) -> None:
    for q, named in (("queue:nowhere", "nowhere"), ("assignee:ghost@example.com", "ghost")):
        refused = await _search(desk, q)
        assert refused.status_code == 422, refused.text
        assert named in refused.json()["detail"]


def test_the_reindex_command_rebuilds_with_a_progress_bar_and_names_an_unknown_tenant(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, request: pytest.FixtureRequest
) -> None:
    monkeypatch.setenv("CASEDESK_DATABASE_URL", f"sqlite:///{tmp_path / 'desk.db'}")
    get_settings.cache_clear()  # the command reads these settings, and later ones theirs
    request.addfinalizer(get_settings.cache_clear)
    runner = CliRunner()
    assert runner.invoke(app, ["db", "upgrade"]).exit_code == 0
    assert runner.invoke(app, ["tenant", "create", "acme", "--name", "Acme"]).exit_code == 0
    every = runner.invoke(app, ["search", "reindex"])
    assert every.exit_code == 0, every.output
    assert "indexed 0 case(s) of every tenant" in every.output
    one = runner.invoke(app, ["search", "reindex", "--tenant", "acme"])
    assert one.exit_code == 0, one.output
    assert "of tenant acme" in one.output
    unknown = runner.invoke(app, ["search", "reindex", "--tenant", "nobody"])
    assert unknown.exit_code != 0
    assert "nobody" in unknown.output


async def test_a_view_saved_with_a_search_counts_what_it_finds(desk: Desk, settle: Settle) -> None:
    await desk.new_case(title="Invoice missing 发票", tags=["billing"])
    await desk.new_case(title="Invoice late 发票")
    await settle()
    made = await desk.http.post(
        "/api/v1/views",
        json={"name": "Invoices", "filters": {"q": "发票 -tag:billing"}, "sort": "relevance"},
        headers=desk.headers,
    )
    assert made.status_code == 201, made.text
    listed = await desk.http.get("/api/v1/views", params={"counts": "true"}, headers=desk.headers)
    (kept,) = [v for v in listed.json() if v["id"] == made.json()["id"]]
    assert kept["filters"]["q"] == "发票 -tag:billing"
    assert kept["count"] == 1
    for body, named in (
        ({"name": "Bad", "filters": {"q": "stat:open"}}, "stat"),
        ({"name": "Bad", "filters": {"q": "tag:x"}, "sort": "relevance"}, "relevance"),
    ):
        refused = await desk.http.post("/api/v1/views", json=body, headers=desk.headers)
        assert refused.status_code == 422, refused.text
        assert named in refused.text


async def test_any_text_is_a_search_or_a_422_on_every_database(desk: Desk, settle: Settle) -> None:
    """A seeded, bounded fuzz through the engines: the characters each engine's own query
    syntax gives meaning to (FTS5's, tsquery's, InnoDB's boolean mode), quotes, field names,
    Chinese, emoji and controls, in any order."""
    await desk.new_case(title="Fuzzed 模糊 o'clock", description="AND OR NOT NEAR * ^ + - ~ @")
    await settle()
    pieces = [
        *"\"“”「」'`-+*^~@:：#()[]{}<>|&!\\/%_.,;=?",  # noqa: RUF001
        " ",
        "  ",
        "AND",
        "OR",
        "NOT",
        "NEAR",
        "NEAR/2",
        "state:",
        "tag:",
        "priority:>",
        "created:",
        "..",
        "2026-01-01",
        "#12",
        "模糊",
        "打印机",
        "é",
        "ß",
        "ﬁ",
        "İ",
        "🙂",
        "\u200b",
        "\u0301",
        "\t",
        "o'clock",
        "qz",
        "x" * 70,
        "fuzzed",
    ]
    chance = random.Random(20261204)
    for _ in range(150):
        q = "".join(chance.choice(pieces) for _ in range(chance.randint(1, 12)))
        answer = await _search(desk, q)
        assert answer.status_code in (200, 422), (q, answer.text)
        if answer.status_code == 422:
            assert "at character" in answer.json()["detail"], q
    assert await _numbers(desk, "o'clock 模糊") != []


async def test_a_customer_term_takes_like_s_wildcards_as_plain_characters(
    desk: Desk, settle: Settle
) -> None:
    jo = await desk.new_case(title="Hello", customer={"email": "jo_ann@x.example", "name": "Jo"})
    other = await desk.new_case(title="Hello", customer={"email": "joXann@x.example", "name": "Jx"})
    await settle()
    assert await _numbers(desk, "customer:jo_ann") == [jo["number"]]
    assert await _numbers(desk, "customer:JO_ANN@X") == [jo["number"]]
    assert await _numbers(desk, "customer:jo%ann") == []
    assert await _numbers(desk, "customer:o\\_a") == []
    assert await _numbers(desk, "hello -customer:jo_ann") == [other["number"]]


async def test_an_upgrade_has_the_workers_index_the_cases_made_before(
    desk: Desk, container: Container, monkeypatch: pytest.MonkeyPatch
) -> None:
    made = [await desk.new_case(title=f"Made before search {n} 旧工单") for n in range(2)]
    migration = importlib.import_module("casedesk.migrations.versions.0034_search_documents")
    async with container.database.engine.begin() as connection:
        assert await connection.run_sync(migration.plan_reindex) >= 1
    async with container.unit_of_work(desk.tenant.id) as uow:
        job = await uow.jobs.find(reindex_key(desk.tenant.id))
    async with container.database.engine.begin() as connection:  # the other tests' tenants
        await connection.execute(
            delete(ScheduledJob.__table__).where(
                ScheduledJob.kind == "search.reindex", ScheduledJob.tenant_id != desk.tenant.id
            )
        )
    assert job is not None
    assert job.status == "pending"
    monkeypatch.setattr(search_index, "BATCH", 1)
    monkeypatch.setattr(search_index, "JOB_BATCHES", 1)
    work = search_index.Reindexing(container.database)
    runs = 0
    while True:
        runs += 1
        outcome = await work.run_job(job)
        if outcome is None:
            break
        async with container.unit_of_work(desk.tenant.id) as uow:
            job = await uow.jobs.find(reindex_key(desk.tenant.id))
        assert job is not None
        assert job.payload["after"]
    assert runs == 3, "a case a run, then a run that finds none left"
    found = sorted(await _numbers(desk, "旧工单"))
    assert found == sorted(c["number"] for c in made)


async def test_the_earliest_and_latest_days_are_searched_without_error(desk: Desk) -> None:
    for q in ("created:>1000-01-01", "created:<9999-12-30", "updated:1000-01-01..9999-12-30"):
        answer = await _search(desk, q)
        assert answer.status_code == 200, (q, answer.text)
