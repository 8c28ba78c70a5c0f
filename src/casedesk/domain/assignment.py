"""Automatic assignment: who gets a case that arrives in a queue without an assignee.

The candidates are a queue's members who are ``available`` (active admins and agents; a
queue without members is worked by all of them). ``round_robin`` gives the case to the
candidate after the one the queue gave its last case to (the pointer lives on the queue row,
locked for the rest of the transaction); ``least_loaded`` to the one with fewest open cases.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable, Sequence
from enum import StrEnum

from casedesk.store.models import Queue
from casedesk.store.unit_of_work import UnitOfWork


class Availability(StrEnum):
    AVAILABLE = "available"
    AWAY = "away"


class AssignmentMode(StrEnum):
    MANUAL = "manual"
    ROUND_ROBIN = "round_robin"
    LEAST_LOADED = "least_loaded"


def next_in_turn(candidates: Sequence[uuid.UUID], last: uuid.UUID | None) -> uuid.UUID | None:
    """The first candidate after ``last`` in the candidates' order, wrapping around."""
    if not candidates:
        return None
    after = [user_id for user_id in candidates if last is not None and user_id > last]
    return after[0] if after else candidates[0]


def least_busy(candidates: Sequence[uuid.UUID], load: dict[uuid.UUID, int]) -> uuid.UUID | None:
    """The candidate with the fewest open cases; of equals, the first in order."""
    if not candidates:
        return None
    return min(candidates, key=lambda user_id: (load.get(user_id, 0), user_id))


async def _round_robin(uow: UnitOfWork, queue: Queue) -> uuid.UUID | None:
    held = await uow.assignment.locked_queue(queue.id)
    chosen = next_in_turn(await uow.assignment.available_agents(queue.id), held.round_robin_last_id)
    if chosen is not None:
        held.round_robin_last_id = chosen
    return chosen


async def _least_loaded(uow: UnitOfWork, queue: Queue) -> uuid.UUID | None:
    candidates = await uow.assignment.available_agents(queue.id)
    return least_busy(candidates, await uow.assignment.open_cases_of(candidates))


async def _manual(uow: UnitOfWork, queue: Queue) -> uuid.UUID | None:
    return None


Picker = Callable[[UnitOfWork, Queue], Awaitable[uuid.UUID | None]]
PICKERS: dict[AssignmentMode, Picker] = {
    AssignmentMode.MANUAL: _manual,
    AssignmentMode.ROUND_ROBIN: _round_robin,
    AssignmentMode.LEAST_LOADED: _least_loaded,
}


async def pick_assignee(uow: UnitOfWork, queue: Queue, mode: AssignmentMode) -> uuid.UUID | None:
    """The user this mode gives the next case of the queue to; none if nobody is available."""
    return await PICKERS[mode](uow, queue)


async def assignee_for_queue(uow: UnitOfWork, queue: Queue) -> uuid.UUID | None:
    """The assignee the queue's own mode chooses (none for a manual queue)."""
    return await pick_assignee(uow, queue, AssignmentMode(queue.assignment))
