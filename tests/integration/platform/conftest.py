"""What the platform tests share: no job of theirs is left due for another module's worker."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from sqlalchemy import update

from casedesk.bootstrap import Container
from casedesk.platform.instant import CREATE, DELETE, PROCESS, RENEW, RESYNC
from casedesk.platform.intake import RUN
from casedesk.platform.polling import POLL
from casedesk.store.models import ScheduledJob
from casedesk.store.tenancy import ALL_TENANTS

PLATFORM_KINDS = (POLL, PROCESS, CREATE, RENEW, RESYNC, DELETE, RUN)


@pytest.fixture(autouse=True)
async def _no_jobs_left_behind(container: Container) -> AsyncIterator[None]:
    """A test that publishes a workflow without running all it plans leaves due jobs; the
    scheduler of a later test in another module would claim them, and fail them."""
    yield
    async with container.database.engine.begin() as connection:
        await connection.execute(
            update(ScheduledJob)
            .where(
                ScheduledJob.kind.in_(PLATFORM_KINDS),
                ScheduledJob.status.in_(("pending", "running")),
            )
            .values(status="cancelled", lease_owner=None, lease_until=None)
            .execution_options(**{ALL_TENANTS: True})
        )
