"""What a rule says: the event types it listens to, its conditions and its ordered actions."""

from __future__ import annotations

import uuid
from typing import Annotated, Literal, Union

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    WithJsonSchema,
    model_validator,
)

from casedesk.domain.automation.conditions import AllOf, AnyOf, Comparison, Condition
from casedesk.domain.cases.priority import Priority
from casedesk.domain.events import CASE, EVENTS

Code = Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9_-]{0,62}$")]
Tag = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=63)]


def _rule_event(name: str) -> str:
    """Rules act on cases: they may name every declared event type about a case."""
    declared = EVENTS.get(name)
    if declared is not None and declared.subject == CASE:
        return name
    if declared is not None:
        raise ValueError(
            f"{name} is about a {declared.subject}, not a case; rules act on cases "
            f"(a webhook can subscribe to {name})"
        )
    raise ValueError(
        f"no part of casedesk emits {name!r}; rules can name {EVENTS.names(subject=CASE)}"
    )


EventType = Annotated[
    str,
    StringConstraints(min_length=1, max_length=63),
    AfterValidator(_rule_event),
    WithJsonSchema({"type": "string", "examples": ["case.created", "sla.breached"]}),
]
MAX_CHAIN_DEPTH = 10
"""A change caused by a rule, causing a rule, ... stops being automated at this depth."""


class _Action(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Assign(_Action):
    type: Literal["assign"]
    user_id: uuid.UUID | None = Field(
        default=None, description="this user; null (and no strategy) unassigns"
    )
    strategy: Literal["round_robin", "least_loaded"] | None = Field(
        default=None,
        description="instead of a user: the next available agent in turn, or the one with "
        "fewest open cases",
    )

    @model_validator(mode="after")
    def _one_target(self) -> Assign:
        if self.user_id is not None and self.strategy is not None:
            raise ValueError("give user_id or strategy, not both")
        return self


class Transfer(_Action):
    type: Literal["transfer"]
    queue: Code


class SetPriority(_Action):
    type: Literal["set_priority"]
    priority: Priority


class AddTag(_Action):
    type: Literal["add_tag"]
    tag: Tag


class RemoveTag(_Action):
    type: Literal["remove_tag"]
    tag: Tag


class ApplyAction(_Action):
    type: Literal["apply_action"]
    action: Code


class AddComment(_Action):
    type: Literal["add_comment"]
    body: Annotated[str, StringConstraints(min_length=1, max_length=65_536)]
    public: bool = False


class SendWebhook(_Action):
    type: Literal["send_webhook"]
    webhook_id: uuid.UUID = Field(description="a webhook of /api/v1/webhooks")


Action = Annotated[
    Union[  # noqa: UP007
        Assign, Transfer, SetPriority, AddTag, RemoveTag, ApplyAction, AddComment, SendWebhook
    ],
    Field(discriminator="type"),
]


class RuleSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]
    enabled: bool = True
    on: list[EventType] = Field(min_length=1)
    conditions: Condition = Field(default_factory=lambda: AllOf(all=[]))
    actions: list[Action] = Field(min_length=1, max_length=20)
    stop: bool = Field(default=False, description="later rules do not run after this one acts")
    position: int | None = Field(default=None, ge=0, le=100_000, description="order; default: last")


__all__ = ["AllOf", "AnyOf", "Comparison", "RuleSpec"]
