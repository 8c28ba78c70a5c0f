"""Sending mail over SMTP: a mailbox's outgoing server, casedesk's own mail, DKIM.

``send`` hands one RFC 5322 message (``mail.compose_reply`` writes them) to a submission
server with ``aiosmtplib``: implicit TLS (port 465), STARTTLS (587, required when asked for:
a server that does not offer it is an error, never a silent fallback to plain text) or none
(port 25 to a relay inside the network). It authenticates with a password (``AUTH PLAIN`` /
``LOGIN``, as the server offers) or an OAuth2 access token (``AUTH XOAUTH2``), never over a
connection in clear text unless the server is on loopback. With a ``DkimKey`` the message is
signed (``dkimpy``, relaxed/relaxed, the headers a verifier checks) before it leaves.

Every failure is an ``SmtpFailed`` that says what the server answered and whether trying
again can help: a 4xx reply, a refused connection or a timeout is ``transient``; a 5xx reply
(a refused recipient, a rejected message, failed authentication) is not, since the same
message would be refused again. ``check`` is the "test the connection" of the mailbox
settings: it connects, authenticates and reports what the server said, sending nothing.

Given a ``SendTrace``, ``send`` leaves one trace record per submission in the action trace
(``traces.smtp``): the server, the envelope, the message's headers, its size and SHA-256
(never its text), the server's answer or the failure, and the time it took; the login is
never part of it.
"""

from __future__ import annotations

import base64
import ipaddress
import ssl
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal

import aiosmtplib
import dkim
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, rsa

from casedesk.kit.clock import utcnow
from casedesk.kit.tracing import TraceContext, new_trace
from casedesk.traces.records import CallOrigin, TraceRecorder
from casedesk.traces.smtp import Outcome, Submission, smtp_record

Security = Literal["tls", "starttls", "none"]
SIGNED_HEADERS = (
    b"from",
    b"to",
    b"cc",
    b"subject",
    b"date",
    b"message-id",
    b"in-reply-to",
    b"references",
    b"mime-version",
    b"content-type",
    b"auto-submitted",
)
"""The headers a DKIM signature covers, when the message has them."""


@dataclass(frozen=True, slots=True)
class SmtpServer:
    """Where and how to submit mail."""

    host: str
    port: int
    security: Security = "starttls"
    username: str | None = None
    secret: str | None = field(default=None, repr=False)
    """The password, or the OAuth2 access token when ``auth`` is ``xoauth2``."""
    auth: Literal["password", "xoauth2"] = "password"
    tls_verify: bool = True
    tls_ca: str | None = None
    """PEM certificates trusted besides the system's (a private CA, a self-signed server)."""
    timeout: float = 30.0
    local_hostname: str | None = None
    """The name said in EHLO (none: this machine's name)."""


@dataclass(frozen=True, slots=True)
class DkimKey:
    domain: str
    selector: str
    private_key: bytes = field(repr=False)
    """PEM (PKCS#1 or PKCS#8): an RSA or an Ed25519 private key."""


@dataclass(frozen=True, slots=True)
class Accepted:
    """What the server said when it took the message."""

    recipients: list[str]
    refused: dict[str, str]
    """Recipients the server refused while taking the message for the others."""
    answer: str


@dataclass(frozen=True, slots=True)
class ServerAnswer:
    """What ``check`` learnt: the greeting, the extensions offered, the login's outcome."""

    greeting: str
    extensions: list[str]
    authenticated: bool
    tls: bool


@dataclass(frozen=True, slots=True)
class SendTrace:
    """Where a submission's trace record goes and whose call it is: the record is a span
    under ``parent`` (the job's trace context), so it shows with the job's other calls."""

    recorder: TraceRecorder
    origin: CallOrigin
    parent: TraceContext | None = None
    attempt: int = 1


class SmtpFailed(Exception):
    """The server refused, or could not be reached; ``answer`` is what it said."""

    def __init__(self, answer: str, *, transient: bool, code: int | None = None) -> None:
        super().__init__(answer)
        self.answer = answer
        self.transient = transient
        self.code = code


def sign(raw: bytes, key: DkimKey) -> bytes:
    """The message with a ``DKIM-Signature`` header in front."""
    present = {name.lower() for name in _header_names(raw)}
    headers = [name for name in SIGNED_HEADERS if name.decode() in present]
    try:
        private, algorithm = _dkim_key(key.private_key)
        signature = dkim.sign(
            raw,
            key.selector.encode("ascii"),
            key.domain.encode("ascii"),
            private,
            canonicalize=(b"relaxed", b"relaxed"),
            include_headers=headers,
            signature_algorithm=algorithm,
        )
    except (dkim.DKIMException, ValueError, TypeError) as exc:
        raise SmtpFailed(f"the DKIM key cannot sign: {exc}", transient=False) from None
    return bytes(signature) + raw


def _dkim_key(pem: bytes) -> tuple[bytes, bytes]:
    """The key as dkimpy takes it, and its algorithm: RSA as PEM, Ed25519 (RFC 8463) as its
    32 raw bytes in base64."""
    loaded = serialization.load_pem_private_key(pem, password=None)
    if isinstance(loaded, ed25519.Ed25519PrivateKey):
        raw = loaded.private_bytes(
            serialization.Encoding.Raw,
            serialization.PrivateFormat.Raw,
            serialization.NoEncryption(),
        )
        return base64.b64encode(raw), b"ed25519-sha256"
    if not isinstance(loaded, rsa.RSAPrivateKey):
        raise ValueError("a DKIM key is RSA or Ed25519")
    return pem, b"rsa-sha256"


def _header_names(raw: bytes) -> list[str]:
    head = raw.split(b"\r\n\r\n", 1)[0].split(b"\n\n", 1)[0]
    names = []
    for line in head.splitlines():
        if line[:1] in (b" ", b"\t") or b":" not in line:
            continue
        names.append(line.split(b":", 1)[0].strip().decode("ascii", errors="replace"))
    return names


async def send(
    server: SmtpServer,
    raw: bytes,
    *,
    sender: str,
    recipients: Sequence[str],
    dkim_key: DkimKey | None = None,
    trace: SendTrace | None = None,
) -> Accepted:
    """Submit ``raw`` from ``sender`` (the envelope's MAIL FROM) to ``recipients``; with
    ``trace``, the submission leaves one record in the action trace, whatever its outcome."""
    started_at, started = utcnow(), time.perf_counter()
    message = raw
    try:
        if dkim_key is not None:
            message = sign(raw, dkim_key)
        accepted = await _submit(server, message, sender=sender, recipients=recipients)
    except SmtpFailed as failed:
        if trace is not None:
            outcome = Outcome(
                code=failed.code, answer=failed.answer, refused={}, failure=failed.answer
            )
            _record(trace, server, message, sender, recipients, outcome, started_at, started)
        raise
    if trace is not None:
        outcome = Outcome(code=250, answer=accepted.answer, refused=accepted.refused, failure=None)
        _record(trace, server, message, sender, recipients, outcome, started_at, started)
    return accepted


async def _submit(
    server: SmtpServer, message: bytes, *, sender: str, recipients: Sequence[str]
) -> Accepted:
    if not recipients:
        raise SmtpFailed("the message has no recipient", transient=False)
    client = _client(server)
    try:
        async with _session(client, server):
            refused, answer = await client.sendmail(sender, list(recipients), message)
    except aiosmtplib.SMTPRecipientsRefused as exc:
        said = "; ".join(f"{r.recipient}: {r.code} {r.message}" for r in exc.recipients)
        raise SmtpFailed(
            f"every recipient was refused: {said}",
            transient=_all_transient(exc),
            code=max((r.code for r in exc.recipients), default=None),
        ) from None
    except aiosmtplib.SMTPResponseException as exc:
        raise _failed(exc) from None
    except (aiosmtplib.SMTPException, OSError, TimeoutError) as exc:
        raise _unreachable(server, exc) from None
    return Accepted(
        recipients=[r for r in recipients if r not in refused],
        refused={r: f"{response.code} {response.message}" for r, response in refused.items()},
        answer=answer,
    )


def _record(
    trace: SendTrace,
    server: SmtpServer,
    message: bytes,
    sender: str,
    recipients: Sequence[str],
    outcome: Outcome,
    started_at: datetime,
    started: float,
) -> None:
    parent = trace.parent
    span = (parent or new_trace()).child()
    submission = Submission(
        host=server.host,
        port=server.port,
        security=server.security,
        auth=server.auth if server.username is not None else "none",
        username=server.username,
        sender=sender,
        recipients=list(recipients),
        message=message,
    )
    trace.recorder.append(
        smtp_record(
            origin=trace.origin,
            span=span,
            parent_span_id=None if parent is None else parent.span_id,
            attempt=trace.attempt,
            submission=submission,
            outcome=outcome,
            started_at=started_at,
            duration_ms=(time.perf_counter() - started) * 1000,
        )
    )


async def check(server: SmtpServer) -> ServerAnswer:
    """Connect, secure and authenticate as ``send`` would; nothing is sent."""
    client = _client(server)
    try:
        async with _session(client, server):
            said = client.last_ehlo_response
            lines = [] if said is None else said.message.splitlines()
            return ServerAnswer(
                greeting=f"{said.code} {lines[0]}" if said is not None and lines else "",
                extensions=sorted(line.split()[0].upper() for line in lines[1:] if line.split()),
                authenticated=server.username is not None,
                tls=server.security != "none",
            )
    except aiosmtplib.SMTPResponseException as exc:
        raise _failed(exc) from None
    except (aiosmtplib.SMTPException, OSError, TimeoutError) as exc:
        raise _unreachable(server, exc) from None


def _client(server: SmtpServer) -> aiosmtplib.SMTP:
    encrypted = server.security != "none"
    return aiosmtplib.SMTP(
        hostname=server.host,
        port=server.port,
        use_tls=server.security == "tls",
        start_tls=False,  # asked for explicitly in _session, so that it is never skipped
        tls_context=_tls_context(server) if encrypted else None,
        timeout=server.timeout,
        local_hostname=server.local_hostname,
    )


class _session:
    """Connected, STARTTLS done when asked for, logged in; QUIT on the way out."""

    def __init__(self, client: aiosmtplib.SMTP, server: SmtpServer) -> None:
        self.client = client
        self.server = server

    async def __aenter__(self) -> aiosmtplib.SMTP:
        client, server = self.client, self.server
        if server.username is not None and server.security == "none" and not _loopback(server.host):
            raise SmtpFailed(
                "casedesk does not send a password over a connection in clear text; choose "
                "security 'tls' or 'starttls'",
                transient=False,
            )
        await client.connect()
        try:
            await client.ehlo()
            if server.security == "starttls":
                if not client.supports_extension("starttls"):
                    raise SmtpFailed(
                        f"{server.host}:{server.port} does not offer STARTTLS; choose "
                        "security 'tls' (port 465) or a server that offers it",
                        transient=False,
                    )
                await client.starttls(tls_context=_tls_context(server))
                await client.ehlo()
            if server.username is not None:
                await self._login()
        except BaseException:
            client.close()
            raise
        return client

    async def _login(self) -> None:
        client, server = self.client, self.server
        if server.secret is None:
            raise SmtpFailed("the outgoing server needs a password or a token", transient=False)
        try:
            if server.auth == "xoauth2":
                await client.auth_xoauth2(server.username or "", server.secret)
            else:
                await _password_login(client, server.username or "", server.secret)
        except aiosmtplib.SMTPAuthenticationError as exc:
            raise SmtpFailed(
                f"the server refused the login: {exc.code} {exc.message}",
                transient=False,
                code=exc.code,
            ) from None
        except aiosmtplib.SMTPException as exc:
            raise SmtpFailed(f"the login failed: {exc}", transient=False) from None

    async def __aexit__(self, *_: object) -> None:
        try:
            await self.client.quit()
        except (aiosmtplib.SMTPException, OSError, TimeoutError):
            self.client.close()


async def _password_login(client: aiosmtplib.SMTP, username: str, password: str) -> None:
    """One login with the first mechanism both sides know (PLAIN, LOGIN, CRAM-MD5): a
    refused password is not tried again with the next, which would only count as more
    failed logins against the account."""
    offered = client.supported_auth_methods
    for mechanism, login in (
        ("plain", client.auth_plain),
        ("login", client.auth_login),
        ("cram-md5", client.auth_crammd5),
    ):
        if mechanism in offered:
            await login(username, password)
            return
    raise SmtpFailed(
        f"the server offers no password login casedesk knows (it offers: "
        f"{', '.join(offered) or 'none'})",
        transient=False,
    )


def _tls_context(server: SmtpServer) -> ssl.SSLContext:
    context = ssl.create_default_context()
    if server.tls_ca:
        context.load_verify_locations(cadata=server.tls_ca)
    if not server.tls_verify:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    return context


def _loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _failed(exc: aiosmtplib.SMTPResponseException) -> SmtpFailed:
    return SmtpFailed(
        f"the server answered {exc.code} {exc.message}",
        transient=400 <= exc.code < 500,
        code=exc.code,
    )


def _all_transient(exc: aiosmtplib.SMTPRecipientsRefused) -> bool:
    return all(400 <= r.code < 500 for r in exc.recipients)


def _unreachable(server: SmtpServer, exc: BaseException) -> SmtpFailed:
    what = str(exc) or type(exc).__name__
    return SmtpFailed(f"{server.host}:{server.port} could not be reached: {what}", transient=True)
