"""Mailboxes: a tenant's IMAP accounts that mail comes in from, and where each is up to."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, Boolean, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from casedesk.store.base import Base, IdMixin, TenantScoped, TimestampMixin


class Mailbox(IdMixin, TimestampMixin, TenantScoped, Base):
    """An IMAP folder polled for new mail; the password or OAuth2 token is sealed.

    The cursor is ``uidvalidity`` + ``last_uid``: the highest UID taken in, valid while the
    folder's UIDVALIDITY stays the same."""

    __tablename__ = "mailboxes"

    name: Mapped[str] = mapped_column(String(200))
    address: Mapped[str] = mapped_column(String(320))
    host: Mapped[str] = mapped_column(String(255))
    port: Mapped[int] = mapped_column(Integer)
    security: Mapped[str] = mapped_column(String(16))
    """tls, starttls or none."""
    tls_verify: Mapped[bool] = mapped_column(Boolean, default=True)
    tls_ca: Mapped[str | None] = mapped_column(Text)
    """PEM certificates trusted besides the system's (a private CA, a self-signed server)."""
    username: Mapped[str] = mapped_column(String(320))
    auth: Mapped[str] = mapped_column(String(16), default="password")
    """password (``LOGIN``) or xoauth2 (``AUTHENTICATE XOAUTH2`` with an access token)."""
    secret_sealed: Mapped[str | None] = mapped_column(Text)
    """The password or the access token, sealed."""
    folder: Mapped[str] = mapped_column(String(255), default="INBOX")
    after_fetch: Mapped[str] = mapped_column(String(16), default="leave")
    """leave, seen (``+FLAGS (\\Seen)``) or move (to ``move_to``)."""
    move_to: Mapped[str | None] = mapped_column(String(255))
    existing_mail: Mapped[str] = mapped_column(String(8), default="import")
    """What the first run on a folder does with the mail already in it: import or skip."""
    poll_seconds: Mapped[int] = mapped_column(Integer, default=60)
    template: Mapped[str] = mapped_column(String(63))
    queue: Mapped[str | None] = mapped_column(String(63))
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    uidvalidity: Mapped[int | None] = mapped_column(BigInteger)
    last_uid: Mapped[int] = mapped_column(BigInteger, default=0)
    last_poll_at: Mapped[datetime | None]
    last_error: Mapped[str | None] = mapped_column(Text)
    last_count: Mapped[int] = mapped_column(Integer, default=0)
    """Messages taken in by the last run."""
    failures: Mapped[int] = mapped_column(Integer, default=0)
    """Consecutive failed runs: how far the next run is put off."""
    smtp_host: Mapped[str | None] = mapped_column(String(255))
    """The outgoing server replies and casedesk's own mail go through; none: no mail goes out."""
    smtp_port: Mapped[int | None] = mapped_column(Integer)
    smtp_security: Mapped[str | None] = mapped_column(String(16))
    """tls, starttls or none."""
    smtp_username: Mapped[str | None] = mapped_column(String(320))
    """None: the IMAP username."""
    smtp_secret_sealed: Mapped[str | None] = mapped_column(Text)
    """The SMTP password or token, sealed; none: the IMAP one."""
    from_name: Mapped[str | None] = mapped_column(String(200))
    dkim_selector: Mapped[str | None] = mapped_column(String(63))
    dkim_key_sealed: Mapped[str | None] = mapped_column(Text)
    """The DKIM private key (PEM), sealed; mail is signed for the address's domain."""
    acknowledge: Mapped[bool] = mapped_column(Boolean, default=True)
    """A mail that opens a case is answered with the "case received" notification."""
    notifications: Mapped[bool] = mapped_column(Boolean, default=False)
    """The tenant's own mail (invitations, password resets, portal sign-in links, "solved")
    goes out through this mailbox; at most one of a tenant's has it."""
