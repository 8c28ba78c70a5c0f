"""Search in the workbench: the box in the header and above the list, the fragments that
matched, the note when the index is behind, and views saved with a search."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from casedesk.bootstrap import Container
from casedesk.domain.identity.roles import Role
from casedesk.domain.search import indexing
from casedesk.worker.search_index import SearchIndexer
from tests.conftest import Tenants
from tests.support.cases import Desk
from tests.support.delivery import Settle, delivering_to
from tests.support.web import hidden, signed_in

# The search itself is tested on every database (tests/integration/test_search.py).
pytestmark = pytest.mark.backends("sqlite")


@pytest.fixture
async def agent_desk(desk: Desk, tenants: Tenants) -> Desk:
    agent = await tenants.member(desk.tenant.id, Role.AGENT)
    await signed_in(desk.http, desk.tenant, agent.id)
    return desk


@pytest.fixture
async def settle(container: Container) -> AsyncIterator[Settle]:
    indexing._lags.clear()
    async with delivering_to(container, SearchIndexer(container.database).group()) as settle:
        yield settle
    indexing._lags.clear()


async def test_the_header_s_box_finds_cases_and_shows_where_they_matched(
    agent_desk: Desk, settle: Settle
) -> None:
    desk = agent_desk
    fire = await desk.new_case(title="Printer trouble", description="我的打印机着火了 <script>")
    await desk.new_case(title="Refund please")
    await settle()
    home = await desk.http.get("/app/cases?view=mine")
    assert 'role="search"' in home.text
    assert 'name="q"' in home.text
    found = await desk.http.get("/app/cases", params={"view": "recent", "q": "打印机"})
    assert found.status_code == 200
    assert f'href="/app/cases/{fire["number"]}"' in found.text
    assert "Refund please" not in found.text
    assert "我的<mark>打印机</mark>着火了 &lt;script&gt;" in found.text
    assert "<script>" not in found.text.split("<main")[1].split("</main>")[0].replace(
        '<script src="', ""
    )
    assert 'value="打印机"' in found.text, "the box keeps the query"
    assert "Search results" in found.text
    assert "a few seconds behind" not in found.text
    nothing = await desk.http.get("/app/cases", params={"view": "recent", "q": "zyzzyva"})
    assert "No case matches this search." in nothing.text


async def test_a_query_that_cannot_be_read_is_shown_as_a_422_on_the_page(
    agent_desk: Desk,
) -> None:
    refused = await agent_desk.http.get("/app/cases", params={"view": "open", "q": 'stat:open "x'})
    assert refused.status_code == 422
    assert "no field &#39;stat&#39;" in refused.text


async def test_the_list_says_when_results_may_be_behind(
    agent_desk: Desk, monkeypatch: pytest.MonkeyPatch
) -> None:
    desk = agent_desk
    await desk.new_case(title="Not indexed yet")  # no indexer runs in this test
    indexing._lags.clear()
    monkeypatch.setattr(indexing, "BEHIND_SECONDS", 0.0)
    page = await desk.http.get("/app/cases", params={"view": "recent", "q": "indexed"})
    assert page.status_code == 200
    assert "Results may be a few seconds behind" in page.text
    indexing._lags.clear()


async def test_a_search_saved_as_a_view_keeps_its_query_and_counts_its_cases(
    agent_desk: Desk, settle: Settle
) -> None:
    desk = agent_desk
    await desk.new_case(title="Invoice missing 发票", tags=["billing"])
    await desk.new_case(title="Invoice late 发票")
    await desk.new_case(title="Password reset")
    await settle()
    listed = await desk.http.get("/app/cases", params={"view": "open", "q": "发票 -tag:billing"})
    assert "Invoice late" in listed.text
    assert "Invoice missing" not in listed.text
    saved = await desk.http.post(
        "/app/views",
        data={
            "csrf_token": hidden(listed.text, "csrf_token"),
            "name": "Invoices",
            "view": "open",
            "q": "发票 -tag:billing",
        },
    )
    assert saved.status_code == 303, saved.text
    view_id = saved.headers["location"].split("saved=")[1]
    page = await desk.http.get(saved.headers["location"])
    assert "Invoice late" in page.text
    assert "Invoice missing" not in page.text
    assert f'data-view="saved-{view_id}">1<' in page.text
    assert 'value="发票 -tag:billing"' in page.text
    bad = await desk.http.post(
        "/app/views",
        data={
            "csrf_token": hidden(listed.text, "csrf_token"),
            "name": "Broken",
            "view": "open",
            "q": '"unclosed',
        },
    )
    assert bad.status_code == 422
    assert "not closed" in bad.text
