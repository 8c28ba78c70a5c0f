"""Full-text search benchmark: ``GET /api/v1/cases?q=…`` against the same list without ``q``,
the indexer's throughput, and django-helpdesk's search on the same texts.

For each database (SQLite and PostgreSQL) it makes a fresh database and bulk-seeds it as
``bench.cases`` does, with ``--cases`` cases whose words come from a seeded generator
(``Corpus``): English and Chinese support sentences, a title, a description and one or two
comments each, with words planted at known frequencies:

- rare: ``zephyrine`` and ``蜂鸟相机`` in 10 cases each;
- common: ``printer`` and ``打印机`` in 30% of the cases each;
- a phrase: ``"cannot log in"`` in 2%.

Then it measures:

1. ``casedesk search reindex``'s work (``reindex`` in Python) over the seeded cases, in cases
   per second;
2. ``casedesk serve`` (as ``bench.cases`` runs it: server processes and a ``casedesk worker``)
   under wrk (``--concurrency`` 4 by default: the aim is a p99 under 50 ms):
   ``GET /api/v1/cases?q=<word>&limit=25`` for each planted word and the phrase, against
   ``GET /api/v1/cases?state=open&limit=25`` as the baseline, in the same run, ``--repeat``
   times; medians of req/s, p50 and p99, and each one's ratio to the baseline; the same
   searches one at a time (httpx, ``--peer-repeat`` requests each), to set beside the peer's;
3. the indexer keeping up: title changes (``PATCH /api/v1/cases/{id}``) and comments
   (``POST /api/v1/cases/{id}/comments``) at ``--rate`` a second for ``--drive-seconds`` (one
   not sent while ``IN_FLIGHT`` are unanswered, so a server slower than the rate is driven at
   its own pace); the most the index fell behind meanwhile, how far it is behind when they
   stop (the list answer's ``meta.search_lag_seconds`` and ``meta.search_lag_events``) and how
   long until the last word written is found and nothing is left to index;
4. django-helpdesk 2.6.1 (the harness of ``bench.peer``, its own database: a SQLite file, or
   a ``dh_peer_search`` database on the same PostgreSQL server) seeded through its ORM with the
   same texts (a ticket's title and description; its "Ticket Opened" follow-up and one
   follow-up per comment), ``--peer-cases`` tickets. What is timed is what its staff ticket
   list's search runs: the list page (``helpdesk/views/staff.py`` ``ticket_list``) puts ``q``
   in the query's ``search_string`` and its table loads ``datatables_ticket_list``, which runs
   ``Query(...).get_datatables_context()``: ``icontains`` of the text over the ticket's id,
   title, description, priority, resolution, submitter e-mail, assignee e-mail, custom field
   values, created and due dates (``helpdesk/query.py`` ``get_search_filter_args``; not its
   follow-ups), ``distinct``, the last follow-up's date as a subquery, two counts and the first
   25 by created date, serialized. It is timed in one Django shell process, one call at a time,
   ``--peer-repeat`` calls a word after one warm-up call, no HTTP. Its search has no phrases:
   the phrase is sought as the plain substring ``cannot log in``.

    .venv/bin/python -m bench.search                      # SQLite and PostgreSQL, 100,000 cases
    .venv/bin/python -m bench.search --quick              # 10,000 cases, short runs
    .venv/bin/python -m bench.search --backend sqlite --no-peer
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import random
import shutil
import statistics
import subprocess
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import quote

import httpx
import orjson
import typer
from rich.progress import Progress
from rich.table import Table
from sqlalchemy import select, text

from bench import peer as helpdesk
from bench.cases import (
    ADMIN_URLS,
    CaseText,
    Result,
    _wrk,
    console,
    drop_database,
    running,
    seed,
)
from casedesk.bootstrap import build
from casedesk.config import load_settings
from casedesk.domain.search.tokens import is_cjk
from casedesk.store.bus.base import Message
from casedesk.store.database import nullpool_engine
from casedesk.store.models import Case
from casedesk.worker.consumers import Consumers
from casedesk.worker.search_index import SearchIndexer, reindex

ENGLISH = (  # noqa: SIM905 (a list literal would take a line a word)
    "account order refund invoice password delivery shipping screen error update payment "
    "subscription email app crash slow network wifi battery charger warranty replace broken "
    "reset billing charge cancel address package tracking late missing damaged support help "
    "please urgent customer service ticket issue problem device laptop phone tablet monitor "
    "keyboard mouse cable router driver install software version upgrade download upload file "
    "folder backup sync server website page link button settings profile user admin access "
    "permission locked expired code verification message notification report export data "
    "display sound scanner toner paper jam label receipt discount coupon price plan renewal "
    "trial contract my the is not with after since and for on to a it again still today "
    "yesterday when how why need can new old works stopped"
).split()
CHINESE = (  # noqa: SIM905
    "退款 发票 登录 密码 订单 物流 快递 账号 支付 屏幕 电池 充电 网络 系统 客服 退货 换货 "
    "地址 价格 优惠 会员 软件 更新 故障 维修 保修 问题 无法 请 帮忙 谢谢 尽快 处理 已经 还是 "
    "没有 收到 显示 错误 邮件 短信 验证码 电话 电脑 键盘 鼠标 路由器 安装 下载 文件 备份 "
    "服务器 网站 页面 设置 用户 权限 过期 通知 报告 数据 声音 扫描仪 纸张 标签 收据 折扣 合同 "
    "续费 试用 我的 今天 昨天 一直 突然 怎么 为什么 需要 可以 不能 重新 的 了 吗"
).split()


@dataclass(frozen=True)
class Word:
    """A word (or phrase) planted in ``share`` of the cases (``count`` of them if set)."""

    label: str
    query: str  # as typed into casedesk's search box
    text: str  # as written into the cases, and sought by the peer
    share: float = 0.0
    count: int | None = None

    def cases_in(self, total: int) -> int:
        return min(total, self.count) if self.count is not None else round(total * self.share)


WORDS = (
    Word("rare", "zephyrine", "zephyrine", count=10),
    Word("rare, Chinese", "蜂鸟相机", "蜂鸟相机", count=10),
    Word("common", "printer", "printer", share=0.30),
    Word("common, Chinese", "打印机", "打印机", share=0.30),
    Word("phrase", '"cannot log in"', "cannot log in", share=0.02),
)
BASELINE_PATH = "/api/v1/cases?state=open&limit=25"
IN_FLIGHT = 64  # changes sent and not yet answered, at most
# No word of the vocabulary holds a character of a planted Chinese word, nor a planted English
# word, so a planted word is found only where it was planted.
assert not {c for w in CHINESE for c in w} & {c for w in WORDS for c in w.text}
assert not {"printer", "zephyrine", "cannot"} & set(ENGLISH)


class Corpus:
    """The words of ``total`` cases, the same for every caller (each case from its own
    seeded generator), with ``WORDS`` planted in the cases chosen for them."""

    def __init__(self, total: int, seed: int = 11) -> None:
        self.total = total
        self.seed = seed
        chooser = random.Random(seed)
        self.planted: dict[int, list[str]] = {}
        for word in WORDS:
            for n in chooser.sample(range(total), word.cases_in(total)):
                self.planted.setdefault(n, []).append(word.text)

    def __call__(self, n: int) -> CaseText:
        rng = random.Random(self.seed * 1_000_003 + n)
        chinese = rng.random() < 0.5
        title = [_sentence(rng, chinese, 3, 6)]
        description = [_sentence(rng, chinese ^ (rng.random() < 0.3), 5, 12) for _ in range(2)]
        comments = [
            [_sentence(rng, chinese ^ (rng.random() < 0.3), 4, 10)]
            for _ in range(rng.choice((1, 2)))
        ]
        parts = [title, description, *comments]
        for planted in self.planted.get(n, ()):
            sentence = rng.choice(rng.choice(parts))
            sentence.insert(rng.randint(0, len(sentence)), planted)
        return CaseText(
            _joined(title)[:300],
            _joined(description),
            tuple(_joined(comment) for comment in comments),
        )


def _sentence(rng: random.Random, chinese: bool, low: int, high: int) -> list[str]:
    return rng.choices(CHINESE if chinese else ENGLISH, k=rng.randint(low, high))


def _chinese(words: list[str]) -> bool:
    return sum(is_cjk(w[0]) for w in words) * 2 > len(words)


def _joined(sentences: list[list[str]]) -> str:
    """Sentences as text: English words spaced; Chinese ones run together, with a space
    either side of an English word among them."""
    out = []
    for words in sentences:
        if _chinese(words):
            joined = "".join(w if is_cjk(w[0]) else f" {w} " for w in words)
            out.append(" ".join(joined.split()) + "。")
        else:
            joined = " ".join(words)
            out.append(joined[:1].upper() + joined[1:] + ".")
    return " ".join(out)


@dataclass
class Timing:
    """Latencies of requests made one at a time, in milliseconds."""

    samples: list[float]
    hits: int | None = None

    @property
    def p50(self) -> float:
        return statistics.median(self.samples)

    @property
    def p99(self) -> float:
        ordered = sorted(self.samples)
        return ordered[min(len(ordered) - 1, round(0.99 * (len(ordered) - 1)))]


@dataclass
class Catchup:
    """The indexer behind a steady stream of changes."""

    target_rate: int
    seconds: float
    sent: int
    skipped: int
    errors: Counter[str]
    lag_seconds: float | None
    lag_events: int | None
    caught_up_after: float | None
    worst_lag_seconds: float
    worst_lag_events: int


@dataclass
class Outcome:
    backend: str
    cases: int
    workers: int
    reindexed: int = 0
    reindex_seconds: float = 0.0
    runs: dict[str, list[Result]] = field(default_factory=dict)
    hits: dict[str, int] = field(default_factory=dict)
    marked: dict[str, bool] = field(default_factory=dict)
    order: dict[str, str | None] = field(default_factory=dict)
    """meta.search_order of each search: by relevance, or the newest first"""
    one_at_a_time: dict[str, Timing] = field(default_factory=dict)
    catchup: Catchup | None = None
    capacity: tuple[int, float] | None = None
    """The indexer alone (``_indexer_capacity``): events handled, seconds."""
    peer_tickets: int | None = None
    peer: dict[str, Timing] = field(default_factory=dict)
    peer_note: str = ""


def _path(word: Word) -> str:
    return f"/api/v1/cases?q={quote(word.query)}&limit=25"


async def _reindex(url: str) -> tuple[int, float]:
    """``casedesk search reindex``'s work over every seeded case: the documents written and the
    seconds it took."""
    container = build(load_settings(database_url=url))
    try:
        with Progress(console=console) as progress:
            job = progress.add_task("reindexing", total=None)

            def advance(done: int, total: int) -> None:
                progress.update(job, completed=done, total=total)

            start = time.perf_counter()
            count = await reindex(container.database, progress=advance)
            return count, time.perf_counter() - start
    finally:
        await container.close()


CAPACITY_EVENTS = 3_000
CAPACITY_AT_ONCE = 8


async def _indexer_capacity(url: str, ids: list[str], count: int) -> tuple[int, float]:
    """The ``search`` consumer group's own pace, without a bus or a server: ``count``
    ``case.updated`` deliveries of seeded cases handed to its handler, ``CAPACITY_AT_ONCE`` at
    a time as a worker's prefetch would (each one a transaction: the processed-event record,
    the case's rows read, its document made and written). The events handled and the seconds."""
    container = build(load_settings(database_url=url))
    try:
        group = SearchIndexer(container.database).group()
        handle = Consumers(container.database, {group.name: group}).handler_for(group.name)
        assert handle is not None
        async with container.unit_of_work() as uow:
            tenant_id = await uow.session.scalar(
                select(Case.tenant_id)
                .where(Case.id == uuid.UUID(ids[0]))
                .execution_options(all_tenants=True)
            )
        now = datetime.now(UTC).isoformat()
        messages = [
            Message(
                id=str(uuid.uuid4()),
                type="case.updated",
                tenant_id=str(tenant_id),
                subject=ids[n % len(ids)],
                sequence=10**12 + n,
                traceparent=f"00-{uuid.uuid4().hex}-{uuid.uuid4().hex[:16]}-01",
                body=orjson.dumps({"time": now}),
            )
            for n in range(count)
        ]
        queue: asyncio.Queue[Message] = asyncio.Queue()
        for message in messages:
            queue.put_nowait(message)

        async def work() -> None:
            while not queue.empty():
                await handle(queue.get_nowait())

        start = time.perf_counter()
        await asyncio.gather(*(work() for _ in range(CAPACITY_AT_ONCE)))
        return count, time.perf_counter() - start
    finally:
        await container.close()


async def _analyze(url: str) -> None:
    """Statistics of the documents just written, as a database that has run for a while has
    them (``bench.cases`` analyzes the seeded cases the same way)."""
    engine = nullpool_engine(load_settings(database_url=url).database_url)
    try:
        async with engine.begin() as connection:
            if connection.dialect.name == "postgresql":
                await connection.execute(text("ANALYZE"))
    finally:
        await engine.dispose()


def _check(base: str, key: str, outcome: Outcome) -> None:
    """What each search finds on its first page, and whether the items are highlighted."""
    with httpx.Client(base_url=base, headers={"Authorization": f"Bearer {key}"}) as http:
        for word in WORDS:
            answer = http.get(_path(word), timeout=60)
            answer.raise_for_status()
            items = answer.json()["items"]
            outcome.hits[word.label] = len(items)
            outcome.order[word.label] = (answer.json().get("meta") or {}).get("search_order")
            outcome.marked[word.label] = bool(items) and all(
                "<mark>" in (item.get("highlight") or {}).get("html", "") for item in items
            )


def _one_at_a_time(base: str, key: str, path: str, count: int) -> Timing:
    with httpx.Client(base_url=base, headers={"Authorization": f"Bearer {key}"}) as http:
        http.get(path, timeout=60).raise_for_status()  # warm-up, as the peer's
        samples = []
        for _ in range(count):
            start = time.perf_counter()
            http.get(path, timeout=60).raise_for_status()
            samples.append((time.perf_counter() - start) * 1000)
    return Timing(samples)


async def _drive(
    base: str, key: str, ids: Sequence[str], rate: int, seconds: float, corpus: Corpus
) -> Catchup:
    """Title changes and comments at ``rate`` a second (one skipped when ``IN_FLIGHT`` are
    unanswered), each with a word of its own; then the lag at the end and the time until the
    last word is found with no events left behind."""
    rng = random.Random(5)
    total = int(rate * seconds)
    errors: Counter[str] = Counter()
    skipped = 0
    last_word = ""
    limit = asyncio.Semaphore(IN_FLIGHT)

    async def change(http: httpx.AsyncClient, n: int) -> None:
        nonlocal last_word
        word = f"lagprobe{n:06d}"
        case_id = rng.choice(ids)
        words = corpus(rng.randrange(corpus.total))
        async with limit:
            try:
                if n % 2:
                    answer = await http.patch(
                        f"/api/v1/cases/{case_id}", json={"title": f"{words.title[:200]} {word}"}
                    )
                else:
                    answer = await http.post(
                        f"/api/v1/cases/{case_id}/comments",
                        json={"body": f"{words.comments[0]} {word}"},
                    )
            except httpx.HTTPError as exc:
                errors[type(exc).__name__] += 1
                return
            if answer.is_success:
                last_word = word  # not exact under concurrency: any late word will do
            else:
                errors[str(answer.status_code)] += 1

    async def watcher(http: httpx.AsyncClient) -> None:
        """The most the index fell behind while the changes went on, read once a second."""
        while True:
            await asyncio.sleep(1)
            with contextlib.suppress(httpx.HTTPError, KeyError, ValueError):
                meta = (await http.get(_search("lagprobe"))).json()["meta"]
                worst[0] = max(worst[0], meta["search_lag_seconds"] or 0.0)
                worst[1] = max(worst[1], meta["search_lag_events"] or 0)

    worst: list[float] = [0.0, 0.0]
    headers = {"Authorization": f"Bearer {key}"}
    pool = httpx.Limits(max_connections=IN_FLIGHT, max_keepalive_connections=IN_FLIGHT)
    async with httpx.AsyncClient(base_url=base, headers=headers, limits=pool, timeout=30) as http:
        start = time.monotonic()
        tasks = []
        watch = asyncio.create_task(watcher(http))
        for n in range(total):
            await asyncio.sleep(max(0.0, start + n / rate - time.monotonic()))
            if limit.locked():  # as many in flight as connections: this one is not sent
                skipped += 1
                continue
            tasks.append(asyncio.create_task(change(http, n)))
        await asyncio.gather(*tasks)
        ended = time.monotonic()
        watch.cancel()
        meta = (await http.get(_search(last_word))).json()["meta"]
        caught_up_after = None
        while time.monotonic() - ended < 600:
            answer = (await http.get(_search(last_word))).json()
            if answer["items"] and answer["meta"]["search_lag_events"] == 0:
                caught_up_after = time.monotonic() - ended
                break
            await asyncio.sleep(0.2)
    return Catchup(
        rate,
        ended - start,
        len(tasks),
        skipped,
        errors,
        meta.get("search_lag_seconds"),
        meta.get("search_lag_events"),
        caught_up_after,
        worst[0],
        int(worst[1]),
    )


def _search(word: str) -> str:
    return f"/api/v1/cases?q={quote(word)}&limit=25"


def _measure(
    backend: str,
    cases: int,
    workers: int,
    concurrency: int,
    seconds: int,
    repeat: int,
    one_by_one: int,
    rate: int,
    drive_seconds: float,
    workdir: Path,
) -> Outcome:
    outcome = Outcome(backend, cases, workers)
    corpus = Corpus(cases)
    database = f"casedesk_search_{os.getpid()}"  # beside other benchmarks' databases
    seeded = seed(backend, cases, workdir, database, tenants=0, texts=corpus)
    try:
        outcome.reindexed, outcome.reindex_seconds = asyncio.run(_reindex(seeded.url))
        asyncio.run(_analyze(seeded.url))
        with running(seeded.url, workers, workdir) as base:
            scenarios = [("baseline", BASELINE_PATH)] + [(w.label, _path(w)) for w in WORDS]
            _check(base, seeded.key, outcome)
            for _, path in scenarios:  # warm-up
                _wrk(base, path, seeded.scripts["list"], concurrency, 1)
            with Progress(console=console) as progress:
                job = progress.add_task(f"searching on {backend}", total=len(scenarios) * repeat)
                for _ in range(repeat):
                    for label, path in scenarios:
                        result = _wrk(base, path, seeded.scripts["list"], concurrency, seconds)
                        outcome.runs.setdefault(label, []).append(result)
                        progress.advance(job)
            for label, path in scenarios:
                outcome.one_at_a_time[label] = _one_at_a_time(base, seeded.key, path, one_by_one)
            with console.status(f"changing cases at {rate}/s for {drive_seconds:.0f} s"):
                outcome.catchup = asyncio.run(
                    _drive(base, seeded.key, seeded.ids, rate, drive_seconds, corpus)
                )
        with console.status(f"the indexer alone, {CAPACITY_EVENTS:,} events"):
            outcome.capacity = asyncio.run(
                _indexer_capacity(seeded.url, seeded.ids, CAPACITY_EVENTS)
            )
    finally:
        asyncio.run(drop_database(backend, database))
    return outcome


# The peer: django-helpdesk through its shared harness, without its server.

PEER_BACKENDS = {"postgresql": "postgres", "sqlite": "sqlite"}
PEER_DATABASE = "dh_peer_search"
PEER_SETTINGS = f"""
import os
from peerproj.settings import *  # noqa
if os.environ.get("PEER_DB") == "postgres":
    DATABASES["default"]["NAME"] = "{PEER_DATABASE}"
"""
PEER_SEED = """
import json
from django.db import transaction
from django.utils import timezone
from helpdesk.models import Ticket, FollowUp, Queue
q = Queue.objects.get(slug='bench')
now = timezone.now()
with open({path!r}, encoding='utf-8') as source:
    cases = [json.loads(line) for line in source]
with transaction.atomic():
    for start in range(0, len(cases), 1000):
        chunk = cases[start:start + 1000]
        ts = Ticket.objects.bulk_create([
            Ticket(title=c[0][:200], queue=q, submitter_email='seed@example.com',
                   description=c[1], priority=1 + (start + i) % 5,
                   status=(1, 2, 3, 4)[(start + i) % 4], created=now)
            for i, c in enumerate(chunk)])
        FollowUp.objects.bulk_create(
            [FollowUp(ticket=t, title='Ticket Opened', comment=t.description, public=True, date=now)
             for t in ts]
            + [FollowUp(ticket=t, title='Comment', comment=body, public=True, date=now)
               for t, c in zip(ts, chunk) for body in c[2]])
print('TICKETS', Ticket.objects.count())
"""
PEER_SEARCH = """
import json, time
from django.contrib.auth import get_user_model
from helpdesk.query import get_query_class
from helpdesk.user import HelpdeskUser
Query = get_query_class()
user = HelpdeskUser(get_user_model().objects.get(username='admin'))
for text in json.loads({words!r}):
    params = {{'filtering': {{}}, 'filtering_null': {{}}, 'sorting': 'created',
              'sortreverse': False, 'search_string': text}}
    samples = []
    for n in range({repeat} + 1):
        start = time.perf_counter()
        context = Query(user, query_params=params).get_datatables_context()
        if n:
            samples.append((time.perf_counter() - start) * 1000)
    print('SEARCH', json.dumps([text, context['recordsFiltered'], samples]))
"""


def _peer_django(home: Path, database: str, code: str) -> str:
    env = {
        **os.environ,
        "PEER_DB": database,
        "PEER_HOME": str(home),
        "DJANGO_SETTINGS_MODULE": "peerproj.search_settings",
    }
    return subprocess.run(
        [str(helpdesk.VENV / "bin/python"), "manage.py", "shell", "-v", "0", "-c", code],
        cwd=home,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    ).stdout


async def _fresh_peer_database() -> None:
    engine = nullpool_engine(load_settings(database_url=ADMIN_URLS["postgresql"]).database_url)
    async with engine.connect() as connection:
        await connection.execution_options(isolation_level="AUTOCOMMIT")
        await connection.execute(text(f"DROP DATABASE IF EXISTS {PEER_DATABASE}"))
        await connection.execute(text(f"CREATE DATABASE {PEER_DATABASE}"))
    await engine.dispose()


def _peer_setup(home: Path, database: str) -> None:
    """The harness's project, venv and admin (``run.sh setup`` on a SQLite file of its own;
    on PostgreSQL the same project migrated into ``PEER_DATABASE``), without its server."""
    if not (helpdesk.HARNESS / "run.sh").exists():
        raise helpdesk.PeerUnavailable(f"no django-helpdesk harness at {helpdesk.HARNESS}")
    home.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "PEER_DB": "sqlite", "PEER_HOME": str(home)}
    setup = subprocess.run(
        ["bash", str(helpdesk.HARNESS / "run.sh"), "setup"], env=env, capture_output=True, text=True
    )
    if setup.returncode != 0:
        raise helpdesk.PeerUnavailable(f"run.sh setup failed:\n{setup.stderr[-3000:]}")
    (home / "peerproj/search_settings.py").write_text(PEER_SETTINGS)
    if database != "postgres":
        return
    subprocess.run(
        [str(helpdesk.VENV / "bin/pip"), "install", "-q", "psycopg[binary]"],
        check=True,
        capture_output=True,
    )
    asyncio.run(_fresh_peer_database())
    env = {**env, "PEER_DB": database, "DJANGO_SETTINGS_MODULE": "peerproj.search_settings"}
    subprocess.run(
        [str(helpdesk.VENV / "bin/python"), "manage.py", "migrate", "--noinput", "-v", "0"],
        cwd=home,
        env=env,
        check=True,
        capture_output=True,
    )
    _peer_django(
        home,
        database,
        "from django.contrib.auth import get_user_model; from helpdesk.models import Queue\n"
        "get_user_model().objects.create_superuser('admin', 'admin@example.com', 'pass-123')\n"
        "Queue.objects.create(slug='bench', title='Bench', allow_public_submission=True)\n",
    )


def _measure_peer(
    outcome: Outcome, peer_cases: int, repeat: int, workdir: Path, home: Path | None = None
) -> None:
    database = PEER_BACKENDS[outcome.backend]
    home = home or workdir / "dh-peer"
    try:
        _peer_setup(home, database)
    except (helpdesk.PeerUnavailable, subprocess.CalledProcessError) as exc:
        outcome.peer_note = str(exc).splitlines()[0]
        console.print(f"[yellow]peer not measured on {outcome.backend}: {exc}[/]")
        return
    corpus = Corpus(peer_cases)
    texts = workdir / "peer-texts.jsonl"
    with texts.open("w", encoding="utf-8") as sink:
        for n in range(peer_cases):
            case = corpus(n)
            sink.write(json.dumps([case.title, case.description, case.comments]) + "\n")
    words = json.dumps([w.text for w in WORDS])
    try:
        with console.status(f"seeding django-helpdesk with {peer_cases:,} tickets on {database}"):
            seeded = _peer_django(home, database, PEER_SEED.format(path=str(texts)))
        outcome.peer_tickets = int(seeded.split("TICKETS")[-1].split()[0])
        with console.status(f"timing django-helpdesk's search on {database}"):
            printed = _peer_django(home, database, PEER_SEARCH.format(words=words, repeat=repeat))
    finally:
        if database == "postgres":
            asyncio.run(drop_database("postgresql", PEER_DATABASE))
    found = {}
    for line in printed.splitlines():
        if line.startswith("SEARCH "):
            sought, count, samples = json.loads(line[len("SEARCH ") :])
            found[sought] = Timing(samples, count)
    outcome.peer = {w.label: found[w.text] for w in WORDS if w.text in found}


def main(
    backend: str = typer.Option("both", help="sqlite, postgresql or both"),
    cases: int = typer.Option(100_000, help="cases seeded into casedesk"),
    peer_cases: int = typer.Option(100_000, help="tickets seeded into django-helpdesk"),
    workers: int = typer.Option(2, help="casedesk server processes"),
    concurrency: int = typer.Option(
        4, help="connections kept busy by wrk (a latency aim: a few searches at once)"
    ),
    seconds: int = typer.Option(10, help="length of one wrk measurement"),
    repeat: int = typer.Option(3, help="wrk measurements per search; the median is reported"),
    peer_repeat: int = typer.Option(
        20, help="searches one at a time, per word, on casedesk and on the peer"
    ),
    rate: int = typer.Option(200, help="case changes a second while the indexer keeps up"),
    drive_seconds: float = typer.Option(20, help="how long the changes are sent"),
    quick: bool = typer.Option(
        False, help="a few minutes: 10,000 cases and tickets, 1 run of 3 s, 5 s of changes"
    ),
    peer: bool = typer.Option(True, help="measure django-helpdesk's search beside casedesk"),
) -> None:
    if shutil.which("wrk") is None:
        console.print("[red]wrk is not installed[/]: apt-get install -y wrk (or `make bench`)")
        raise typer.Exit(1)
    backends = {"both": ["sqlite", "postgresql"], "sqlite": ["sqlite"]}
    backends["postgresql"] = ["postgresql"]
    if backend not in backends:
        raise typer.BadParameter(f"{backend!r}: sqlite, postgresql or both", param_hint="--backend")
    if quick:
        cases = peer_cases = 10_000
        seconds, repeat, peer_repeat, drive_seconds = 3, 1, 10, 5
    for name in backends[backend]:  # each backend's tables as soon as it is measured
        workdir = Path(tempfile.mkdtemp(prefix=f"casedesk-search-{name}-"))
        outcome = _measure(
            name,
            cases,
            workers,
            concurrency,
            seconds,
            repeat,
            peer_repeat,
            rate,
            drive_seconds,
            workdir,
        )
        if peer:
            _measure_peer(outcome, peer_cases, peer_repeat, workdir)
        _report(outcome, concurrency, seconds, repeat, peer_repeat)
        shutil.rmtree(workdir, ignore_errors=True)  # 100,000 cases on SQLite: some 400 MB


def _ratio(value: float, baseline: float) -> str:
    return f"{value / baseline:.2f}x" if baseline else "-"


def _report(outcome: Outcome, concurrency: int, seconds: int, repeat: int, one_by_one: int) -> None:
    base_runs = outcome.runs["baseline"]
    base_rps = statistics.median(r.rps for r in base_runs)
    base_p99 = statistics.median(r.p99_ms for r in base_runs)
    loaded = Table(
        title=f"casedesk search on {outcome.backend}, {outcome.cases:,} cases, "
        f"{outcome.workers} server processes + 1 worker: GET /api/v1/cases?q=…&limit=25 under "
        f"wrk -c{concurrency}, {seconds} s, median of {repeat}"
    )
    for column in ("q", "found", "req/s", "p50 ms", "p99 ms", "errors"):
        loaded.add_column(column, justify="left" if column == "q" else "right")
    for column in ("req/s vs baseline", "p99 vs baseline"):
        loaded.add_column(column, justify="right")
    alone = Table(
        title=f"the same searches one at a time, {one_by_one} each after a warm-up: casedesk over "
        "HTTP"
        + (
            f"; django-helpdesk's ticket list search, {outcome.peer_tickets:,} tickets, in its ORM"
            if outcome.peer
            else ""
        )
    )
    for column in ("q", "casedesk p50 ms", "casedesk p99 ms"):
        alone.add_column(column, justify="left" if column == "q" else "right")
    if outcome.peer:
        for column in ("peer p50 ms", "peer p99 ms", "peer found", "peer/casedesk p50"):
            alone.add_column(column, justify="right")
    for label, runs in outcome.runs.items():
        word = next((w for w in WORDS if w.label == label), None)
        query = word.query if word else "(baseline: state=open)"
        rps = statistics.median(r.rps for r in runs)
        p99 = statistics.median(r.p99_ms for r in runs)
        found = "-"
        if word is not None:
            mark = "" if outcome.marked.get(label) else ", unmarked"
            order = outcome.order.get(label)
            found = f"{outcome.hits[label]} of {word.cases_in(outcome.cases):,}{mark}"
            found += f", {order}" if order else ""
        loaded.add_row(
            query,
            found,
            f"{rps:,.0f}",
            f"{statistics.median(r.p50_ms for r in runs):.1f}",
            f"{p99:.1f}",
            str(sum(r.errors for r in runs)),
            _ratio(rps, base_rps),
            _ratio(p99, base_p99),
        )
        single = outcome.one_at_a_time[label]
        row = [query, f"{single.p50:.1f}", f"{single.p99:.1f}"]
        theirs = outcome.peer.get(label)
        if theirs is not None:
            row += [f"{theirs.p50:.1f}", f"{theirs.p99:.1f}", f"{theirs.hits:,}"]
            row.append(_ratio(theirs.p50, single.p50))
        elif outcome.peer:
            row += ["-"] * 4
        alone.add_row(*row)
    console.print(loaded)
    console.print(
        f"  reindex: {outcome.reindexed:,} cases in {outcome.reindex_seconds:.1f} s, "
        f"{outcome.reindexed / max(outcome.reindex_seconds, 1e-9):,.0f} cases/s. "
        "found: items on the first page of 25, of the cases the word was planted in "
        "('unmarked': an item without <mark> in its highlight), and the order of the answer "
        "(meta.search_order)."
    )
    if outcome.catchup is not None:
        c = outcome.catchup
        errors = ", ".join(f"{n} {kind}" for kind, n in c.errors.most_common()) or "none"
        caught = f"{c.caught_up_after:.1f} s" if c.caught_up_after is not None else "not in 600 s"
        console.print(
            f"  indexer: {c.sent:,} changes (title or comment) in {c.seconds:.1f} s "
            f"({c.sent / c.seconds:,.0f}/s of {c.target_rate}/s asked; {c.skipped:,} not sent "
            f"while {IN_FLIGHT} were unanswered; errors: {errors}); "
            f"behind at most {c.worst_lag_seconds:.1f} s, {c.worst_lag_events:,} events while "
            f"they went on (read once a second); behind when they stopped: {c.lag_seconds} s, "
            f"{c.lag_events} events; "
            f"caught up (last word found, no events behind) after {caught}."
        )
    if outcome.capacity is not None:
        events, took = outcome.capacity
        console.print(
            f"  indexer alone: {events:,} case.updated events handed to the search group's "
            f"handler, {CAPACITY_AT_ONCE} at a time, no bus or server: {took:.1f} s, "
            f"{events / max(took, 1e-9):,.0f} events/s."
        )
    console.print(alone)
    if outcome.peer:
        console.print(
            f"  peer: django-helpdesk 2.6.1 on {PEER_BACKENDS[outcome.backend]}, "
            f"{outcome.peer_tickets:,} tickets of the same texts; each figure is one call of "
            "Query(...).get_datatables_context() for the word in a Django shell (what the staff "
            "ticket list's search runs: icontains over id, title, description, resolution, "
            "e-mails, custom fields and dates, not follow-ups; distinct, 2 counts, the first 25 "
            "serialized), no HTTP, one at a time; the phrase as the substring 'cannot log in'. "
            "'peer found' is its recordsFiltered; 'peer/casedesk p50' is its p50 over casedesk's "
            "one-at-a-time p50 (over HTTP)."
        )
    elif outcome.peer_note:
        console.print(f"  peer not measured: {outcome.peer_note}")


if __name__ == "__main__":
    typer.run(main)
