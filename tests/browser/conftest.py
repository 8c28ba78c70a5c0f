"""Browser tests: Playwright driving Debian's ``chromium`` against ``casedesk serve``.

The server runs as a person runs it from the README: the embedded default (a SQLite file,
in-process workers), migrated and seeded through the CLI, in its own process on a free port.
Chromium comes from Debian's package (``.ci/run`` installs it; on a laptop this fixture
installs it when it may, or the tests skip saying how to get it). Screenshots of the screens
go to ``CASEDESK_SCREENSHOTS`` (``build/screenshots`` unless told).
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
import pytest_asyncio
from playwright.async_api import Browser, Page, async_playwright, expect

ROOT = Path(__file__).resolve().parents[2]
SCREENSHOTS = Path(os.environ.get("CASEDESK_SCREENSHOTS", ROOT / "build" / "screenshots"))
CHROMIUM = os.environ.get("CASEDESK_CHROMIUM", "/usr/bin/chromium")


def _chromium() -> str:
    if Path(CHROMIUM).exists():
        return CHROMIUM
    if os.geteuid() == 0 and shutil.which("apt-get"):
        subprocess.run(
            ["apt-get", "install", "-y", "chromium", "fonts-wqy-microhei"],
            check=False,
            capture_output=True,
            timeout=900,
        )
        if Path(CHROMIUM).exists():
            return CHROMIUM
    reason = f"no Chromium at {CHROMIUM}: apt-get install -y chromium (or set CASEDESK_CHROMIUM)"
    if os.environ.get("CI") == "true":
        pytest.fail(reason)
    pytest.skip(reason)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Server:
    url: str
    env: dict[str, str]
    log: Path
    key: str = ""
    """the demo admin's API key, printed by ``casedesk demo``"""

    def api(self) -> httpx.Client:
        headers = {"Authorization": f"Bearer {self.key}"}
        return httpx.Client(base_url=f"{self.url}/api/v1", headers=headers, timeout=30)

    def cli(self, *args: str) -> str:
        done = subprocess.run(
            [sys.executable, "-m", "casedesk", *args],
            env=self.env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert done.returncode == 0, done.stdout + done.stderr
        return done.stdout

    def password_link(self, tenant: str, email: str) -> str:
        printed = self.cli("user", "password-link", "--tenant", tenant, "--email", email)
        found = re.search(r"(http://\S+/set-password/\S+)", printed)
        assert found is not None, printed
        return found.group(1)


# Package-scoped: the server and the browser stop once the browser tests are done, rather
# than idling beside the rest of the suite.
@pytest.fixture(scope="package")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    workdir = tmp_path_factory.mktemp("browser-server")
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("CASEDESK_")}
    env.update(
        CASEDESK_DATABASE_URL=f"sqlite+aiosqlite:///{workdir / 'casedesk.db'}",
        CASEDESK_PORT=str(port),
        CASEDESK_HOST="127.0.0.1",
        CASEDESK_LOG_LEVEL="warning",
    )
    log = workdir / "server.log"
    served = Server(f"http://127.0.0.1:{port}", env, log)
    served.cli("db", "upgrade")
    printed = served.cli("demo")
    served.key = next(line.strip() for line in printed.splitlines() if line.startswith("cdk_"))
    process = subprocess.Popen(
        [sys.executable, "-m", "casedesk", "serve"],
        env=env,
        stdout=log.open("wb"),
        stderr=subprocess.STDOUT,
    )
    # A start, not a measurement: on a loaded machine it may take minutes.
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{served.url}/healthz", timeout=1).status_code == 200:
                break
        except httpx.TransportError:
            time.sleep(0.2)
    else:
        process.kill()
        raise RuntimeError(f"casedesk serve did not start:\n{log.read_text()[-3000:]}")
    yield served
    process.terminate()
    process.wait(timeout=30)


@pytest_asyncio.fixture(scope="package", loop_scope="session")
async def browser() -> AsyncIterator[Browser]:
    # The async API shares the suite's event loop; the sync one would hold a loop of its own
    # in this thread, and every asyncio test after it would find a loop already running.
    executable = _chromium()
    async with async_playwright() as playwright:
        launched = await playwright.chromium.launch(
            executable_path=executable, args=["--no-sandbox", "--disable-dev-shm-usage"]
        )
        yield launched
        await launched.close()


@pytest.fixture
async def page(browser: Browser) -> AsyncIterator[Page]:
    context = await browser.new_context(locale="en-US", viewport={"width": 1280, "height": 800})
    opened = await context.new_page()
    opened.set_default_timeout(10_000)
    yield opened
    await context.close()


async def screenshot(page: Page, name: str) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    await page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=True)


def catalog_texts() -> list[str]:
    """Every English text the screens can say: the Chinese catalog's source texts."""
    from babel.messages.pofile import read_po

    from casedesk.web.i18n import LOCALES_DIR

    texts = []
    for po in sorted((LOCALES_DIR / "zh_Hans" / "LC_MESSAGES").glob("*.po")):
        with po.open("rb") as source:
            texts += [str(message.id) for message in read_po(source) if message.id]
    return texts


async def shown_text(page: Page) -> str:
    """What the page says in its own words: its text without the desk's data (names,
    titles), which the pages mark ``translate="no"`` as browsers' translators expect."""
    shown: str = await page.evaluate(
        """() => {
            const page = document.body.cloneNode(true);
            page.querySelectorAll("[translate=no]").forEach((data) => data.remove());
            return page.innerText;
        }"""
    )
    return shown


def english_in(shown: str) -> list[str]:
    """The catalogs' English texts (longer than a word of three letters) still in ``shown``."""
    return [
        text
        for text in catalog_texts()
        if len(text) > 3 and re.search(rf"\b{re.escape(text)}\b", shown)
    ]


async def sign_in_by_link(page: Page, server: Server, link: str, email: str, password: str) -> None:
    """A person's first visit: the one-time link sets their password (when it still can),
    then they sign in to the demo workspace; by the fields' names, so in any language."""
    await page.goto(link)
    if await page.locator("input[name=password_again]").count():
        await page.locator("input[name=password]").fill(password)
        await page.locator("input[name=password_again]").fill(password)
        await page.locator("form button[type=submit]").last.click()
    await page.goto(f"{server.url}/sign-in?workspace=demo")
    await page.locator("input[name=email]").fill(email)
    await page.locator("input[name=password]").fill(password)
    await page.locator("main button[type=submit]").click()
    await expect(page).to_have_url(re.compile(r"/app/cases\?view=mine$"))
