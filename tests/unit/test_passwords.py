"""Passwords: argon2id hashes, the rule a new one meets, and the wait after failures."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from casedesk.domain.identity import passwords


def test_a_hash_verifies_its_password_only() -> None:
    hashed = passwords.hash_password("correct horse battery")
    assert hashed.startswith("$argon2id$")
    assert passwords.verify_password(hashed, "correct horse battery")
    assert not passwords.verify_password(hashed, "correct horse batterY")
    assert not passwords.verify_password(None, "correct horse battery")
    assert not passwords.verify_password("not a hash", "x")


def test_a_new_password_meets_the_rule() -> None:
    assert passwords.password_problem("short", "ann@example.com") is not None
    assert passwords.password_problem("ann@example.com", "ann@example.com") is not None
    assert passwords.password_problem("aaaaaaaaaaaa", "ann@example.com") is not None
    assert passwords.password_problem("x" * 257, "ann@example.com") is not None
    assert passwords.password_problem("correct horse battery", "ann@example.com") is None


def test_the_wait_doubles_after_the_free_failures_up_to_a_limit() -> None:
    now = datetime(2026, 1, 1, tzinfo=UTC)
    free = passwords.FREE_FAILURES
    assert passwords.blocked_until(free - 1, now) is None
    assert passwords.blocked_until(free, now) == now + timedelta(seconds=30)
    assert passwords.blocked_until(free + 1, now) == now + timedelta(seconds=60)
    assert passwords.blocked_until(free + 50, now) == now + passwords.LONGEST_WAIT
