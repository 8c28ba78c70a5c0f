"""What an admin says about a webhook: where to, for which events."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, field_validator

from casedesk.domain.events import EVENTS

EventPattern = Annotated[str, StringConstraints(min_length=1, max_length=64)]
RETRY_SCHEDULE = (
    timedelta(0),
    timedelta(seconds=5),
    timedelta(minutes=5),
    timedelta(minutes=30),
    timedelta(hours=2),
    timedelta(hours=5),
    timedelta(hours=10),
    timedelta(hours=10),
)
"""When each attempt is made, after the one before: eight attempts over about 27 hours."""


class WebhookSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]
    url: Annotated[str, StringConstraints(strip_whitespace=True, min_length=8, max_length=2048)]
    events: list[EventPattern] = Field(
        default_factory=list,
        max_length=50,
        description="event types (case.created), families (case.*) or *; "
        "empty: only rules send to this webhook",
    )
    enabled: bool = True
    description: Annotated[str, StringConstraints(max_length=1000)] | None = None

    @field_validator("url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError("must be an http:// or https:// URL with a host")
        if parts.username or parts.password:
            raise ValueError("must not carry a user name or password; verify the signature")
        if parts.fragment:
            raise ValueError("must not have a #fragment")
        return value

    @field_validator("events")
    @classmethod
    def _known_events(cls, value: list[str]) -> list[str]:
        unknown = [pattern for pattern in value if not _names_declared_events(pattern)]
        if unknown:
            raise ValueError(
                f"unknown event types {unknown}; use one of {EVENTS.names()}, "
                f"a family ({', '.join(EVENTS.families())}) or *"
            )
        return sorted(set(value))


def _names_declared_events(pattern: str) -> bool:
    """A declared type, the family of declared types (``case.*``), or every type (``*``)."""
    return pattern == "*" or pattern in EVENTS or pattern in EVENTS.families()


def listens_to(patterns: list[str], event_type: str) -> bool:
    family = event_type.split(".")[0] + ".*"
    return any(pattern in ("*", event_type, family) for pattern in patterns)


def next_attempt_after(attempts: int) -> timedelta | None:
    """The wait before the next attempt after ``attempts`` attempts; None: no more."""
    return RETRY_SCHEDULE[attempts] if attempts < len(RETRY_SCHEDULE) else None
