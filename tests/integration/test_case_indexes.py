"""Every filter of the case list has an index that starts with the tenant and its column."""

from __future__ import annotations

from dataclasses import fields

from sqlalchemy import inspect

from casedesk.store.cases import CaseFilter
from casedesk.store.database import nullpool_engine

# The CaseFilter fields and the column each one filters on.
FILTERED_COLUMNS = {
    "state": "state",
    "closed": "closed",
    "queue_id": "queue_id",
    "assignee_id": "assignee_id",
    "template_id": "template_id",
    "priority": "priority",
    "customer_id": "customer_id",
    "created_after": "created_at",
    "created_before": "created_at",
    "unassigned": "assignee_id",
}


async def test_each_case_filter_has_a_tenant_index_on_its_column(backend_url: str) -> None:
    assert {field.name for field in fields(CaseFilter)} == set(FILTERED_COLUMNS)
    engine = nullpool_engine(backend_url)
    try:
        async with engine.connect() as connection:
            indexes = await connection.run_sync(lambda sync: inspect(sync).get_indexes("cases"))
    finally:
        await engine.dispose()
    leading = {tuple(index["column_names"][:2]) for index in indexes}
    missing = {
        column for column in FILTERED_COLUMNS.values() if ("tenant_id", column) not in leading
    }
    assert missing == set()
