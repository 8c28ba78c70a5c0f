"""Channel benchmark: messages per second from a provider's push to a case opened, and to a
comment added, through the built-in channel connectors, beside the generic webhook → case
path as the baseline, on one worker and on two.

On PostgreSQL, against ``casedesk serve`` run as in production (two server processes, the
background work in ``casedesk worker`` processes). A local provider in its own process
answers the connectors' Web API calls as the provider does (Slack's ``users.info`` and
``chat.postMessage``; Graph's ``GET /me/messages/{id}``, ``/users/{id}`` and ``$batch``);
every message is pushed to the workflow's ``/hooks/{token}`` URL exactly as the provider
pushes it (Slack signed with the signing secret; Graph a change notification with its
``clientState``):

- **webhook → case** (the baseline): the generic webhook trigger and a ``create_case`` step,
  the path ``bench.platform`` measures; no enrichment, no threading;
- **Slack → case**: each message a new root from a new person: the event, the author's
  ``users.info`` (a new customer each time), threading (no case has the thread), a case;
- **Slack → comment**: replies in the threads of cases opened before: the thread found, the
  author known, one comment each;
- **Graph → case / → comment** (Outlook mail): a notification carries only the message's id;
  the enricher reads it (``GET /me/messages/{id}``, or ``$batch`` when several wait), then the
  same threading by ``conversationId``.

Each scenario sends ``--messages`` pushes at a fixed concurrency while the workers run, and
measures from the first push until the last case or comment is committed; it runs
``--repeat`` times, the median is reported, and the ratio to the baseline in the same run.

    .venv/bin/python -m bench.channels
    .venv/bin/python -m bench.channels --messages 400 --repeat 1
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import itertools
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import orjson
import typer
from rich.console import Console
from rich.progress import Progress
from rich.table import Table
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from bench.cases import _configure, _free_port, _fresh_database, _seed_identity, _serve
from bench.platform import HOOK_TOKEN, _hook, _stop, _wait_for
from casedesk.bootstrap import build
from casedesk.config import load_settings
from casedesk.integrations.oauth import Tokens
from casedesk.kit.clock import utcnow
from casedesk.store.database import nullpool_engine
from casedesk.store.models import Case, Comment, Connection, Execution, InboxDelivery

console = Console(width=150)
ROOT = Path(__file__).resolve().parents[1]
SIGNING_SECRET = "bench-signing-secret-0123456789abcdef"
CHANNEL = "C0BENCH01"
BOT_ID = "B0BENCH01"

# The provider: Slack's Web API and Graph's mail API, answering any id they are asked
# about with what the provider would answer for it (ids carry what the answer needs).
PROVIDER_APP = """
import orjson
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
import itertools, time

clock = itertools.count(1)


def _json(document, status=200):
    return Response(orjson.dumps(document), status_code=status, media_type="application/json")


def _user(user_id):
    n = user_id[3:]
    return {"id": user_id, "name": f"person{n}", "real_name": f"Person {n}", "is_bot": False,
            "profile": {"email": f"person{n}@example.com", "real_name": f"Person {n}",
                        "display_name": f"person{n}"}}


async def slack(request: Request):
    method = request.path_params["method"]
    form = dict(request.query_params)
    if request.method == "POST":
        body = await request.body()
        if request.headers.get("content-type", "").startswith("application/json"):
            form.update(orjson.loads(body or b"{}"))
        else:
            form.update(await request.form())
    if method == "users.info":
        return _json({"ok": True, "user": _user(str(form.get("user", "")))})
    if method == "chat.postMessage":
        ts = f"{int(time.time())}.{next(clock):06d}"
        return _json({"ok": True, "channel": form.get("channel"), "ts": ts,
                      "message": {"type": "message", "text": form.get("text"), "ts": ts}})
    if method == "auth.test":
        return _json({"ok": True, "user_id": "U0BENCHBOT", "bot_id": "B0BENCH01"})
    return _json({"ok": False, "error": "unknown_method"})


def _message(message_id):
    # m-{n}-{thread}: message n in conversation thread; n == thread opens it.
    _, n, thread = message_id.split("-")
    subject = f"Order {thread} did not arrive"
    return {
        "@odata.etag": 'W/"CQAAABYAAAA"',
        "id": message_id,
        "createdDateTime": "2026-12-01T10:00:00Z",
        "receivedDateTime": "2026-12-01T10:00:00Z",
        "sentDateTime": "2026-12-01T10:00:00Z",
        "internetMessageId": f"<{message_id}@mail.example.com>",
        "subject": subject if n == thread else f"RE: {subject}",
        "bodyPreview": f"Message {n}",
        "importance": "normal",
        "conversationId": f"conv-{thread}",
        "isRead": False,
        "isDraft": False,
        "body": {"contentType": "html", "content": f"<html><body><p>Message {n} about order {thread}</p></body></html>"},
        "uniqueBody": {"contentType": "html", "content": f"<p>Message {n}</p>"},
        "from": {"emailAddress": {"name": f"Person {thread}", "address": f"person{thread}@example.com"}},
        "sender": {"emailAddress": {"name": f"Person {thread}", "address": f"person{thread}@example.com"}},
        "toRecipients": [{"emailAddress": {"name": "Support", "address": "support@example.com"}}],
        "ccRecipients": [],
        "replyTo": [],
        "internetMessageHeaders": (
            [] if n == thread else
            [{"name": "In-Reply-To", "value": f"<m-{thread}-{thread}@mail.example.com>"},
             {"name": "References", "value": f"<m-{thread}-{thread}@mail.example.com>"}]
        ),
    }


async def graph_message(request: Request):
    return _json(_message(request.path_params["message_id"]))


async def graph_batch(request: Request):
    asked = orjson.loads(await request.body())["requests"]
    answers = []
    for one in asked:
        message_id = one["url"].split("?")[0].rstrip("/").split("/")[-1]
        answers.append({"id": one["id"], "status": 200,
                        "headers": {"Content-Type": "application/json"},
                        "body": _message(message_id)})
    return _json({"responses": answers})


async def graph_reply(request: Request):
    return Response(status_code=202)


subscriptions = {}


async def graph_subscribe(request: Request):
    # Graph's POST /subscriptions: the notification URL is validated first, as Graph does.
    import httpx, uuid
    asked = orjson.loads(await request.body())
    async with httpx.AsyncClient(timeout=10) as http:
        for url in {asked["notificationUrl"], asked.get("lifecycleNotificationUrl") or asked["notificationUrl"]}:
            token = uuid.uuid4().hex
            answer = await http.post(url, params={"validationToken": token})
            if answer.status_code != 200 or answer.text != token:
                return _json({"error": {"code": "InvalidRequest", "message": "validation failed"}}, 400)
    made = asked | {"id": str(uuid.uuid4()), "applicationId": "bench"}
    subscriptions[made["id"]] = made
    return _json(made, 201)


async def graph_renew(request: Request):
    made = subscriptions.get(request.path_params["subscription_id"])
    if made is None:
        return _json({"error": {"code": "ResourceNotFound", "message": "no subscription"}}, 404)
    made.update(orjson.loads(await request.body()))
    return _json(made)


async def graph_delta(request: Request):
    base = str(request.url).split("?")[0]
    return _json({"value": [], "@odata.deltaLink": base + "?$deltatoken=bench"})


async def bench_subscriptions(request: Request):
    return _json(list(subscriptions.values()))


app = Starlette(routes=[
    Route("/slack/{method}", slack, methods=["GET", "POST"]),
    Route("/graph/v1.0/me/messages/{message_id}", graph_message),
    Route("/graph/v1.0/me/messages/{message_id}/reply", graph_reply, methods=["POST"]),
    Route("/graph/v1.0/$batch", graph_batch, methods=["POST"]),
    Route("/graph/v1.0/subscriptions", graph_subscribe, methods=["POST"]),
    Route("/graph/v1.0/subscriptions/{subscription_id}", graph_renew, methods=["PATCH"]),
    Route("/graph/v1.0/me/mailFolders/inbox/messages/delta", graph_delta),
    Route("/graph/v1.0/me/mailFolders('inbox')/messages/delta", graph_delta),
    Route("/bench/subscriptions", bench_subscriptions),
])
"""


@dataclass(frozen=True, slots=True)
class Push:
    """One push, as the provider sends it."""

    body: bytes
    headers: dict[str, str]


@dataclass(slots=True)
class Scenario:
    name: str
    made: str  # "cases" or "comments"
    hook: str = ""
    prepare: Callable[[int], Awaitable[None]] | None = None
    pushes: Callable[[int, int], list[Push]] | None = None


class Counter:
    """Reads the store's counts through one engine, without the app's container."""

    def __init__(self, url: str) -> None:
        self.engine: AsyncEngine = nullpool_engine(load_settings(database_url=url).database_url)

    async def count(self, model: type[Any], *where: Any) -> int:
        async with self.engine.connect() as connection:
            statement = select(func.count()).select_from(model).where(*where)
            return int(await connection.scalar(statement) or 0)

    async def busy(self) -> bool:
        async with self.engine.connect() as connection:
            pending = await connection.scalar(
                select(func.count())
                .select_from(InboxDelivery)
                .where(InboxDelivery.status == "pending")
            )
            running = await connection.scalar(
                select(func.count())
                .select_from(Execution)
                .where(Execution.status.in_(("queued", "running")))
            )
        return bool(pending or running)

    async def until(self, model: type[Any], target: int, seconds: float = 900) -> float:
        """When ``model`` has ``target`` rows and nothing waits (monotonic seconds)."""
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            if await self.count(model) >= target and not await self.busy():
                return time.monotonic()
            await asyncio.sleep(0.05)
        raise RuntimeError(f"the workers did not finish in {seconds:.0f} s")


# --- the pushes -------------------------------------------------------------------------

_ids = itertools.count(1)
_clock = itertools.count(1)


def _slack_push(event: dict[str, Any]) -> Push:
    body = orjson.dumps(
        {
            "token": "bench",
            "team_id": "T0BENCH01",
            "api_app_id": "A0BENCH01",
            "event": event,
            "type": "event_callback",
            "event_id": f"Ev{next(_ids):012d}",
            "event_time": int(time.time()),
            "authorizations": [{"team_id": "T0BENCH01", "user_id": "U0BENCHBOT", "is_bot": True}],
        }
    )
    timestamp = str(int(time.time()))
    digest = hmac.new(
        SIGNING_SECRET.encode(), f"v0:{timestamp}:".encode() + body, hashlib.sha256
    ).hexdigest()
    headers = {
        "Content-Type": "application/json",
        "X-Slack-Request-Timestamp": timestamp,
        "X-Slack-Signature": f"v0={digest}",
    }
    return Push(body, headers)


def _slack_message(user: str, text: str, thread_ts: str | None = None) -> tuple[str, Push]:
    ts = f"{int(time.time())}.{next(_clock):06d}"
    event: dict[str, Any] = {
        "type": "message",
        "channel": CHANNEL,
        "channel_type": "channel",
        "user": user,
        "text": text,
        "ts": ts,
        "event_ts": ts,
        "team": "T0BENCH01",
    }
    if thread_ts is not None:
        event["thread_ts"] = thread_ts
    return ts, _slack_push(event)


def _graph_push(graph: tuple[str, str, str], message_ids: list[str]) -> Push:
    """A change notification of the subscription ``graph`` (hook, id, clientState)."""
    _, subscription_id, client_state = graph
    value = [
        {
            "subscriptionId": subscription_id,
            "subscriptionExpirationDateTime": "2026-12-04T10:00:00Z",
            "changeType": "created",
            "resource": f"Users/u-1/Messages/{message_id}",
            "resourceData": {
                "@odata.type": "#Microsoft.Graph.Message",
                "@odata.id": f"Users/u-1/Messages/{message_id}",
                "@odata.etag": 'W/"CQAAABYAAAA"',
                "id": message_id,
            },
            "clientState": client_state,
            "tenantId": "00000000-0000-0000-0000-000000000001",
        }
        for message_id in message_ids
    ]
    return Push(orjson.dumps({"value": value}), {"Content-Type": "application/json"})


async def _push_all(url: str, pushes: list[Push], concurrency: int) -> int:
    """Send every push; how many were refused."""
    queue = list(reversed(pushes))
    refused = 0
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(timeout=30, limits=limits) as http:

        async def sender() -> None:
            nonlocal refused
            while queue:
                push = queue.pop()
                answer = await http.post(url, content=push.body, headers=push.headers)
                refused += answer.status_code >= 300

        await asyncio.gather(*(sender() for _ in range(concurrency)))
    return refused


# --- setting up -------------------------------------------------------------------------


def _publish(http: httpx.Client, definition: dict[str, Any]) -> dict[str, Any]:
    http.post("/api/v1/workflows", json=definition).raise_for_status()
    published = http.post(f"/api/v1/workflows/{definition['code']}/publish")
    published.raise_for_status()
    subscription: dict[str, Any] = published.json()["subscription"]
    return subscription


def _connection(http: httpx.Client, body: dict[str, Any]) -> str:
    made = http.post("/api/v1/connections", json=body)
    made.raise_for_status()
    return str(made.json()["id"])


def _receive(code: str, connector: str, trigger: str, connection: str) -> dict[str, Any]:
    return {
        "code": code,
        "name": code,
        "trigger": {"connector": connector, "trigger": trigger, "connection_id": connection},
        "steps": [
            {
                "name": "thread",
                "kind": "receive_message",
                "template": "question",
                "queue": "support",
                "priority": "normal",
            }
        ],
    }


def _slack_hook(http: httpx.Client, provider: str) -> str:
    connection = _connection(
        http,
        {
            "name": "Slack",
            "connector": "slack",
            "settings": {"base_url": f"{provider}/slack", "channels": [CHANNEL], "bot_id": BOT_ID},
            "secrets": {"bot_token": "xoxb-bench", "signing_secret": SIGNING_SECRET},
        },
    )
    subscription = _publish(http, _receive("slack-in", "slack", "events", connection))
    return str(subscription["hook_url"])


async def _outlook_connection(url: str, provider: str) -> str:
    """An Outlook connection as if its OAuth2 grant had been made: tokens good for a day."""
    container = build(load_settings(database_url=url))
    try:
        async with container.unit_of_work() as uow:
            tenant = await uow.tenants.by_slug("bench")
        assert tenant is not None
        tokens = Tokens(
            access_token="bench-graph-token",
            refresh_token="bench-graph-refresh",
            scope="Mail.ReadWrite Mail.Send",
            expires_at=utcnow() + timedelta(days=1),
        )
        async with container.unit_of_work(tenant.id) as uow:
            await uow.begin_write()
            connection = uow.connections.add(
                Connection(
                    name="Outlook",
                    connector="outlook",
                    connector_version=1,
                    settings={"client_id": "bench-client", "base_url": f"{provider}/graph/v1.0"},
                    secrets_sealed=container.box.seal('{"client_secret": "bench-secret"}'),
                    token_sealed=container.box.seal(tokens.sealable()),
                    token_expires_at=tokens.expires_at,
                )
            )
            await uow.commit()
        return str(connection.id)
    finally:
        await container.close()


def _graph_hook(http: httpx.Client, url: str, provider: str) -> str:
    """The Outlook workflow's hook URL (its Graph subscription is made once a worker runs)."""
    connection = asyncio.run(_outlook_connection(url, provider))
    subscription = _publish(http, _receive("outlook-in", "outlook", "new_mail", connection))
    return str(subscription["hook_url"])


def _graph_subscription(provider: str, seconds: float = 120) -> tuple[str, str]:
    """The id Graph gave the subscription and its clientState, once a worker has made it."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        made = httpx.get(f"{provider}/bench/subscriptions").json()
        if made:
            return str(made[0]["id"]), str(made[0]["clientState"])
        time.sleep(0.5)
    raise RuntimeError("no worker made the Graph subscription; see the log")


def _worker(url: str, log: Path, public: str) -> subprocess.Popen[bytes]:
    """A ``casedesk worker`` allowed to call the local provider."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("CASEDESK_")}
    env.update(
        CASEDESK_DATABASE_URL=url,
        CASEDESK_SECRET_KEY=os.environ["CASEDESK_SECRET_KEY"],
        CASEDESK_LOG_LEVEL="warning",
        CASEDESK_OUTBOUND_ALLOWED_NETWORKS="127.0.0.0/8",
        CASEDESK_PUBLIC_URL=public,
    )
    command = [sys.executable, "-m", "casedesk", "worker"]
    return subprocess.Popen(command, env=env, stdout=log.open("ab"), stderr=subprocess.STDOUT)


def _median(values: list[float]) -> float:
    return statistics.median(values) if values else 0.0


def main(
    messages: int = typer.Option(500, help="pushes per scenario run"),
    repeat: int = typer.Option(3, help="runs of each scenario; the median is reported"),
    concurrency: int = typer.Option(16, help="pushes in flight at once"),
    threads: int = typer.Option(50, help="cases the comment scenarios reply to"),
) -> None:
    workdir = Path(tempfile.mkdtemp(prefix="casedesk-bench-channels-"))
    log = workdir / "casedesk.log"
    url = asyncio.run(_fresh_database("postgresql", workdir))
    _tenant, key, _agents = asyncio.run(_seed_identity(url))
    provider_port = _free_port()
    (workdir / "provider_app.py").write_text(PROVIDER_APP)
    command = [sys.executable, "-m", "uvicorn", "provider_app:app", "--port", str(provider_port)]
    # keep-alive as long as the providers keep theirs (uvicorn closes idle ones after 5 s)
    command += ["--timeout-keep-alive", "75", "--log-level", "warning"]
    provider_process = subprocess.Popen(command, cwd=workdir)
    provider = f"http://127.0.0.1:{provider_port}"
    port = _free_port()
    server = _serve(url, port, 2, log)
    results: dict[tuple[str, int], list[float]] = {}
    refusals = 0
    try:
        asyncio.run(_wait_for(f"{provider}/slack/auth.test"))
        base = f"http://127.0.0.1:{port}"
        headers = {"Authorization": f"Bearer {key}"}
        _configure(base, headers)
        with httpx.Client(base_url=base, headers=headers, timeout=30) as http:
            webhook = _hook(base, key)
            slack = _slack_hook(http, provider)
            graph_hook = _graph_hook(http, url, provider)
        graph: tuple[str, str, str] | None = None
        people = itertools.count(1)
        conversations = itertools.count(1)
        roots: dict[str, list[str]] = {"slack": [], "graph": []}

        def webhook_pushes(run: int, count: int) -> list[Push]:
            auth = {"Content-Type": "application/json", "Authorization": f"Bearer {HOOK_TOKEN}"}
            return [
                Push(orjson.dumps({"id": f"r{run}-{n}", "name": f"Order {n}"}), auth)
                for n in range(count)
            ]

        def slack_cases(run: int, count: int) -> list[Push]:
            return [
                _slack_message(f"U0P{next(people):06d}", f"Order {n} did not arrive")[1]
                for n in range(count)
            ]

        def slack_comments(run: int, count: int) -> list[Push]:
            threads_ = roots["slack"]
            return [
                _slack_message(
                    f"U0P{n % len(threads_) + 1:06d}", f"More {n}", threads_[n % len(threads_)]
                )[1]
                for n in range(count)
            ]

        def graph_cases(run: int, count: int) -> list[Push]:
            assert graph is not None
            made = []
            for _ in range(count):
                thread = next(conversations)
                made.append(_graph_push(graph, [f"m-{thread}-{thread}"]))
            return made

        def graph_comments(run: int, count: int) -> list[Push]:
            assert graph is not None
            threads_ = roots["graph"]
            return [
                _graph_push(graph, [f"m-{1_000_000 * (run + 1) + n}-{threads_[n % len(threads_)]}"])
                for n in range(count)
            ]

        scenarios = [
            Scenario("webhook → case (baseline)", "cases", webhook, pushes=webhook_pushes),
            Scenario("Slack → case", "cases", slack, pushes=slack_cases),
            Scenario("Slack → comment", "comments", slack, pushes=slack_comments),
        ]
        scenarios += [
            Scenario("Outlook (Graph) → case", "cases", graph_hook, pushes=graph_cases),
            Scenario("Outlook (Graph) → comment", "comments", graph_hook, pushes=graph_comments),
        ]
        counter = Counter(url)
        for workers in (1, 2):
            processes = [_worker(url, log, base) for _ in range(workers)]
            try:
                time.sleep(3)  # the workers start
                if graph is None:
                    graph = (graph_hook, *_graph_subscription(provider))
                if not roots["slack"]:
                    roots["slack"] = _open_slack_threads(slack, threads, counter, people)
                if graph is not None and not roots["graph"]:
                    roots["graph"] = _open_graph_threads(graph, threads, counter, conversations)
                with Progress(console=console) as progress:
                    task = progress.add_task(f"{workers} worker(s)", total=len(scenarios) * repeat)
                    for run, scenario in itertools.product(range(repeat), scenarios):
                        rate, refused = asyncio.run(
                            _measure(scenario, run + 10 * workers, messages, concurrency, counter)
                        )
                        refusals += refused
                        results.setdefault((scenario.name, workers), []).append(rate)
                        progress.advance(task)
            finally:
                for process in processes:
                    _stop(process)
        asyncio.run(counter.engine.dispose())
    finally:
        _stop(server)
        provider_process.terminate()
        provider_process.wait(timeout=30)
    _report(results, messages, repeat, refusals)


def _open_slack_threads(
    hook: str, count: int, counter: Counter, people: itertools.count[int]
) -> list[str]:
    """``count`` cases opened by Slack roots, for the comment scenario to reply to."""
    made = [_slack_message(f"U0P{next(people):06d}", f"Thread {n}") for n in range(count)]
    before = asyncio.run(counter.count(Case))
    asyncio.run(_push_all(hook, [push for _, push in made], 8))
    asyncio.run(counter.until(Case, before + count))
    return [ts for ts, _ in made]


def _open_graph_threads(
    graph: tuple[str, str, str], count: int, counter: Counter, conversations: itertools.count[int]
) -> list[str]:
    threads = [str(next(conversations)) for _ in range(count)]
    before = asyncio.run(counter.count(Case))
    pushes = [_graph_push(graph, [f"m-{t}-{t}"]) for t in threads]
    asyncio.run(_push_all(graph[0], pushes, 8))
    asyncio.run(counter.until(Case, before + count))
    return threads


async def _measure(
    scenario: Scenario, run: int, messages: int, concurrency: int, counter: Counter
) -> tuple[float, int]:
    """Messages per second from the first push to the last row committed; refusals."""
    assert scenario.pushes is not None
    model = Case if scenario.made == "cases" else Comment
    pushes = scenario.pushes(run, messages)
    before = await counter.count(model)
    began = time.monotonic()
    refused = await _push_all(scenario.hook, pushes, concurrency)
    ended = await counter.until(model, before + messages - refused)
    made = await counter.count(model) - before
    if made != messages - refused:
        raise RuntimeError(f"{scenario.name}: {made} {scenario.made} for {messages} messages")
    return made / (ended - began), refused


def _report(
    results: dict[tuple[str, int], list[float]], messages: int, repeat: int, refusals: int
) -> None:
    table = Table(
        title=f"casedesk channels on PostgreSQL: {messages:,} pushes a run, median of {repeat}"
    )
    for column in ("scenario", "1 worker", "2 workers", "vs baseline (1 / 2)", "runs (msg/s)"):
        table.add_column(column)
    names = list(dict.fromkeys(name for name, _ in results))
    baseline = {w: _median(results.get((names[0], w), [])) for w in (1, 2)}
    for name in names:
        one, two = (_median(results.get((name, w), [])) for w in (1, 2))
        ratio = " / ".join(
            f"{value / baseline[w]:.2f}x" if baseline[w] else "-"
            for w, value in ((1, one), (2, two))
        )
        runs = "; ".join(", ".join(f"{v:.0f}" for v in results.get((name, w), [])) for w in (1, 2))
        table.add_row(name, f"{one:,.0f}/s", f"{two:,.0f}/s", ratio, runs)
    console.print(table)
    if refusals:
        console.print(f"[red]{refusals} pushes were refused[/]")


if __name__ == "__main__":
    typer.run(main)
