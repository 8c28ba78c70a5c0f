"""Mail benchmark: mails per second from an IMAP mailbox to cases, with a 1 MiB attachment and
without, beside the generic webhook → case path as the baseline, in the same run.

On PostgreSQL, against ``casedesk serve`` run as in production (two server processes, the
background work in one ``casedesk worker``), with a private dovecot (Debian's
``dovecot-imapd``, as the tests start it) holding the mail:

- **webhook → case** (the baseline): the generic webhook workflow, ``--messages`` pushes at a
  fixed concurrency, timed from the first push to the last case (``bench.channels``' path);
- **IMAP → case**: ``--messages`` mails put in the mailbox's folder while the mailbox is
  disabled; enabling it makes its poll due, and the worker fetches, parses and receives them:
  timed from the enabling to the last case;
- **IMAP → case, 1 MiB attachment**: the same with a 1 MiB PDF attached to each mail.

Each scenario runs ``--repeat`` times; the median is reported with its ratio to the baseline.

    .venv/bin/python -m bench.mail
    .venv/bin/python -m bench.mail --messages 100 --repeat 1
"""

from __future__ import annotations

import asyncio
import email.utils
import os
import statistics
import tempfile
import time
import uuid
from email.message import EmailMessage
from pathlib import Path

import httpx
import orjson
import typer
from rich.console import Console
from rich.progress import Progress
from rich.table import Table
from tests.support.dovecot import Dovecot, running_dovecot

from bench.cases import _configure, _free_port, _fresh_database, _seed_identity, _serve
from bench.channels import Counter, Push, _push_all, _worker
from bench.platform import HOOK_TOKEN, _hook, _stop
from casedesk.store.models import Case

console = Console(width=150)
os.environ.setdefault("CASEDESK_SECRET_KEY", "casedesk-benchmark-secret-key")
ATTACHMENT = b"%PDF-1.7\n" + os.urandom(1024 * 1024 - 9)


def _mail(user: str, n: int, run: int, attached: bool) -> bytes:
    message = EmailMessage()
    message["From"] = f"Customer {n} <customer{run}.{n}@example.net>"
    message["To"] = user
    message["Subject"] = f"Order {run}-{n} did not arrive"
    message["Date"] = email.utils.formatdate()
    message["Message-ID"] = f"<{uuid.uuid4().hex}@example.net>"
    message.set_content(f"Hello, my order {n} did not arrive.\n\nRegards")
    if attached:
        message.add_attachment(
            ATTACHMENT, maintype="application", subtype="pdf", filename="invoice.pdf"
        )
    return message.as_bytes()


def _mailbox(http: httpx.Client, server: Dovecot, user: str) -> str:
    made = http.post(
        "/api/v1/mailboxes",
        json={
            "name": "Support",
            "address": user,
            "host": server.host,
            "port": server.port,
            "security": "starttls",
            "tls_ca": server.ca_file.read_text(),
            "username": user,
            "password": server.password,
            "template": "question",
            "queue": "support",
            "enabled": False,
            "after_fetch": "seen",
        },
    )
    made.raise_for_status()
    return str(made.json()["id"])


def _enable(http: httpx.Client, mailbox: str, enabled: bool) -> None:
    """Enabling a mailbox makes its poll due now; disabling calls the poll off."""
    http.patch(f"/api/v1/mailboxes/{mailbox}", json={"enabled": enabled}).raise_for_status()


async def _imap_run(
    http: httpx.Client,
    mailbox: str,
    server: Dovecot,
    user: str,
    count: int,
    run: int,
    attached: bool,
    counter: Counter,
) -> float:
    """Mails per second from enabling the mailbox to the last case."""
    for n in range(count):
        server.append(_mail(user, n, run, attached), user=user)
    before = await counter.count(Case)
    began = time.monotonic()
    await asyncio.to_thread(_enable, http, mailbox, True)
    ended = await counter.until(Case, before + count)
    await asyncio.to_thread(_enable, http, mailbox, False)
    return count / (ended - began)


async def _webhook_run(hook: str, count: int, run: int, counter: Counter) -> float:
    auth = {"Content-Type": "application/json", "Authorization": f"Bearer {HOOK_TOKEN}"}
    pushes = [
        Push(orjson.dumps({"id": f"m{run}-{n}", "name": f"Order {n}"}), auth) for n in range(count)
    ]
    before = await counter.count(Case)
    began = time.monotonic()
    refused = await _push_all(hook, pushes, 16)
    ended = await counter.until(Case, before + count - refused)
    return (count - refused) / (ended - began)


def main(
    messages: int = typer.Option(200, help="mails (and pushes) per scenario run"),
    repeat: int = typer.Option(3, help="runs of each scenario; the median is reported"),
) -> None:
    workdir = Path(tempfile.mkdtemp(prefix="casedesk-bench-mail-"))
    log = workdir / "casedesk.log"
    url = asyncio.run(_fresh_database("postgresql", workdir))
    _tenant, key, _agents = asyncio.run(_seed_identity(url))
    port = _free_port()
    server = _serve(url, port, 2, log)
    base = f"http://127.0.0.1:{port}"
    headers = {"Authorization": f"Bearer {key}"}
    results: dict[str, list[float]] = {}
    counter = Counter(url)
    try:
        _configure(base, headers)
        hook = _hook(base, key)
        with (
            running_dovecot() as imap,
            httpx.Client(base_url=base, headers=headers, timeout=60) as http,
        ):
            user = imap.fresh_user()
            mailbox = _mailbox(http, imap, user)
            worker = _worker(url, log, base)
            try:
                time.sleep(3)  # the worker starts
                with Progress(console=console) as progress:
                    task = progress.add_task("measuring", total=3 * repeat)
                    for run in range(repeat):
                        rate = asyncio.run(_webhook_run(hook, messages, run, counter))
                        results.setdefault("webhook → case (baseline)", []).append(rate)
                        progress.advance(task)
                        for attached in (False, True):
                            name = "IMAP → case" + (", 1 MiB attachment" if attached else "")
                            rate = asyncio.run(
                                _imap_run(
                                    http, mailbox, imap, user, messages, run, attached, counter
                                )
                            )
                            results.setdefault(name, []).append(rate)
                            progress.advance(task)
            finally:
                _stop(worker)
        asyncio.run(counter.engine.dispose())
    finally:
        _stop(server)
    _report(results, messages, repeat)


def _report(results: dict[str, list[float]], messages: int, repeat: int) -> None:
    table = Table(
        title=f"casedesk mail on PostgreSQL, 1 worker: {messages:,} mails a run, median of {repeat}"
    )
    for column in ("scenario", "mails/s", "vs baseline", "runs"):
        table.add_column(column)
    names = list(results)
    baseline = statistics.median(results[names[0]])
    for name in names:
        value = statistics.median(results[name])
        runs = ", ".join(f"{v:.0f}" for v in results[name])
        table.add_row(name, f"{value:,.1f}/s", f"{value / baseline:.2f}x", runs)
    console.print(table)


if __name__ == "__main__":
    typer.run(main)
