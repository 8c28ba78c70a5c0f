"""An instant trigger: the source calls ``POST /hooks/{token}`` when something happens.

A delivery is answered at once once it is stored; handshakes (a validation token echoed as
text, a challenge answered in JSON) are answered without storing anything; a delivery whose
authenticity check fails is refused with 401. Selections see ``{body, query, headers}`` of the
delivery, and each event of it. Where the source needs a subscription made through its API
(Microsoft Graph), ``lifecycle`` says how to create, renew and delete it.
"""

from __future__ import annotations

from typing import Annotated, Literal, Union

from pydantic import Field

from casedesk.integrations.manifests.common import (
    Part,
    RequestTemplate,
    Selection,
    Template,
    TemplateTree,
)


class NoVerification(Part):
    type: Literal["none"] = "none"


class HmacVerification(Part):
    """An HMAC of a base string in a header (Slack's v0, GitHub's sha256=, Standard Webhooks)."""

    type: Literal["hmac"]
    header: str = Field(min_length=1, max_length=100)
    algorithm: Literal["sha1", "sha256", "sha512"] = "sha256"
    encoding: Literal["hex", "base64"] = "hex"
    prefix: str = Field(default="", max_length=50, description="before the digest: `v0=`")
    base: Template = Field(
        default="{{ body }}",
        description="the signed text, over {body (raw text), headers, timestamp}",
    )
    timestamp_header: str | None = None
    tolerance_seconds: int = Field(default=300, ge=1, le=86_400)
    secret_field: str = Field(default="signing_secret", description="the secret with the key")


class ClientStateVerification(Part):
    """A shared value the source repeats in each event (Microsoft Graph's clientState)."""

    type: Literal["client_state"]
    value: Selection = Field(description="where the value is in each event: `clientState`")


class BearerVerification(Part):
    type: Literal["bearer"]
    header: str = "Authorization"
    secret_field: str = Field(default="hook_token", description="the secret the token must be")


Verification = Annotated[
    Union[NoVerification, HmacVerification, ClientStateVerification, BearerVerification],  # noqa: UP007
    Field(discriminator="type"),
]


class Handshake(Part):
    """A request the source sends to check the endpoint, answered and not stored."""

    when: Selection = Field(description="true for this handshake, over {body, query, headers}")
    status: int = Field(default=200, ge=200, le=299)
    content_type: Literal["text/plain", "application/json"] = "text/plain"
    answer: TemplateTree = Field(description="the answer, over {body, query, headers}")


class Notification(Part):
    """An event about the subscription itself rather than about an item."""

    when: Selection = Field(description="true for this kind of notification, over each event")
    action: Literal["reauthorize", "recreate", "resync", "ignore"]


class Lifecycle(Part):
    """A subscription the source keeps (Graph): made on enable, renewed at half its life."""

    create: RequestTemplate
    renew: RequestTemplate | None = None
    delete: RequestTemplate | None = None
    lifetime_seconds: int = Field(ge=60, le=31_536_000)
    external_id: Selection = Field(default="id", description="the subscription's id in answers")
    resync: RequestTemplate | None = Field(
        default=None, description="what catches up on a gap (a delta query), as a polling run"
    )


class InstantSpec(Part):
    verify: Verification = Field(default_factory=NoVerification)
    handshakes: list[Handshake] = Field(default_factory=list, max_length=10)
    events: Selection = Field(default="[body]", description="the events of one delivery")
    event_id: Selection = Field(description="an event's id at the source, to drop retries")
    item_id: Selection | None = Field(
        default=None, description="the id the enricher fetches; none: the event is the item"
    )
    notifications: list[Notification] = Field(default_factory=list, max_length=20)
    lifecycle: Lifecycle | None = None
    ack_status: int = Field(default=200, ge=200, le=299)
