"""The IMAP client against dovecot itself: searching past the last UID, fetching in order,
the move without MOVE (copy, delete, expunge), and a server that never answers."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from casedesk.integrations.imap import ImapAccount, ImapError, session
from tests.support.dovecot import Dovecot, message


def _account(dovecot: Dovecot, user: str, **overrides: object) -> ImapAccount:
    fields: dict[str, object] = {
        "host": dovecot.host,
        "port": dovecot.tls_port,
        "security": "tls",
        "username": user,
        "password": dovecot.password,
        "ca_pem": dovecot.ca_file.read_text(),
        "timeout": 10.0,
    }
    fields.update(overrides)
    return ImapAccount(**fields)  # type: ignore[arg-type]


async def test_search_fetch_and_the_move_without_the_move_command(dovecot: Dovecot) -> None:
    user = dovecot.fresh_user()
    for subject in ("one", "two", "three"):
        await asyncio.to_thread(dovecot.append, message(subject), user=user)
    await asyncio.to_thread(dovecot.create, "Archive", user=user)
    async with session(_account(dovecot, user)) as opened:
        state = await opened.select("INBOX")
        assert (state.exists, state.uidnext) == (3, 4)
        assert await opened.new_uids(0) == [1, 2, 3]
        assert await opened.new_uids(1) == [2, 3]
        assert await opened.new_uids(3) == []  # "4:*" names the last message: dropped
        fetched = await opened.fetch([3, 1])
        assert [mail.uid for mail in fetched] == [1, 3]
        assert b"Subject: one" in fetched[0].raw
        assert all("\\Seen" not in mail.flags for mail in fetched)  # BODY.PEEK
        opened.client.protocol.capabilities.discard("MOVE")  # type: ignore[union-attr]
        assert not opened.has("MOVE")
        await opened.move([1, 2], "Archive")
    assert [uid for uid, _ in dovecot.folder("INBOX", user=user)] == [3]
    assert len(dovecot.folder("Archive", user=user)) == 2


@pytest.fixture
async def silent_port() -> AsyncIterator[int]:
    """A server that takes connections and never says a word."""

    async def hold(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read()
        writer.close()

    server = await asyncio.start_server(hold, "127.0.0.1", 0)
    yield server.sockets[0].getsockname()[1]
    server.close()
    await server.wait_closed()


async def test_a_server_that_never_greets_times_out_saying_so(
    dovecot: Dovecot, silent_port: int
) -> None:
    account = _account(dovecot, "x", port=silent_port, security="none", timeout=0.5, ca_pem=None)
    with pytest.raises(ImapError, match=r"connecting to 127.0.0.1:\d+: no answer .* within 0.5 s"):
        async with session(account):
            pass
