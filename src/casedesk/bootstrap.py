"""Composition root: builds the long-lived components from the settings, in one place."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from casedesk.config import Settings
from casedesk.domain.extensions.registry import ExtensionRegistry
from casedesk.store.database import Database
from casedesk.store.unit_of_work import UnitOfWork
from casedesk.worker.automation import Automation
from casedesk.worker.consumers import ConsumerGroup
from casedesk.worker.runner import Background, make_bus
from casedesk.worker.scheduler import JobHandler


@dataclass
class Container:
    settings: Settings
    database: Database
    extensions: ExtensionRegistry

    def unit_of_work(self, tenant_id: uuid.UUID | None = None) -> UnitOfWork:
        return UnitOfWork(self.database, tenant_id)

    async def close(self) -> None:
        await self.database.dispose()


def consumer_groups(container: Container) -> dict[str, ConsumerGroup]:
    """Every consumer group of the product, by name; routing is this literal map."""
    automation = Automation(container.database, container.extensions).group()
    return {automation.name: automation}


def job_handlers(container: Container) -> dict[str, JobHandler]:
    """Every kind of scheduled job, by name; routing is this literal map."""
    return {}


def background(container: Container) -> Background:
    bus = make_bus(container.settings.broker_url, container.settings.broker_namespace)
    return Background(container.database, bus, consumer_groups(container), job_handlers(container))


def build(settings: Settings) -> Container:
    database = Database(settings.database_url, pool_size=settings.database_pool_size)
    extensions = ExtensionRegistry()
    extensions.load_entry_points()
    return Container(settings=settings, database=database, extensions=extensions)
