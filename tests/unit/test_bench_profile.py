"""The profile's arithmetic: CPU by package from py-spy's collapsed stacks, statement heads."""

from __future__ import annotations

from bench.profile import breakdown, package
from bench.statements import head

SITE = "/srv/.venv/lib/python3.11/site-packages"
LIB = "/usr/lib/python3.11"


def test_frames_are_named_by_their_package() -> None:
    assert package(f"execute ({SITE}/sqlalchemy/engine/base.py:1410)") == "sqlalchemy"
    assert package(f"__call__ ({SITE}/starlette/routing.py:715)") == "starlette+fastapi"
    assert package(f"validate ({SITE}/pydantic_core/core.py:3)") == "pydantic"
    assert package("detail (/work/casedesk/src/casedesk/api/routers/cases.py:88)") == (
        "casedesk.api"
    )
    assert package(f"run_forever ({LIB}/asyncio/base_events.py:607)") == "asyncio"
    assert package(f"dumps ({LIB}/json/__init__.py:231)") == "stdlib"
    assert package('process 12:"python -m casedesk serve"') == "other"


def test_the_breakdown_counts_the_event_loops_innermost_package_and_every_one_on_the_stack() -> (
    None
):
    serve = f'process 1:"python -m casedesk serve";run ({SITE}/uvicorn/server.py:67)'
    writer = f"_bootstrap ({LIB}/threading.py:1002);replace ({LIB}/pathlib.py:1188)"
    route = "detail (/app/src/casedesk/api/routers/cases.py:88)"
    query = f"execute ({SITE}/sqlalchemy/engine/base.py:1410)"
    adapt = f"fetch ({SITE}/asyncpg/prepared_stmt.py:177)"
    collapsed = "\n".join(
        [
            f"{serve};{route};{query};{adapt} 6",
            f"{serve};{route};{query} 3",
            f"{serve};{route} 1",
            f"{serve} 2",
            f"{writer} 40",
            "not a stack line",
        ]
    )
    total, own, anywhere = breakdown(collapsed)
    assert total == 12
    assert own == {"asyncpg": 6, "sqlalchemy": 3, "casedesk.api": 1, "uvicorn+uvloop+httptools": 2}
    assert anywhere["casedesk.api"] == 10
    assert anywhere["sqlalchemy"] == 9
    assert anywhere["asyncpg"] == 6


def test_statements_are_counted_by_what_they_do_to_which_table() -> None:
    assert head('SELECT cases.id, cases.title \nFROM cases JOIN "tasks" ON 1') == "SELECT cases"
    assert head("INSERT INTO outbox_events (id) VALUES ($1)") == "INSERT outbox_events"
    assert head("UPDATE case_counters SET last_number=$1") == "UPDATE case_counters"
    assert head("DELETE FROM `sessions` WHERE id = %s") == "DELETE sessions"
    assert head("BEGIN IMMEDIATE") == "BEGIN"
    assert head("SELECT 1") == "SELECT"
