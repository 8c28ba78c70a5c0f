"""Every filter of the case list has an index that starts with the tenant and its column
(in the table the filter reads: the cases, or their SLA clocks)."""

from __future__ import annotations

from dataclasses import fields

from sqlalchemy import inspect

from casedesk.store.cases import CaseFilter
from casedesk.store.database import nullpool_engine

# The CaseFilter fields and the column each one filters on, in ``cases`` unless named.
FILTERED_COLUMNS = {
    "states": "state",
    "queue_ids": "queue_id",
    "sla_due_before": "case_slas.status",
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
    leading: set[tuple[str, str, str]] = set()
    try:
        async with engine.connect() as connection:
            for table in ("cases", "case_slas"):
                indexes = await connection.run_sync(
                    lambda sync, table=table: inspect(sync).get_indexes(table)
                )
                leading |= {(table, *index["column_names"][:2]) for index in indexes}
    finally:
        await engine.dispose()
    wanted = {
        (column.split(".")[0], "tenant_id", column.split(".")[-1])
        if "." in column
        else ("cases", "tenant_id", column)
        for column in FILTERED_COLUMNS.values()
    }
    assert wanted - leading == set()
