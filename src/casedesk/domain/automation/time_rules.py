"""Time rules: "when a case has been like this for that long, do these actions".

A time rule counts from one moment of the case (``since``: its creation, its last change, its
entry into the current state, or its closing), for a duration in plain or business time, and
acts when its conditions over the case still hold at the end. It acts once per moment: a case
that leaves the state and comes back starts a new count, and so can be acted on again.
"""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, model_validator

from casedesk.domain.automation.calendar import Calendar, add_business_time
from casedesk.domain.automation.conditions import AllOf, AnyOf, Comparison, Condition
from casedesk.domain.automation.rules import Action
from casedesk.store.models import Case

Since = Literal["created", "updated", "state_entered", "closed"]
_CHANGE_OPS = {"changed", "changed_to", "changed_from"}


class TimeRuleSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]
    enabled: bool = True
    since: Since = Field(description="the moment of the case the time counts from")
    hours: int = Field(default=0, ge=0, le=8_760)
    minutes: int = Field(default=0, ge=0, le=525_600)
    calendar: Calendar | None = Field(
        default=None, description="count business time in this calendar; null: plain time"
    )
    conditions: Condition = Field(default_factory=lambda: AllOf(all=[]))
    actions: list[Action] = Field(min_length=1, max_length=20)
    position: int | None = Field(default=None, ge=0, le=100_000, description="order; default: last")

    @model_validator(mode="after")
    def _sound(self) -> TimeRuleSpec:
        if self.hours == 0 and self.minutes == 0:
            raise ValueError("hours and minutes: give a duration of at least one minute")
        _only_case_facts(self.conditions)
        return self

    @property
    def duration(self) -> timedelta:
        return timedelta(hours=self.hours, minutes=self.minutes)


def _only_case_facts(condition: Condition) -> None:
    """A time rule sees a case, not an event: no event fields and no change operators."""
    if isinstance(condition, AllOf | AnyOf):
        for part in condition.all if isinstance(condition, AllOf) else condition.any:
            _only_case_facts(part)
        return
    assert isinstance(condition, Comparison)
    if not condition.field.startswith("case.") or condition.op in _CHANGE_OPS:
        raise ValueError(
            f"conditions: {condition.field} {condition.op} looks at an event; a time rule "
            "can only compare case fields (case.state, case.priority, ...) with eq, ne, in, "
            "not_in, contains, gt, gte, lt, lte, is_empty"
        )


def anchor_of(case: Case, since: Since) -> datetime | None:
    """The moment a time rule counts from, or None when the case has no such moment."""
    match since:
        case "created":
            return case.created_at
        case "updated":
            return case.updated_at
        case "state_entered":
            return case.state_entered_at or case.created_at
        case "closed":
            return case.closed_at if case.closed else None


def due_at(spec: TimeRuleSpec, anchor: datetime) -> datetime:
    if spec.calendar is None:
        return anchor + spec.duration
    return add_business_time(spec.calendar, anchor, spec.duration)


def episode_of(rule_id: uuid.UUID, case_id: uuid.UUID, anchor: datetime) -> uuid.UUID:
    """One id per (rule, case, moment): the rule acts at most once for it."""
    return uuid.uuid5(rule_id, f"{case_id}/{anchor.isoformat()}")
