"""``casedesk serve`` with every SQL statement its processes send counted, for the profile.

    python -m bench.statements --port 8000 --workers 2      # same options as casedesk serve

Each server process counts the statements its engines execute (SQLAlchemy's
``before_cursor_execute`` on every engine), by their first words and table, and the
transactions it begins, and writes the counts to ``$BENCH_STATEMENTS_DIR/<pid>.json`` a few
times a second. :func:`read` adds up the files; the difference of two readings over a known
number of requests is the statements per request. uvicorn starts its server processes with
``spawn``, which imports this module again in each of them as the main module, so every
process installs the listener before it imports the app.
"""

from __future__ import annotations

import json
import os
import re
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import Engine

DIRECTORY = "BENCH_STATEMENTS_DIR"
TRANSACTIONS = "(transactions begun)"
_counts: Counter[str] = Counter()
_HEAD = re.compile(
    r"^\s*(?:(SELECT)\b.*?\bFROM\s+([\w.\"`]+)|(INSERT)\s+INTO\s+([\w.\"`]+)|"
    r"(UPDATE)\s+([\w.\"`]+)|(DELETE)\s+FROM\s+([\w.\"`]+)|(\w+))",
    re.IGNORECASE | re.DOTALL,
)


def head(statement: str) -> str:
    """``SELECT cases``, ``INSERT outbox_events``, ``BEGIN``: what a statement does, to what."""
    match = _HEAD.match(statement)
    if match is None:
        return statement[:30]
    words = [word for word in match.groups() if word]
    return " ".join([words[0].upper(), *(word.strip('"`') for word in words[1:])])


def _count_statement(
    conn: Any, cursor: Any, statement: str, parameters: Any, context: Any, executemany: bool
) -> None:
    _counts[head(statement)] += 1


def _count_transaction(conn: Any) -> None:
    _counts[TRANSACTIONS] += 1


def _write_forever(directory: Path) -> None:
    path = directory / f"{os.getpid()}.json"
    scratch = path.with_suffix(".tmp")
    written: dict[str, int] = {}
    while True:
        counts = dict(_counts.copy())
        if counts != written:
            scratch.write_text(json.dumps(counts))
            scratch.replace(path)  # a reader sees the old counts or the new, never half
            written = counts
        time.sleep(0.25)


def install(directory: Path) -> None:
    """Count in this process from now on, and keep ``directory/<pid>.json`` up to date."""
    event.listen(Engine, "before_cursor_execute", _count_statement)
    event.listen(Engine, "begin", _count_transaction)
    threading.Thread(target=_write_forever, args=(directory,), daemon=True).start()


def read(directory: Path) -> Counter[str]:
    """The counts of every process that wrote into ``directory``, added up."""
    total: Counter[str] = Counter()
    for path in directory.glob("*.json"):
        try:
            total.update(json.loads(path.read_text()))
        except (OSError, ValueError):  # being rewritten: the next reading has it
            continue
    return total


if os.environ.get(DIRECTORY):
    install(Path(os.environ[DIRECTORY]))

if __name__ == "__main__":
    import sys

    from casedesk.cli import app

    sys.argv[0] = "casedesk"
    app(["serve", *sys.argv[1:]])
