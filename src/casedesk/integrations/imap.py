"""An IMAP client for mailboxes, on ``aioimaplib``: connect, log in, read new mail by UID.

A session connects with implicit TLS (``tls``, usually port 993), upgrades a plain
connection with ``STARTTLS`` (``starttls``, port 143) or stays plain (``none``: refused
unless the host is a loopback address or the account allows it explicitly). It logs in with
``LOGIN`` or ``AUTHENTICATE XOAUTH2`` (an OAuth2 access token), selects a folder, and then:

- ``new_uids(after)``: ``UID SEARCH UID <after+1>:*`` (a server answers the last message for
  a range past its end, so the UIDs not above ``after`` are dropped);
- ``fetch(uids)``: ``UID FETCH <uids> (BODY.PEEK[] FLAGS)`` (``PEEK``: reading sets no
  ``\\Seen``);
- ``mark_seen``, ``move`` (``UID MOVE`` when the server has MOVE, else ``UID COPY``, then
  ``+FLAGS (\\Deleted)`` and ``UID EXPUNGE``).

Every step has a timeout; a refusal raises ``ImapError`` with the server's own words.
This module knows nothing of cases or tenants.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import ipaddress
import re
import ssl
from collections.abc import AsyncIterator, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import aioimaplib

Security = Literal["tls", "starttls", "none"]
SECURITIES: tuple[Security, ...] = ("tls", "starttls", "none")
DEFAULT_PORTS: dict[Security, int] = {"tls": 993, "starttls": 143, "none": 143}
FETCH_BATCH = 25
"""Messages asked for in one ``UID FETCH``."""

_UIDVALIDITY = re.compile(rb"\[UIDVALIDITY (\d+)\]")
_UIDNEXT = re.compile(rb"\[UIDNEXT (\d+)\]")
_EXISTS = re.compile(rb"^(\d+) EXISTS$")
_FETCH_UID = re.compile(rb"UID (\d+)")
_FETCH_FLAGS = re.compile(rb"FLAGS \(([^)]*)\)")
_FETCH_START = re.compile(rb"^\d+ FETCH \(")


class ImapError(Exception):
    """A step that failed: what was tried and what the server (or the network) answered."""


@dataclass(frozen=True, slots=True)
class ImapAccount:
    host: str
    port: int
    security: Security
    username: str
    password: str | None = None
    oauth_token: str | None = None
    """An OAuth2 access token: ``AUTHENTICATE XOAUTH2`` instead of ``LOGIN``."""
    ca_pem: str | None = None
    """PEM certificates to trust besides the system's (a private CA, a self-signed server)."""
    verify: bool = True
    allow_plain: bool = False
    """Whether ``none`` may go to a host that is not a loopback address."""
    timeout: float = 30.0


@dataclass(frozen=True, slots=True)
class FolderState:
    folder: str
    uidvalidity: int
    uidnext: int | None
    exists: int
    capabilities: list[str] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class FetchedMail:
    uid: int
    flags: list[str]
    raw: bytes


def is_loopback(host: str) -> bool:
    if host.lower() in ("localhost", "localhost.localdomain"):
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def check_security(host: str, security: str, *, allow_plain: bool) -> None:
    """Refuse what a session would refuse before it connects: an unknown security, or a
    plain connection (passwords in clear) to a host that is not this machine."""
    if security not in SECURITIES:
        raise ImapError(f"security must be one of {', '.join(SECURITIES)}, not {security!r}")
    if security == "none" and not allow_plain and not is_loopback(host):
        raise ImapError(
            f"a plain (unencrypted) connection to {host} is refused: use tls or starttls, "
            "or allow plain connections explicitly"
        )


def _context(account: ImapAccount) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.SERVER_AUTH)
    if account.ca_pem:
        try:
            context.load_verify_locations(cadata=account.ca_pem)
        except (ssl.SSLError, ValueError) as error:
            raise ImapError(f"the trusted certificates are not PEM certificates: {error}") from None
    if not account.verify:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    return context


def _said(response: Any) -> str:
    lines = [
        bytes(line).decode(errors="replace")
        for line in getattr(response, "lines", [])
        if isinstance(line, bytes | bytearray)
    ]
    return " ".join(line.strip() for line in lines if line.strip())[:500] or "(no text)"


def _uid_set(uids: Iterable[int]) -> str:
    return ",".join(str(uid) for uid in uids)


class _Protocol(aioimaplib.IMAP4ClientProtocol):  # type: ignore[misc]
    incomplete_line: bytes
    current_command: Any

    def data_received(self, d: bytes) -> None:
        # aioimaplib's own formats every chunk received into a debug message, whatever the
        # log level: half the time of fetching a mail with a megabyte attached.
        try:
            self._handle_responses(
                self.incomplete_line + d, self._handle_line, self.current_command
            )
            self.incomplete_line = b""
            self.current_command = None
        except aioimaplib.IncompleteRead as incomplete_read:
            self.current_command = incomplete_read.cmd
            self.incomplete_line = incomplete_read.data

    def _continuation(self, line: bytes) -> None:
        command = self.pending_sync_command
        if command is not None and command.name == "AUTHENTICATE":
            # A refused XOAUTH2 token: the server sends its error as a challenge and says NO
            # only after an empty answer (RFC 7628's failure exchange).
            command.append_to_resp(_challenge(line))
            self.transport.write(b"\r\n")
            return
        super()._continuation(line)


def _challenge(line: bytes) -> bytes:
    """An XOAUTH2 error challenge made readable: its base64 JSON decoded."""
    text = line.removeprefix(b"+").strip()
    try:
        return b"(" + base64.b64decode(text, validate=True) + b")"
    except ValueError:
        return text


class _Client(aioimaplib.IMAP4):  # type: ignore[misc]
    """``aioimaplib.IMAP4`` with the protocol above; TLS from the start when given a context."""

    def create_client(
        self,
        host: str,
        port: int,
        loop: asyncio.AbstractEventLoop | None,
        conn_lost_cb: Any = None,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        running = loop if loop is not None else asyncio.get_running_loop()
        self.protocol = _Protocol(running, conn_lost_cb)
        self._client_task = running.create_task(
            running.create_connection(lambda: self.protocol, host, port, ssl=ssl_context)
        )


class ImapSession:
    """One connection, logged in; ``select`` a folder before reading it."""

    def __init__(self, account: ImapAccount) -> None:
        self.account = account
        self.client: aioimaplib.IMAP4 | None = None
        self.state: FolderState | None = None

    @property
    def capabilities(self) -> list[str]:
        return [] if self.client is None else sorted(self.client.protocol.capabilities)

    def has(self, capability: str) -> bool:
        return capability.upper() in (c.upper() for c in self.capabilities)

    async def _step(self, what: str, call: Any) -> Any:
        """Run one step within the timeout; a timeout or a network error says which step."""
        try:
            return await asyncio.wait_for(call, self.account.timeout)
        except TimeoutError:
            raise ImapError(
                f"{what}: no answer from {self.account.host}:{self.account.port} within "
                f"{self.account.timeout:g} s"
            ) from None
        except ImapError:
            raise
        except (OSError, ssl.SSLError, aioimaplib.AioImapException) as error:
            raise ImapError(f"{what}: {type(error).__name__}: {error}") from None

    async def _ok(self, what: str, call: Any) -> Any:
        response = await self._step(what, call)
        if getattr(response, "result", None) != "OK":
            raise ImapError(f"{what}: the server answered {response.result} {_said(response)}")
        return response

    async def open(self) -> None:
        account = self.account
        check_security(account.host, account.security, allow_plain=account.allow_plain)
        where = f"connecting to {account.host}:{account.port}"
        self.client = _Client(
            host=account.host,
            port=account.port,
            timeout=account.timeout,
            ssl_context=_context(account) if account.security == "tls" else None,
        )
        await self._step(where, self.client.wait_hello_from_server())
        if account.security == "starttls":
            await self._starttls()
        await self._login()

    async def _starttls(self) -> None:
        assert self.client is not None
        protocol = self.client.protocol
        if "STARTTLS" not in protocol.capabilities:
            raise ImapError(f"{self.account.host} does not offer STARTTLS")
        command = aioimaplib.Command("STARTTLS", protocol.new_tag(), loop=protocol.loop)
        await self._ok("STARTTLS", protocol.execute(command))
        loop = asyncio.get_running_loop()
        transport = await self._step(
            "the TLS handshake after STARTTLS",
            loop.start_tls(
                protocol.transport,
                protocol,
                _context(self.account),
                server_hostname=self.account.host,
            ),
        )
        protocol.transport = transport
        await self._step("CAPABILITY", protocol.capability())

    async def _login(self) -> None:
        assert self.client is not None
        account = self.account
        if account.oauth_token is not None:
            await self._ok(
                f"AUTHENTICATE XOAUTH2 as {account.username}",
                self.client.xoauth2(account.username, account.oauth_token),
            )
        else:
            await self._ok(
                f"LOGIN as {account.username}",
                self.client.login(account.username, account.password or ""),
            )
        if not any(c.upper().startswith("IMAP4") for c in self.capabilities):
            await self._step("CAPABILITY", self.client.protocol.capability())

    async def select(self, folder: str) -> FolderState:
        assert self.client is not None
        response = await self._ok(f"SELECT {folder}", self.client.select(_quoted(folder)))
        lines = [bytes(line) for line in response.lines if isinstance(line, bytes | bytearray)]
        validity = next((m for line in lines if (m := _UIDVALIDITY.search(line))), None)
        if validity is None:
            raise ImapError(f"SELECT {folder}: the server gave no UIDVALIDITY")
        uidnext = next((m for line in lines if (m := _UIDNEXT.search(line))), None)
        exists = next((m for line in lines if (m := _EXISTS.match(line.strip()))), None)
        self.state = FolderState(
            folder=folder,
            uidvalidity=int(validity.group(1)),
            uidnext=None if uidnext is None else int(uidnext.group(1)),
            exists=0 if exists is None else int(exists.group(1)),
            capabilities=self.capabilities,
        )
        return self.state

    async def new_uids(self, after: int) -> list[int]:
        """The UIDs above ``after``, in order."""
        assert self.client is not None
        response = await self._ok(
            f"UID SEARCH UID {after + 1}:*",
            self.client.uid_search(f"UID {after + 1}:*", charset=None),
        )
        found: set[int] = set()
        for line in response.lines[:-1]:
            text = bytes(line).decode(errors="replace").removeprefix("SEARCH")
            found.update(int(word) for word in text.split() if word.isdigit())
        return sorted(uid for uid in found if uid > after)

    async def fetch(self, uids: Sequence[int]) -> list[FetchedMail]:
        """The messages as they are (``BODY.PEEK[]``) with their flags, in UID order."""
        assert self.client is not None
        if not uids:
            return []
        response = await self._ok(
            f"UID FETCH {_uid_set(uids)}",
            self.client.uid("fetch", _uid_set(uids), "(BODY.PEEK[] FLAGS)"),
        )
        return sorted(_fetched(response.lines[:-1]), key=lambda mail: mail.uid)

    async def mark_seen(self, uids: Sequence[int]) -> None:
        assert self.client is not None
        if uids:
            await self._ok(
                f"UID STORE {_uid_set(uids)} +FLAGS (\\Seen)",
                self.client.uid("store", _uid_set(uids), "+FLAGS", "(\\Seen)"),
            )

    async def move(self, uids: Sequence[int], target: str) -> None:
        """Move the messages to ``target``: ``UID MOVE``, or copy, delete and expunge."""
        assert self.client is not None
        if not uids:
            return
        uid_set, folder = _uid_set(uids), _quoted(target)
        if self.has("MOVE"):
            await self._ok(f"UID MOVE {uid_set} {target}", self.client.uid("move", uid_set, folder))
            return
        await self._ok(f"UID COPY {uid_set} {target}", self.client.uid("copy", uid_set, folder))
        await self._ok(
            f"UID STORE {uid_set} +FLAGS (\\Deleted)",
            self.client.uid("store", uid_set, "+FLAGS", "(\\Deleted)"),
        )
        if self.has("UIDPLUS"):
            await self._ok(f"UID EXPUNGE {uid_set}", self.client.uid("expunge", uid_set))
        else:
            await self._ok("EXPUNGE", self.client.expunge())

    async def idle(self, seconds: float) -> bool:
        """Wait in ``IDLE`` up to ``seconds`` for the server to tell of new mail; whether it
        did (an ``EXISTS``). The folder must be selected and the server have IDLE."""
        assert self.client is not None
        if not self.has("IDLE"):
            raise ImapError(f"{self.account.host} does not offer IDLE")
        idle = await self._step("IDLE", self.client.idle_start(timeout=seconds))
        try:
            pushed = await self.client.wait_server_push(timeout=seconds + self.account.timeout)
        except TimeoutError:
            pushed = []
        finally:
            self.client.idle_done()
        await self._ok("IDLE (DONE)", idle)
        lines = pushed if isinstance(pushed, list) else [pushed]
        return any(
            isinstance(line, bytes | bytearray) and _EXISTS.match(bytes(line).strip())
            for line in lines
        )

    async def close(self) -> None:
        if self.client is None:
            return
        client, self.client = self.client, None
        with contextlib.suppress(Exception):
            if client.get_state() != "LOGOUT":
                await asyncio.wait_for(client.logout(), min(self.account.timeout, 5.0))
        transport = getattr(client.protocol, "transport", None)
        if transport is not None:
            transport.close()


def _quoted(folder: str) -> str:
    if re.fullmatch(r"[A-Za-z0-9_./-]+", folder):
        return folder
    return str(aioimaplib.quoted(folder))


def _fetched(lines: Sequence[Any]) -> list[FetchedMail]:
    """``UID FETCH`` answers: a ``N FETCH (UID u FLAGS (...) BODY[] {n}`` line, the literal,
    then ``)`` (or more items after the literal)."""
    found: list[FetchedMail] = []
    text, raw = b"", None

    def done() -> None:
        uid = _FETCH_UID.search(text)
        if uid is not None and raw is not None:
            flags = _FETCH_FLAGS.search(text)
            names = [] if flags is None else flags.group(1).decode().split()
            found.append(FetchedMail(int(uid.group(1)), names, raw))

    for line in lines:
        if isinstance(line, bytearray):
            raw = bytes(line)
        elif isinstance(line, bytes) and _FETCH_START.match(line):
            done()
            text, raw = line, None
        elif isinstance(line, bytes):
            text += b" " + line
    done()
    return found


@contextlib.asynccontextmanager
async def session(account: ImapAccount) -> AsyncIterator[ImapSession]:
    """A logged-in session, logged out (or dropped) at the end."""
    opened = ImapSession(account)
    try:
        await opened.open()
        yield opened
    finally:
        await opened.close()
