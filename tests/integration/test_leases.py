"""A lease is held by one process at a time, on every database, and dies with its holder."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager

from tests.support.backends import ScratchDatabase

HOLDER = """
import asyncio, sys
from casedesk.store.database import Database
from casedesk.store.leases import Lease

async def main() -> None:
    database = Database(sys.argv[1])
    lease = Lease(database, sys.argv[2])
    print("held" if await lease.try_acquire() else "refused", flush=True)
    sys.stdin.readline()  # keep it (or not) until told to go
    await lease.release()
    await database.dispose()

asyncio.run(main())
"""


@contextmanager
def _process(url: str, name: str) -> Iterator[tuple[subprocess.Popen[str], str]]:
    """A process that tries to take the lease and says whether it got it."""
    process = subprocess.Popen(
        [sys.executable, "-c", HOLDER, url, name],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        yield process, process.stdout.readline().strip()
    finally:
        if process.poll() is None:
            assert process.stdin is not None
            process.stdin.close()
        process.wait(timeout=30)


def test_one_process_at_a_time_holds_a_lease_and_it_dies_with_the_process(
    backend_url: str,
) -> None:
    name = f"test.lease.{os.getpid()}"
    with _process(backend_url, name) as (first, said):
        assert said == "held"
        with _process(backend_url, name) as (_, said):
            assert said == "refused"
        os.kill(first.pid, signal.SIGKILL)  # no release: the lock goes with the process
        first.wait(timeout=10)
        with _process(backend_url, name) as (third, said):
            assert said == "held"
            with _process(backend_url, name) as (_, said):
                assert said == "refused"
            assert third.stdin is not None
            third.stdin.close()  # let go of it properly this time
            third.wait(timeout=30)
        with _process(backend_url, name) as (_, said):
            assert said == "held"


def test_two_databases_on_one_server_each_hold_their_own_lease_of_a_name(
    backend_url: str, empty_database: ScratchDatabase
) -> None:
    """Two deployments on one database server (MariaDB's lock names are the server's): each
    has its own relay, its own mailbox watcher; in one database the lease is still one."""
    name = f"test.lease.{os.getpid()}.two-databases"
    with _process(backend_url, name) as (_, said):
        assert said == "held"
        with _process(empty_database.url, name) as (_, said_there):
            assert said_there == "held"
            with _process(empty_database.url, name) as (_, said_again):
                assert said_again == "refused"
