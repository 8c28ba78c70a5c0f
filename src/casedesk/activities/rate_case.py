"""Rate a closed case once (CSAT 1-5)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from casedesk.activities.base import Activity
from casedesk.domain.cases.inputs import RatingInput
from casedesk.kit.clock import utcnow
from casedesk.kit.errors import Conflict
from casedesk.store.models import Case


@dataclass(frozen=True, slots=True)
class RatingParams:
    case_id: uuid.UUID
    body: RatingInput


class RateCaseActivity(Activity[RatingParams, Case]):
    name = "case.rate"

    async def execute(self, params: RatingParams) -> Case:
        case = self.case = await self.load_case(params.case_id)
        if not case.closed:
            raise Conflict("only a closed case can be rated")
        if case.rating_score is not None:
            raise Conflict("the case is already rated", score=case.rating_score)
        case.rating_score, case.rating_comment, case.rated_at = (
            params.body.score,
            params.body.comment,
            utcnow(),
        )
        self.record(case, "case.rate", {"score": params.body.score, "comment": params.body.comment})
        self.emit("case.rated", case, {"score": params.body.score})
        return case
