"""Waiting for a server process started by a test to answer on its port — its own port.

A test picks a free port and hands it to the process; between the two, another server of
the suite may take that port. That one would answer ``/healthz`` (or refuse it) while this
process ends with "address already in use", and the test would talk to a stranger. So a
server counts as up only when the socket listening on the port is its own (or one of its
children's), as the kernel tells in ``/proc``.
"""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path
from typing import IO

import httpx
import pytest

PROC = Path("/proc")


def log_of(output: IO[str]) -> str:
    output.seek(0)
    return output.read()


def _listening_inodes(port: int) -> set[str]:
    inodes = set()
    for table in ("tcp", "tcp6"):
        path = PROC / "net" / table
        if not path.exists():
            continue
        for line in path.read_text().splitlines()[1:]:
            fields = line.split()
            local, state, inode = fields[1], fields[3], fields[9]
            if state == "0A" and int(local.rsplit(":", 1)[1], 16) == port:
                inodes.add(inode)
    return inodes


def _family(pid: int) -> list[int]:
    """The process and its descendants."""
    found, queue = [], [pid]
    while queue:
        current = queue.pop()
        found.append(current)
        for task in (PROC / str(current) / "task").glob("*/children"):
            try:
                queue.extend(int(child) for child in task.read_text().split())
            except OSError:
                continue
    return found


def listens_on(pid: int, port: int) -> bool:
    """Whether ``pid`` (or a child of it) holds the socket listening on ``port``; True where
    the system has no ``/proc`` to tell."""
    if not (PROC / "net" / "tcp").exists():
        return True
    sockets = {f"socket:[{inode}]" for inode in _listening_inodes(port)}
    if not sockets:
        return False
    for member in _family(pid):
        try:
            fds = list((PROC / str(member) / "fd").iterdir())
        except OSError:
            continue
        for fd in fds:
            try:
                if os.readlink(fd) in sockets:
                    return True
            except OSError:
                continue
    return False


def wait_until_serving(
    process: subprocess.Popen[str], base: str, output: IO[str], *, seconds: float = 180
) -> None:
    """Until ``/healthz`` at ``base`` answers from this process; fails the test if it exits
    first or takes longer."""
    port = int(base.rsplit(":", 1)[1])
    deadline = time.monotonic() + seconds
    while True:
        if process.poll() is not None:
            pytest.fail(f"{process.args} exited early:\n{log_of(output)}")
        if listens_on(process.pid, port):
            try:
                if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                    return
            except httpx.TransportError:
                pass
        if time.monotonic() > deadline:
            pytest.fail(
                f"{process.args} did not serve {base} within {seconds:g} s:\n{log_of(output)}"
            )
        time.sleep(0.1)
