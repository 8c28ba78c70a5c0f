"""Published state machines by version. Versions are immutable, so they are cached forever."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from casedesk.domain.statemachine.definition import Definition, Machine
from casedesk.store.unit_of_work import UnitOfWork


@dataclass(frozen=True, slots=True)
class PublishedMachine:
    code: str
    version: int
    machine: Machine


_published: dict[uuid.UUID, PublishedMachine] = {}


async def published(uow: UnitOfWork, version_id: uuid.UUID) -> PublishedMachine:
    found = _published.get(version_id)
    if found is None:
        version = await uow.machines.version_by_id(version_id)
        owner = await uow.machines.get(version.machine_id)
        machine = Machine.compile(Definition.model_validate(version.definition))
        found = _published[version_id] = PublishedMachine(owner.code, version.version, machine)
    return found


async def machine_of_version(uow: UnitOfWork, version_id: uuid.UUID) -> Machine:
    return (await published(uow, version_id)).machine
