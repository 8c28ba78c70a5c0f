"""Who a chat message's author is.

``Senders`` turns a chat user's id into a name and an address through the connector's
``channel.sender`` enricher (Slack's ``users.info``), remembered per connection for an hour,
so a busy channel costs one lookup per person, not per message.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from typing import Any

from casedesk.domain.channels import ChannelMessage, Party
from casedesk.integrations.expressions import ExpressionError, select
from casedesk.integrations.runtime import ConnectorClient
from casedesk.platform.enricher import Enriched

SENDER_TTL_SECONDS = 3_600.0
SENDERS_KEPT = 10_000
Enrich = Callable[..., Awaitable[Enriched]]


class Senders:
    """Chat users by id, per connection, for an hour (at most 10,000 remembered)."""

    def __init__(self, *, ttl: float = SENDER_TTL_SECONDS, kept: int = SENDERS_KEPT) -> None:
        self.ttl, self.kept = ttl, kept
        self._known: OrderedDict[tuple[str, str], tuple[float, Party]] = OrderedDict()

    async def complete(
        self,
        client: ConnectorClient,
        message: ChannelMessage,
        enrich: Enrich,
        *,
        execution_id: str | None,
        traceparent: str | None,
    ) -> ChannelMessage:
        """The message with its sender's address and name, when the connector can look the
        author up and the message does not say them itself."""
        spec = client.manifest.channel.sender if client.manifest.channel else None
        sender = message.sender
        if spec is None or sender.id is None or sender.address:
            return message
        if message.kind != "message" or message.own:  # nobody to find or create
            return message
        key = (str(client.account.connection_id), sender.id)
        now = time.monotonic()
        known = self._known.get(key)
        if known is None or known[0] < now:
            enriched: Enriched = await enrich(
                client,
                client.manifest.enrichers[spec.enricher],
                [sender.id],
                execution_id=execution_id,
                traceparent=traceparent,
            )
            user = enriched.entities.get(sender.id)
            party = _party(user, spec.address, spec.name, sender)
            known = (now + self.ttl, party)
            self._known[key] = known
            self._known.move_to_end(key)
            while len(self._known) > self.kept:
                self._known.popitem(last=False)
        party = known[1]
        return message.model_copy(
            update={
                "sender": sender.model_copy(
                    update={"address": party.address, "name": sender.name or party.name}
                )
            }
        )


def _party(user: Any, address: str, name: str | None, sender: Party) -> Party:
    if user is None:  # a user the source no longer has: known by id only
        return sender
    try:
        found = select(address, user)
        named = select(name, user) if name else None
    except ExpressionError:
        return sender
    return Party(
        id=sender.id,
        address=found if isinstance(found, str) and "@" in found else None,
        name=named if isinstance(named, str) and named else sender.name,
    )
