"""An SLA clock reached its warning point or its target: say so on the case."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from casedesk.activities.base import Activity
from casedesk.kit.clock import utcnow


@dataclass(frozen=True, slots=True)
class SlaMoment:
    case_id: uuid.UUID
    clock_id: uuid.UUID
    breached: bool
    """False: the warning point; True: the target passed."""


class RecordSlaActivity(Activity[SlaMoment, bool]):
    """Returns False when there is nothing to say any more (met, paused, already said).

    The case is locked before the clock is read: the ``sla`` consumer changes clocks under the
    same lock, and two runs of one job (a lost lease) see each other's ``warned``."""

    name = "sla.record"

    async def execute(self, params: SlaMoment) -> bool:
        case = await self.load_case(params.case_id, lock=True)
        clock = await self.uow.sla.clock(params.clock_id)
        if clock is None or clock.status != "running":
            return False
        if params.breached:
            clock.status, clock.breached_at = "breached", utcnow()
        elif clock.warned:
            return False
        else:
            clock.warned = True
        self.case = case
        event = "sla.breached" if params.breached else "sla.warning"
        target = clock.target_at.isoformat() if clock.target_at else None
        self.record(case, event, {"metric": clock.metric, "target_at": target})
        self.emit(event, case, {"metric": clock.metric, "target_at": target})
        return True
