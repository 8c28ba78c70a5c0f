"""People's passwords: argon2id hashes, the policy a new password meets, and the throttle
on failed sign-ins.

A password is only ever compared through its hash; a wrong workspace, an unknown address
and a wrong password are one answer, so the sign-in form tells nobody who has an account.
After ``FREE_FAILURES`` failures in a row an account waits before the next try, twice as
long each time, up to ``LONGEST_WAIT``; a right password resets the count.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

MIN_LENGTH = 10
MAX_LENGTH = 256
FREE_FAILURES = 5
FIRST_WAIT = timedelta(seconds=30)
LONGEST_WAIT = timedelta(minutes=15)

_hasher = PasswordHasher()
# Verified when the address is unknown, so an unknown address costs as long as a known one.
_NOBODY = _hasher.hash("casedesk: nobody has this password")


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def verify_password(password_hash: str | None, password: str) -> bool:
    """Whether ``password`` is the one behind ``password_hash`` (none: never, at the same cost)."""
    try:
        return _hasher.verify(password_hash or _NOBODY, password) and password_hash is not None
    except (VerificationError, InvalidHashError):
        return False


def needs_rehash(password_hash: str) -> bool:
    return _hasher.check_needs_rehash(password_hash)


def password_problem(password: str, email: str) -> str | None:
    """What is wrong with ``password`` as a new password, or None."""
    if len(password) < MIN_LENGTH:
        return f"a password has at least {MIN_LENGTH} characters"
    if len(password) > MAX_LENGTH:
        return f"a password has at most {MAX_LENGTH} characters"
    if password.strip().casefold() in (email.casefold(), email.split("@")[0].casefold()):
        return "a password cannot be your e-mail address"
    if len(set(password)) < 4:
        return "a password needs more than three different characters"
    return None


def blocked_until(failures: int, now: datetime) -> datetime | None:
    """When an account with ``failures`` failed sign-ins in a row may try again."""
    if failures < FREE_FAILURES:
        return None
    wait: timedelta = FIRST_WAIT * 2 ** min(failures - FREE_FAILURES, 10)
    return now + min(wait, LONGEST_WAIT)
