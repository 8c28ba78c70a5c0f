"""django-helpdesk, the peer of the case API benchmark, driven through its shared harness.

``../shared/peers/django-helpdesk`` sets it up (``run.sh``: a venv in /tmp/dh-venv,
django-helpdesk 2.6.1 under gunicorn with 2 sync workers on 127.0.0.1:8101, on SQLite or on
its own ``dh_peer`` PostgreSQL database) and drives it (``bench.lua``). This module starts it
with ``run.sh``, runs ``bench.lua`` with the wrk settings the case API gets, and seeds its
tickets the way its ``bench.sh`` does: the ORM, in bulk, a ticket and its "Ticket Opened"
follow-up each, the statuses cycling Open, Reopened, Resolved and Closed.

Every ticket GET of django-helpdesk, detail or list, costs time in proportion to the tickets
it can reach (``TicketViewSet.get_queryset`` runs a query per ticket), so its detail and
list figures hold only at the ticket count they are printed with.
"""

from __future__ import annotations

import os
import re
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import httpx

from bench.cases import Result

ROOT = Path(__file__).resolve().parents[1]
HARNESS = Path(os.environ.get("BENCH_PEER_HARNESS", ROOT.parent / "shared/peers/django-helpdesk"))
URL = "http://127.0.0.1:8101"
VENV = Path(os.environ.get("PEER_VENV", "/tmp/dh-venv"))
NAME = "django-helpdesk 2.6.1, gunicorn 2 sync workers"
LIST_QUERY = "status=3"  # Resolved: a quarter of the seeded tickets, 25 a page
SEED = """
from django.db import transaction
from django.utils import timezone
from helpdesk.models import Ticket, FollowUp, Queue
q = Queue.objects.get(id={queue})
need = {target} - Ticket.objects.count()
now = timezone.now()
with transaction.atomic():
    for start in range(0, max(need, 0), 1000):
        n = min(1000, need - start)
        ts = [Ticket(title=f'seeded ticket {{start+i}}', queue=q, submitter_email='seed@example.com',
                     description=f'Seeded ticket {{start+i}}: cannot log in to VPN',
                     priority=1 + (start+i) % 5, status=(1, 2, 3, 4)[(start+i) % 4], created=now)
              for i in range(n)]
        ts = Ticket.objects.bulk_create(ts)
        FollowUp.objects.bulk_create([FollowUp(ticket=t, title='Ticket Opened', comment=t.description,
                                               public=True, date=now) for t in ts])
"""
RANGE = (
    "from django.db.models import Count, Min, Max; from helpdesk.models import Ticket; "
    "a = Ticket.objects.aggregate(Min('id'), Max('id'), Count('id')); "
    "print('RANGE', a['id__min'], a['id__max'], a['id__count'])"
)


class PeerUnavailable(RuntimeError):
    """The harness is not there, or the peer did not start."""


@dataclass
class Peer:
    database: str  # "postgres" or "sqlite", as the harness names them
    home: Path
    token: str
    queue: str

    def _env(self) -> dict[str, str]:
        return {**os.environ, "PEER_DB": self.database, "PEER_HOME": str(self.home)}

    def _shell(self, code: str) -> str:
        return subprocess.run(
            [str(VENV / "bin/python"), "manage.py", "shell", "-v", "0", "-c", code],
            cwd=self.home,
            env=self._env(),
            capture_output=True,
            text=True,
            check=True,
        ).stdout

    def tickets(self) -> tuple[int, int, int]:
        """The lowest and highest ticket id, and the number of tickets."""
        match = re.search(r"RANGE (\d+) (\d+) (\d+)", self._shell(RANGE))
        if match is None:
            raise PeerUnavailable("the peer's database has no tickets")
        low, high, count = match.groups()
        return int(low), int(high), int(count)

    def seed(self, target: int) -> int:
        """Top the tickets up to ``target`` as the harness does; the number there then."""
        self._shell(SEED.format(queue=self.queue, target=target))
        return self.tickets()[2]

    def wrk(self, mode: str, concurrency: int, seconds: int, timeout: int) -> Result:
        """``bench.lua`` in ``mode`` (create, detail or list) with the case API's wrk settings,
        then the wait until gunicorn has served what wrk left in its backlog."""
        low, high, _ = self.tickets() if mode != "create" else (1, 1, 0)
        command = [
            "wrk",
            "-t2",
            f"-c{concurrency}",
            f"-d{seconds}s",
            "--timeout",
            f"{timeout}s",
            "-s",
            str(HARNESS / "bench.lua"),
            URL,
            "--",
            mode,
            self.token,
            self.queue,
            str(high),
            LIST_QUERY,
            mode,
            "",
            str(low),
        ]
        output = subprocess.run(command, capture_output=True, text=True, check=True).stdout
        match = re.search(rf"^{mode} (\S+) (\S+) (\S+) (\d+)$", output, re.MULTILINE)
        if match is None:
            raise RuntimeError(f"bench.lua printed no result:\n{output}")
        drain()
        rps, p50, p99, errors = match.groups()
        return Result(float(rps), float(p50), float(p99), int(errors))

    def stop(self) -> None:
        subprocess.run(
            ["bash", str(HARNESS / "run.sh"), "stop"], env=self._env(), capture_output=True
        )


def drain(limit: float = 600) -> None:
    """Wait until ``/healthz`` answers fast: the requests queued when wrk stopped are served
    (a sync gunicorn worker serves its backlog after the client left)."""
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        start = time.monotonic()
        try:
            httpx.get(f"{URL}/healthz", timeout=limit).raise_for_status()
        except httpx.HTTPError:
            time.sleep(1)
            continue
        if time.monotonic() - start < 0.3:
            return


def start(database: str, home: Path) -> Peer:
    """A fresh peer (``run.sh up``: an empty database, admin, token and queue) on
    ``database`` ("postgres" or "sqlite"), warmed up as ``bench.sh`` warms it."""
    if not (HARNESS / "run.sh").exists():
        raise PeerUnavailable(f"no django-helpdesk harness at {HARNESS}")
    home.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "PEER_DB": database, "PEER_HOME": str(home)}
    setup = subprocess.run(
        ["bash", str(HARNESS / "run.sh"), "up"], env=env, capture_output=True, text=True
    )
    if setup.returncode != 0:
        raise PeerUnavailable(f"run.sh up failed:\n{setup.stderr[-3000:]}")
    peer = Peer(
        database,
        home,
        (home / "token.txt").read_text().strip(),
        (home / "queue_id.txt").read_text().strip(),
    )
    headers = {"Authorization": f"Token {peer.token}"}
    for n in range(4):  # load the app in both gunicorn workers
        httpx.post(
            f"{URL}/api/tickets/",
            headers=headers,
            json={
                "queue": int(peer.queue),
                "title": f"warm-up {n}",
                "description": "warm-up",
                "priority": 3,
            },
            timeout=60,
        ).raise_for_status()
        httpx.get(f"{URL}/api/tickets/1/", headers=headers, timeout=60).raise_for_status()
    return peer
