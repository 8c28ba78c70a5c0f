"""Browser sessions and one-time links: random tokens, kept as SHA-256.

The cookie holds a session's token and the database only its hash, as for API keys: 256
bits of randomness make a fast hash as safe as a slow one, and a request resolves its
session with one indexed lookup. A session ends after ``IDLE`` without a request or
``LIFETIME`` after sign-in, whichever comes first, or when its user signs out (of it, or
everywhere). A one-time link sets a password once, within ``LINK_LIFETIME``.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

IDLE = timedelta(hours=12)
LIFETIME = timedelta(days=14)
TOUCH_EVERY = timedelta(minutes=5)
INVITE_LIFETIME = timedelta(days=7)
RESET_LIFETIME = timedelta(hours=2)
PURPOSES = ("invite", "reset")


@dataclass(frozen=True, slots=True)
class Token:
    plaintext: str
    token_hash: str


def hash_token(plaintext: str) -> str:
    return hashlib.sha256(plaintext.encode()).hexdigest()


def new_token() -> Token:
    plaintext = secrets.token_urlsafe(32)
    return Token(plaintext=plaintext, token_hash=hash_token(plaintext))


def looks_like_token(value: str) -> bool:
    return 40 <= len(value) <= 64 and all(c.isalnum() or c in "-_" for c in value)


def session_ended(
    *, now: datetime, created_at: datetime, last_seen_at: datetime, revoked_at: datetime | None
) -> str | None:
    """Why a session no longer signs its user in, or None."""
    if revoked_at is not None:
        return "signed out"
    if now - created_at >= LIFETIME:
        return "the session is too old"
    if now - last_seen_at >= IDLE:
        return "the session was idle too long"
    return None


def link_lifetime(purpose: str) -> timedelta:
    return INVITE_LIFETIME if purpose == "invite" else RESET_LIFETIME


PORTAL_LINK_LIFETIME = timedelta(minutes=30)
"""How long a customer's sign-in link works: long enough to reach a mailbox, no longer."""
PORTAL_LINK_EVERY = timedelta(seconds=60)
"""A customer gets at most one new sign-in link this often."""
