"""A case's comments: the detail shows the newest, ``GET …/comments`` pages them all."""

from __future__ import annotations

from typing import Any

import httpx

from casedesk.domain.cases.views import DETAIL_COMMENTS
from tests.conftest import Tenants
from tests.support.cases import Desk, make_desk


async def _commented(desk: Desk, count: int) -> str:
    case = await desk.new_case()
    url = f"/api/v1/cases/{case['id']}/comments"
    for n in range(count):
        added = await desk.http.post(
            url, json={"body": f"c{n}", "public": False}, headers=desk.headers
        )
        assert added.status_code == 201, added.text
    return str(case["id"])


async def _page(desk: Desk, case_id: str, **params: Any) -> dict[str, Any]:
    response = await desk.http.get(
        f"/api/v1/cases/{case_id}/comments", params=params, headers=desk.headers
    )
    assert response.status_code == 200, response.text
    page: dict[str, Any] = response.json()
    return page


async def test_the_detail_shows_the_newest_comments_and_where_the_older_ones_continue(
    desk: Desk,
) -> None:
    total = DETAIL_COMMENTS + 2
    case_id = await _commented(desk, total)
    detail = (await desk.http.get(f"/api/v1/cases/{case_id}", headers=desk.headers)).json()
    assert [c["body"] for c in detail["comments"]] == [f"c{n}" for n in range(2, total)]
    assert detail["comments_more"] is True
    older = await _page(desk, case_id, order="newest", cursor=detail["comments_next_cursor"])
    assert [c["body"] for c in older["items"]] == ["c1", "c0"]
    assert older["next_cursor"] is None


async def test_a_case_with_few_comments_shows_them_all_and_no_more(desk: Desk) -> None:
    case_id = await _commented(desk, 2)
    detail = (await desk.http.get(f"/api/v1/cases/{case_id}", headers=desk.headers)).json()
    assert [c["body"] for c in detail["comments"]] == ["c0", "c1"]
    assert (detail["comments_more"], detail["comments_next_cursor"]) == (False, None)


async def test_comments_page_oldest_first_or_newest_first_with_a_cursor(desk: Desk) -> None:
    case_id = await _commented(desk, 7)
    for order, expected in (
        ("oldest", [f"c{n}" for n in range(7)]),
        ("newest", [f"c{n}" for n in reversed(range(7))]),
    ):
        seen: list[str] = []
        sizes: list[int] = []
        cursor = None
        while True:
            params: dict[str, Any] = {"order": order, "limit": 3}
            if cursor is not None:
                params["cursor"] = cursor
            page = await _page(desk, case_id, **params)
            seen += [c["body"] for c in page["items"]]
            sizes.append(len(page["items"]))
            cursor = page["next_cursor"]
            if cursor is None:
                break
        assert seen == expected
        assert sizes == [3, 3, 1]
    everything = await _page(desk, case_id)
    assert [c["body"] for c in everything["items"]] == [f"c{n}" for n in range(7)]


async def test_bad_comment_paging_is_422_and_another_tenants_case_is_404(
    desk: Desk, client: httpx.AsyncClient, tenants: Tenants
) -> None:
    case_id = await _commented(desk, 1)
    url = f"/api/v1/cases/{case_id}/comments"
    for params, field in (
        ({"cursor": "not-a-cursor"}, "cursor"),
        ({"order": "sideways"}, "order"),
        ({"limit": 0}, "limit"),
        ({"limit": 201}, "limit"),
    ):
        response = await desk.http.get(url, params=params, headers=desk.headers)
        assert response.status_code == 422, (params, response.text)
        assert field in response.text
    other = await make_desk(client, await tenants.create(), tenants.container)
    hidden = await other.http.get(url, headers=other.headers)
    assert hidden.status_code == 404
    assert hidden.headers["content-type"].startswith("application/problem+json")
    unknown = await desk.http.get(
        "/api/v1/cases/00000000-0000-7000-8000-000000000000/comments", headers=desk.headers
    )
    assert unknown.status_code == 404
