"""What the worker tests share: the automation consumer, delivering on demand."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from casedesk.bootstrap import Container
from casedesk.worker.automation import Automation
from tests.support.delivery import Settle, delivering_to


@pytest.fixture
async def settle(container: Container) -> AsyncIterator[Settle]:
    """Relay until nothing is pending: rule actions make events that rules see in turn.
    Modules that test another consumer group define their own ``settle``."""
    # rules_ttl=0: each test changes rules between events and wants them applied at once
    async with delivering_to(
        container, Automation(container.database, container.extensions, rules_ttl=0).group()
    ) as settle:
        yield settle
