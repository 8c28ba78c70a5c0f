"""casedesk under granian instead of uvicorn, for ``bench.servers`` to compare.

    python -m bench.granian_server --port 8000 --workers 2

It runs what ``casedesk serve`` runs before it starts uvicorn (the schema check, a metrics
folder shared by the processes) and then granian's ASGI server with the same app factory and
uvloop. It is not a way to serve casedesk: granian's own parser answers a request it refuses
with its own 400, not casedesk's problem document.
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile

import typer

from casedesk.bootstrap import ensure_migrated
from casedesk.cli import run


def main(
    port: int = typer.Option(8000),
    workers: int = typer.Option(1),
    host: str = typer.Option("127.0.0.1"),
) -> None:
    run(ensure_migrated)
    os.environ.setdefault("PROMETHEUS_MULTIPROC_DIR", tempfile.mkdtemp(prefix="casedesk-metrics-"))
    granian = shutil.which("granian", path=os.path.dirname(sys.executable))
    if granian is None:
        raise SystemExit("granian is not installed: pip install -e '.[bench]'")
    os.execv(
        granian,
        [
            granian,
            "--interface",
            "asgi",
            "--factory",
            "--host",
            host,
            "--port",
            str(port),
            "--workers",
            str(workers),
            "--loop",
            "uvloop",
            "--no-ws",
            "--log-level",
            "warning",
            "casedesk.app:create_app",
        ],
    )


if __name__ == "__main__":
    typer.run(main)
