from __future__ import annotations

import pytest

from tests.support.cases import Desk
from tests.support.dovecot import Dovecot
from tests.support.mailboxes import MailDesk


@pytest.fixture
def mail_desk(desk: Desk, dovecot: Dovecot) -> MailDesk:
    """A desk and a mail user of its own on the test dovecot (no mailbox yet)."""
    return MailDesk(desk, dovecot, dovecot.fresh_user())
