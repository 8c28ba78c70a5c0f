"""SLA targets: which policy applies to a case, and where its clocks stand.

A clock counts business time from the case's creation. It pauses while the case is in a
``pending``-type state, keeping the business time it had left, and resumes with that much
left. It is met by the first public reply of an agent (first response) or by closing the
case (resolution), and breached when its target passes first.
"""

from __future__ import annotations

import math
import uuid
from datetime import datetime, timedelta
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from casedesk.domain.automation.calendar import Calendar, add_business_time, business_time_between
from casedesk.domain.cases.priority import Priority
from casedesk.store.models import CaseSla, SlaPolicy

METRICS = ("first_response", "resolution")
Code = Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9_-]{0,62}$")]


class SlaPolicySpec(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]
    template: Code | None = Field(default=None, description="template code; null: any template")
    priority: Priority | None = Field(default=None, description="null: any priority")
    first_response_minutes: int | None = Field(default=None, ge=1, le=525_600)
    resolution_minutes: int | None = Field(default=None, ge=1, le=5_256_000)
    warning_percent: int = Field(default=80, ge=1, le=99)
    calendar: Calendar = Field(default_factory=Calendar.always)


def choose_policy(
    policies: list[SlaPolicy], template_id: uuid.UUID, priority: int
) -> SlaPolicy | None:
    """The most specific policy: template and priority, then template, then priority, then any."""

    def fits(policy: SlaPolicy) -> bool:
        return policy.template_id in (None, template_id) and policy.priority in (None, priority)

    def specificity(policy: SlaPolicy) -> tuple[int, int]:
        return (policy.template_id is not None, policy.priority is not None)

    matching = [policy for policy in policies if fits(policy)]
    return max(matching, key=specificity, default=None)


def calendar_of(policy: SlaPolicy) -> Calendar:
    return Calendar.model_validate(policy.calendar)


def start_clock(
    policy: SlaPolicy, metric: str, minutes: int, started: datetime, case_id: uuid.UUID
) -> CaseSla:
    clock = CaseSla(
        case_id=case_id,
        policy_id=policy.id,
        metric=metric,
        status="running",
        target_minutes=minutes,
        warned=False,
    )
    _aim(clock, calendar_of(policy), policy.warning_percent, started, timedelta(minutes=minutes))
    return clock


def pause(clock: CaseSla, policy: SlaPolicy, now: datetime) -> None:
    if clock.status != "running" or clock.target_at is None:
        return
    left = business_time_between(calendar_of(policy), now, clock.target_at)
    # Rounded up: a pause never shortens the time the agents have.
    clock.status, clock.remaining_seconds = "paused", math.ceil(left.total_seconds())
    clock.target_at = clock.warning_at = None


def meet(clock: CaseSla, policy: SlaPolicy, now: datetime) -> None:
    """Stop the clock as met, keeping the business time it had left should the case reopen."""
    if clock.status == "running" and clock.target_at is not None:
        left = business_time_between(calendar_of(policy), now, clock.target_at)
        clock.remaining_seconds = math.ceil(left.total_seconds())
    clock.status, clock.met_at, clock.warning_at = "met", now, None


def reopen(clock: CaseSla, policy: SlaPolicy, now: datetime) -> None:
    """A reopened case's met clock runs again with the time it had left when it was met."""
    if clock.status != "met" or clock.remaining_seconds is None:
        return
    clock.status, clock.met_at = "paused", None
    resume(clock, policy, now)


def resume(clock: CaseSla, policy: SlaPolicy, now: datetime) -> None:
    if clock.status != "paused" or clock.remaining_seconds is None:
        return
    clock.status = "running"
    _aim(
        clock,
        calendar_of(policy),
        policy.warning_percent,
        now,
        timedelta(seconds=clock.remaining_seconds),
    )
    clock.remaining_seconds = None


def _aim(
    clock: CaseSla, calendar: Calendar, percent: int, start: datetime, left: timedelta
) -> None:
    total = timedelta(minutes=clock.target_minutes)
    clock.target_at = add_business_time(calendar, start, left)
    before_warning = left - total * (100 - percent) / 100
    clock.warning_at = (
        None
        if clock.warned or before_warning <= timedelta(0)
        else add_business_time(calendar, start, before_warning)
    )
