"""The IMAP client's own rules: which connections it refuses, how it reads FETCH answers."""

from __future__ import annotations

import pytest

from casedesk.integrations.imap import ImapError, _fetched, check_security, is_loopback


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost", "::1", "[::1]", "127.0.0.53"])
def test_loopback_hosts(host: str) -> None:
    assert is_loopback(host)
    check_security(host, "none", allow_plain=False)


@pytest.mark.parametrize("host", ["imap.example.com", "10.0.0.1", "192.168.1.5"])
def test_plain_to_another_host_is_refused_unless_allowed(host: str) -> None:
    with pytest.raises(ImapError, match="plain \\(unencrypted\\) connection"):
        check_security(host, "none", allow_plain=False)
    check_security(host, "none", allow_plain=True)
    check_security(host, "tls", allow_plain=False)
    check_security(host, "starttls", allow_plain=False)


def test_an_unknown_security_is_refused() -> None:
    with pytest.raises(ImapError, match="security must be one of"):
        check_security("127.0.0.1", "ssl", allow_plain=True)


def test_fetch_answers_with_items_before_and_after_the_literal() -> None:
    lines = [
        b"1 FETCH (UID 7 FLAGS (\\Seen \\Flagged) BODY[] {5}",
        bytearray(b"hello"),
        b")",
        b"2 FETCH (UID 9 BODY[] {3}",
        bytearray(b"abc"),
        b" FLAGS ())",
        b"3 FETCH (FLAGS (\\Seen) UID 10)",  # a flags update without a body: no message
    ]
    found = _fetched(lines)
    assert [(m.uid, m.flags, m.raw) for m in found] == [
        (7, ["\\Seen", "\\Flagged"], b"hello"),
        (9, [], b"abc"),
    ]
