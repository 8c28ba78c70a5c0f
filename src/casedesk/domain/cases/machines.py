"""Compiled state machines by version. Versions are immutable, so they are cached forever."""

from __future__ import annotations

import uuid

from casedesk.domain.statemachine.definition import Definition, Machine
from casedesk.store.unit_of_work import UnitOfWork

_compiled: dict[uuid.UUID, Machine] = {}


async def machine_of_version(uow: UnitOfWork, version_id: uuid.UUID) -> Machine:
    machine = _compiled.get(version_id)
    if machine is None:
        version = await uow.machines.version_by_id(version_id)
        machine = Machine.compile(Definition.model_validate(version.definition))
        _compiled[version_id] = machine
    return machine
