"""What every bus offers: confirmed publishing and consumer groups with a dead-letter rule.

A message is delivered at least once to every consumer group subscribed to its type; the
consumers make redelivery harmless by remembering what they processed. A handler that
raises is retried; after ``max_attempts`` the message is dead-lettered to
``on_dead_letter`` instead of being retried forever.
"""

from __future__ import annotations

import fnmatch
from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field, replace


@dataclass(frozen=True, slots=True)
class Message:
    """One outbox event on the wire: the CloudEvents JSON envelope plus routing facts."""

    id: str
    type: str
    tenant_id: str
    subject: str | None
    """The id of what the event is about; ``subject_type`` says what kind of thing it is."""
    sequence: int
    traceparent: str
    body: bytes
    attempt: int = 1
    subject_type: str = "case"

    def retried(self) -> Message:
        return replace(self, attempt=self.attempt + 1)


Handler = Callable[[Message], Awaitable[None]]
DeadLetterSink = Callable[[str, Message, str], Awaitable[None]]
"""Called with (group, message, last error) when a message is given up on."""


@dataclass(frozen=True, slots=True)
class Subscription:
    group: str
    types: Sequence[str]
    """Event types, with shell-style wildcards: ``case.*`` or ``*``."""
    handler: Handler
    prefetch: int = 16
    max_attempts: int = 5
    labels: dict[str, str] = field(default_factory=dict)

    def wants(self, event_type: str) -> bool:
        return any(fnmatch.fnmatchcase(event_type, pattern) for pattern in self.types)


class BusUnavailable(RuntimeError):
    """The broker cannot be reached or did not confirm; the caller keeps the events."""


class Bus(ABC):
    @abstractmethod
    async def start(self) -> None:
        """Connect and declare what the bus needs; may raise BusUnavailable."""

    @abstractmethod
    async def close(self) -> None:
        """Stop consuming, let in-flight handlers finish, release connections."""

    @abstractmethod
    async def publish(self, messages: Sequence[Message]) -> None:
        """Return only once every message is durably accepted; else raise BusUnavailable."""

    @abstractmethod
    async def subscribe(self, subscription: Subscription, on_dead_letter: DeadLetterSink) -> None:
        """Start delivering matching messages to the subscription's handler, in the background."""
