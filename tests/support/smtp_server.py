"""A real SMTP server on loopback (aiosmtpd) that keeps what it is given.

It speaks SMTP as submission servers do: EHLO, STARTTLS (required when asked for), implicit
TLS, ``AUTH PLAIN`` / ``LOGIN`` and ``XOAUTH2`` (RFC 7628's SASL string), and answers a
recipient whose local part says so with the code a real server would give (``refuse-550@``,
``busy-450@``), so that refusals come from the wire, not from a mock.
"""

from __future__ import annotations

import base64
import socket
import ssl
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session

from tests.support.tls import self_signed

USER, PASSWORD, TOKEN = "desk@example.test", "mail-secret", "ya29.token-for-desk"


@dataclass
class Received:
    mail_from: str
    rcpt_tos: list[str]
    content: bytes


@dataclass
class Keeper:
    """The handler: keeps each message, refuses the recipients named for it."""

    messages: list[Received] = field(default_factory=list)

    async def handle_RCPT(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, _: Any
    ) -> str:
        local = address.split("@", 1)[0]
        if local.startswith("refuse-550"):
            return "550 5.1.1 No such user here"
        if local.startswith("busy-450"):
            return "450 4.2.1 Mailbox busy, try again later"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        content = envelope.original_content or b""
        self.messages.append(Received(str(envelope.mail_from), list(envelope.rcpt_tos), content))
        return "250 2.0.0 Message accepted for delivery"

    async def auth_XOAUTH2(self, server: SMTP, args: list[str]) -> AuthResult:
        """RFC 7628 / Google's XOAUTH2: ``user=U^Aauth=Bearer T^A^A``, base64."""
        if len(args) < 2:
            return AuthResult(success=False, handled=False)
        try:
            said = base64.b64decode(args[1]).decode()
        except ValueError:
            return AuthResult(success=False, handled=False)
        fields = dict(part.split("=", 1) for part in said.split("\x01") if "=" in part)
        ok = fields.get("user") == USER and fields.get("auth") == f"Bearer {TOKEN}"
        return AuthResult(success=ok, handled=False, auth_data=fields.get("user"))


def _authenticate(
    server: SMTP, session: Session, envelope: Envelope, mechanism: str, data: Any
) -> AuthResult:
    if isinstance(data, LoginPassword):
        ok = data.login.decode() == USER and data.password.decode() == PASSWORD
        return AuthResult(success=ok, handled=False)  # not handled: the server says 535
    return AuthResult(success=False, handled=False)


def _port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@dataclass
class SmtpTestServer:
    port: int
    keeper: Keeper
    ca_pem: str

    @property
    def messages(self) -> list[Received]:
        return self.keeper.messages


@contextmanager
def smtp_server(
    directory: Path,
    *,
    mode: str = "starttls",
    auth: bool = True,
) -> Iterator[SmtpTestServer]:
    """``mode``: ``starttls`` (offered and required before AUTH and MAIL), ``tls`` (implicit)
    or ``none`` (no TLS at all)."""
    cert, key = self_signed(directory)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    keeper = Keeper()
    port = _port()
    options: dict[str, Any] = {}
    if auth:
        # Implicit TLS is not STARTTLS to aiosmtpd, which would then refuse AUTH as unencrypted.
        options.update(authenticator=_authenticate, auth_require_tls=mode == "starttls")
    if mode == "starttls":
        options.update(tls_context=context, require_starttls=True)
    controller = Controller(
        keeper,
        hostname="127.0.0.1",
        port=port,
        ssl_context=context if mode == "tls" else None,
        server_hostname="localhost",
        **options,
    )
    controller.start()
    try:
        yield SmtpTestServer(port, keeper, cert.read_text())
    finally:
        controller.stop()
