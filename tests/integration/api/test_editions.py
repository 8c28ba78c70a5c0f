"""The ecommerce edition changes its tenants' cases and leaves standard tenants alone."""

from __future__ import annotations

import httpx

from tests.conftest import Tenants
from tests.support.cases import make_desk


async def test_ecommerce_requires_an_order_and_shows_its_summary(
    client: httpx.AsyncClient, tenants: Tenants
) -> None:
    shop = await make_desk(client, await tenants.create(edition="ecommerce"), tenants.container)
    refused = await shop.create_case(form={"product": "P-1"})
    assert refused.status_code == 422
    assert refused.json()["errors"][0]["field"] == "form.order_id"
    blank = await shop.create_case(form={"product": "P-1", "order_id": "  "})
    assert blank.status_code == 422
    case = await shop.new_case(
        form={"product": "P-1", "order_id": "SO-1001", "order_items": [1, 2], "order_total": 42}
    )
    assert case["extra"] == {
        "order_summary": {"order_id": "SO-1001", "items": 2, "total": 42, "currency": None}
    }
    read = await client.get(f"/api/v1/cases/{case['id']}", headers=shop.headers)
    assert read.json()["extra"]["order_summary"]["order_id"] == "SO-1001"


async def test_a_standard_tenant_is_untouched_by_the_ecommerce_edition(
    client: httpx.AsyncClient, tenants: Tenants
) -> None:
    standard = await make_desk(client, await tenants.create(edition="standard"), tenants.container)
    case = await standard.new_case(form={"product": "P-1"})
    assert case["extra"] == {}
    with_order = await standard.new_case(form={"product": "P-1", "order_id": "SO-1"})
    assert with_order["extra"] == {}
