"""A private dovecot for the mailbox tests: its own config, ports, certificate and users.

The ``dovecot`` session fixture installs Debian's ``dovecot-imapd`` when ``/usr/sbin/dovecot``
is missing, then starts an instance of its own (no systemd) that listens on 127.0.0.1 only:
one port for plain IMAP and STARTTLS, one for IMAPS, with a self-signed certificate made
here (trusted by the tests through ``Dovecot.ca_file``). Every user name logs in with the one test password (a static passdb); mail
is kept as maildirs under the instance's directory. Tests put mail in with IMAP ``APPEND``
through ``Dovecot.append`` (Python's ``imaplib``, synchronous) and can reset a folder's
UIDVALIDITY by deleting and recreating it.
"""

from __future__ import annotations

import base64
import email.utils
import hashlib
import hmac
import imaplib
import json
import os
import shutil
import socket
import ssl
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.support.backends import unavailable
from tests.support.tls import self_signed

DOVECOT = Path("/usr/sbin/dovecot")
USER = "alice@example.com"
PASSWORD = "open-sesame"


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def _install() -> None:
    if DOVECOT.exists():
        return
    install = ["apt-get", "install", "-y", "dovecot-imapd"]
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    if subprocess.run(install, capture_output=True, env=env).returncode != 0:
        subprocess.run(["apt-get", "update"], capture_output=True, env=env)
        subprocess.run(install, capture_output=True, env=env)


CONFIG = """\
base_dir = {root}/run
state_dir = {root}/state
log_path = {root}/dovecot.log
protocols = imap
listen = 127.0.0.1
ssl = yes
ssl_cert = <{cert}
ssl_key = <{key}
ssl_dh =
disable_plaintext_auth = no
auth_mechanisms = plain login xoauth2
auth_failure_delay = 0
auth_verbose = yes
mail_location = maildir:{root}/mail/%u
first_valid_uid = 1
passdb {{
  driver = static
  args = password={password}
  mechanisms = plain login
}}
passdb {{
  driver = oauth2
  mechanisms = xoauth2
  args = {root}/oauth2.conf.ext
}}
userdb {{
  driver = static
  args = uid=nobody gid=nogroup home={root}/mail/%u
}}
service imap-login {{
  chroot =
  inet_listener imap {{
    port = {port}
  }}
  inet_listener imaps {{
    port = {tls_port}
    ssl = yes
  }}
}}
service anvil {{
  chroot =
}}
"""


OAUTH2 = """\
introspection_mode = local
local_validation_key_dict = fs:posix:prefix={root}/keys/
username_attribute = email
"""
OAUTH2_KEY = b"casedesk-test-token-signing-key-0123456789"
"""The HS256 key dovecot checks access tokens with (``Dovecot.access_token`` signs them)."""


def _oauth2(root: Path) -> None:
    (root / "oauth2.conf.ext").write_text(OAUTH2.format(root=root))
    for where in ("default", "shared/default"):
        keys = root / "keys" / where / "HS256"
        keys.mkdir(parents=True)
        (keys / "default").write_text(base64.b64encode(OAUTH2_KEY).decode())


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


@dataclass
class Dovecot:
    root: Path
    port: int
    """Plain IMAP and STARTTLS."""
    tls_port: int
    """IMAPS."""
    ca_file: Path
    user: str = USER
    password: str = PASSWORD
    host: str = "127.0.0.1"

    def _login(self, user: str | None = None) -> imaplib.IMAP4:
        imap = imaplib.IMAP4(self.host, self.port, timeout=10)
        imap.login(user or self.user, self.password)
        return imap

    def access_token(self, user: str, *, seconds: int = 600) -> str:
        """An OAuth2 access token (a JWT signed with HS256) that dovecot takes for ``user``."""
        header = _b64(json.dumps({"alg": "HS256", "typ": "JWT"}).encode())
        now = int(time.time())
        claims = _b64(
            json.dumps({"sub": user, "email": user, "iat": now - 5, "exp": now + seconds}).encode()
        )
        signature = hmac.new(OAUTH2_KEY, f"{header}.{claims}".encode(), hashlib.sha256)
        return f"{header}.{claims}.{_b64(signature.digest())}"

    def fresh_user(self) -> str:
        """A new mail user: any name logs in with the password, to a mailbox of its own."""
        return f"u{uuid.uuid4().hex[:10]}@example.com"

    def append(self, raw: bytes, *, user: str | None = None, folder: str = "INBOX") -> None:
        imap = self._login(user)
        try:
            status, answer = imap.append(folder, None, None, raw)
            assert status == "OK", answer
        finally:
            imap.logout()

    def create(self, folder: str, *, user: str | None = None) -> None:
        imap = self._login(user)
        try:
            imap.create(folder)
        finally:
            imap.logout()

    def folder(self, folder: str, *, user: str | None = None) -> list[tuple[int, str]]:
        """The messages of a folder: (UID, flags) of each."""
        imap = self._login(user)
        try:
            imap.select(folder)
            status, lines = imap.uid("FETCH", "1:*", "(FLAGS)")
            assert status == "OK", lines
            found = []
            for line in lines:
                if not isinstance(line, bytes) or b"UID" not in line:
                    continue
                text = line.decode()
                uid = int(text.split("UID ", 1)[1].split()[0].rstrip(")"))
                flags = text.split("FLAGS (", 1)[1].split(")", 1)[0]
                found.append((uid, flags))
            return sorted(found)
        finally:
            imap.logout()

    def uidvalidity(self, folder: str = "INBOX", *, user: str | None = None) -> int:
        imap = self._login(user)
        try:
            status, answer = imap.status(folder, "(UIDVALIDITY)")
            assert status == "OK", answer
            return int(answer[0].decode().split("UIDVALIDITY ", 1)[1].rstrip(")"))  # type: ignore[union-attr]
        finally:
            imap.logout()

    def recreate(self, folder: str, *, user: str | None = None) -> None:
        """Delete the folder and make it again: it gets a new UIDVALIDITY, empty."""
        before = self.uidvalidity(folder, user=user)
        imap = self._login(user)
        try:
            if folder.upper() == "INBOX":
                # INBOX cannot be deleted over IMAP: remove its maildir instead.
                imap.logout()
                shutil.rmtree(self.root / "mail" / (user or self.user))
                imap = self._login(user)
            else:
                imap.delete(folder)
                imap.create(folder)
        finally:
            imap.logout()
        while self.uidvalidity(folder, user=user) == before:
            time.sleep(0.2)  # UIDVALIDITY is a timestamp: a second later it differs
            self.recreate(folder, user=user)


def message(
    subject: str,
    *,
    sender: str = "Carol Customer <carol@example.net>",
    body: str = "Hello, my printer is on fire.",
    message_id: str | None = "auto",
    headers: dict[str, str] | None = None,
) -> bytes:
    """A plain-text mail as the tests append it."""
    lines = [
        f"From: {sender}",
        f"To: {USER}",
        f"Subject: {subject}",
        f"Date: {email.utils.formatdate()}",
    ]
    if message_id == "auto":
        message_id = f"<{uuid.uuid4().hex}@example.net>"
    if message_id is not None:
        lines.append(f"Message-ID: {message_id}")
    lines.extend(f"{name}: {value}" for name, value in (headers or {}).items())
    lines.extend(["MIME-Version: 1.0", "Content-Type: text/plain; charset=utf-8", "", body, ""])
    return "\r\n".join(lines).encode()


def _wait(process: subprocess.Popen[bytes], ports: tuple[int, ...], log: Path) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            break
        if all(_open(port) for port in ports):
            return
        time.sleep(0.1)
    text = log.read_text() if log.exists() else ""
    unavailable("dovecot", f"it did not start: {text[-2000:]}")


def _open(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False


@pytest.fixture(scope="session")
def dovecot() -> Iterator[Dovecot]:
    with running_dovecot() as server:
        yield server


@contextmanager
def running_dovecot() -> Iterator[Dovecot]:
    """A private dovecot for as long as the block runs (the fixture's, and the mail bench's)."""
    _install()
    if not DOVECOT.exists():
        unavailable("dovecot", "dovecot-imapd could not be installed")
    # Not under pytest's 0700 temp dirs: dovecot's mail processes run as nobody.
    root = Path(tempfile.mkdtemp(prefix="casedesk-dovecot-"))
    root.chmod(0o755)
    (root / "mail").mkdir()
    shutil.chown(root / "mail", "nobody", "nogroup")
    cert, key = self_signed(root)
    _oauth2(root)
    port, tls_port = _free_port(), _free_port()
    config = root / "dovecot.conf"
    config.write_text(
        CONFIG.format(
            root=root, cert=cert, key=key, port=port, tls_port=tls_port, password=PASSWORD
        )
    )
    process = subprocess.Popen([str(DOVECOT), "-F", "-c", str(config)])
    try:
        _wait(process, (port, tls_port), root / "dovecot.log")
        yield Dovecot(root, port, tls_port, cert)
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
        shutil.rmtree(root, ignore_errors=True)


def trusting(ca_file: Path) -> ssl.SSLContext:
    return ssl.create_default_context(cafile=str(ca_file))
