"""An instant trigger: the source calls ``POST /hooks/{token}`` when something happens.

A delivery is answered at once once it is stored; handshakes (a validation token echoed as
text, a challenge answered in JSON) are answered without storing anything; a delivery whose
authenticity check fails is refused with 401. Selections see ``{body, query, headers}`` of the
delivery (header names in lower case), and each event of it. Where the source needs a
subscription made through its API (Microsoft Graph), ``lifecycle`` says how to create, renew
and delete it, and ``lifecycle.resync`` how to catch up on what a gap may have missed.
"""

from __future__ import annotations

from typing import Annotated, Literal, Union

from pydantic import Field, model_validator

from casedesk.integrations.manifests.common import (
    Part,
    RequestTemplate,
    Selection,
    Template,
    TemplateTree,
)
from casedesk.integrations.manifests.polling import FullSync, ParameterName


class NoVerification(Part):
    type: Literal["none"] = "none"


class HmacVerification(Part):
    """An HMAC of a base string in a header (Slack's v0, GitHub's sha256=, Standard Webhooks).

    The header may carry several signatures separated by spaces (a sender rotating its key);
    one that matches is enough. A hex digest is compared without regard to case.
    """

    type: Literal["hmac"]
    header: str = Field(min_length=1, max_length=100)
    algorithm: Literal["sha1", "sha256", "sha512"] = "sha256"
    encoding: Literal["hex", "base64"] = "hex"
    prefix: str = Field(default="", max_length=50, description="before the digest: `v0=`")
    base: Template = Field(
        default="{{ body }}",
        description="the signed text, over {body (the raw body, exactly as received), "
        "headers, timestamp}: Slack's `v0:{{ timestamp }}:{{ body }}`",
    )
    timestamp_header: str | None = Field(
        default=None,
        max_length=100,
        description="a header with the sending time in Unix seconds (Slack's "
        "`X-Slack-Request-Timestamp`); a delivery outside the window is refused",
    )
    tolerance_seconds: int = Field(default=300, ge=1, le=86_400)
    secret_field: str = Field(default="signing_secret", description="the secret with the key")
    key: Literal["text", "base64"] = Field(
        default="text",
        description="how the secret is the key: its text, or base64 (Standard Webhooks' "
        "`whsec_…`, the prefix left out)",
    )


class ClientStateVerification(Part):
    """A shared value the source repeats in each event (Microsoft Graph's clientState).

    When the subscription has no such secret yet and casedesk makes the source subscription
    (``lifecycle``), casedesk draws one at random; the create request sends it as
    ``{{ secrets.<secret_field> }}``."""

    type: Literal["client_state"]
    value: Selection = Field(description="where the value is in each event: `clientState`")
    secret_field: str = Field(default="client_state", description="the secret it must equal")


class BearerVerification(Part):
    """A shared token in a header: ``Authorization: Bearer <token>``, or a bare token in a
    header of the source's own (GitLab's ``X-Gitlab-Token``)."""

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
    """reauthorize: renew the source subscription now; recreate: make a new one (the source
    removed it) and resync; resync: catch up with ``lifecycle.resync`` (events were missed);
    ignore: drop it."""


class Resync(Part):
    """How to catch up on a gap, as a polling run: each item not seen before fires.

    The request's templates see ``cursor`` (None on the first run: a delta query from the
    start), ``settings``, ``connection`` and ``secrets``. The first run, when the source
    subscription is made, records what exists as seen and fires nothing."""

    request: RequestTemplate
    items: Selection = Field(default="value", description="the list of items in one answer")
    item_id: Selection = Field(
        default="id", description="an item's id: the same id the events give"
    )
    baseline: RequestTemplate | None = Field(
        default=None,
        description="sent instead of `request` when there is no cursor (the first run, or "
        "after a refused one) and the cursor comes from another endpoint (Gmail's profile "
        "gives the current historyId): `next_cursor` over its answer is the cursor, and "
        "nothing before it is fetched",
    )
    next_page: Selection | None = Field(
        default=None,
        description='the next page: its URL (`"@odata.nextLink"`), or a token in `next_page_param`',
    )
    next_page_param: ParameterName | None = Field(
        default=None,
        description="the query parameter of `request` that carries a next-page token; none: "
        "`next_page` is a URL",
    )
    next_cursor: Selection | None = Field(
        default=None,
        description='the next run\'s cursor, on the last page: `"@odata.deltaLink"`, `historyId`',
    )
    full_sync: FullSync | None = Field(
        default=None,
        description="what to list when the cursor is refused (one of `stale_statuses`), with "
        "a fresh cursor from `baseline` taken first",
    )
    stale_statuses: list[int] = Field(
        default_factory=lambda: [404, 410],
        description="answers that mean the cursor is no longer valid: the run starts again "
        "without it, and the ids already seen keep anything from firing twice",
    )
    max_pages: int = Field(default=20, ge=1, le=1_000)

    @model_validator(mode="after")
    def _pages(self) -> Resync:
        if self.next_page_param is not None and self.next_page is None:
            raise ValueError("next_page_param needs next_page, the selection of the token")
        if self.full_sync is not None and self.baseline is None:
            raise ValueError("full_sync needs baseline, the request that gives a fresh cursor")
        return self


class Lifecycle(Part):
    """A subscription the source keeps (Graph): made on enable, renewed at half its life.

    The requests' templates see ``hook_url`` (where the source sends deliveries),
    ``expiration`` (now + ``lifetime_seconds``, ISO 8601 in UTC), ``subscription``
    (``external_id``, ``expires_at``), ``settings``, ``connection`` and ``secrets``."""

    create: RequestTemplate
    renew: RequestTemplate | None = Field(
        default=None, description="none: renewing sends `create` again (Gmail's watch)"
    )
    delete: RequestTemplate | None = None
    lifetime_seconds: int = Field(ge=60, le=31_536_000)
    external_id: Selection = Field(default="id", description="the subscription's id in answers")
    expires_at: Selection | None = Field(
        default=None,
        description="when the answer says the subscription expires (Graph: "
        "`expirationDateTime`); none, or no such value: after `lifetime_seconds`",
    )
    expires_format: Literal["iso8601", "epoch_ms", "epoch_s"] = Field(
        default="iso8601",
        description="how `expires_at` writes the moment: ISO 8601, or Unix time in "
        "milliseconds (Gmail's watch `expiration`) or seconds, as a number or a string",
    )
    renew_every_seconds: int | None = Field(
        default=None,
        ge=60,
        le=31_536_000,
        description="renew at least this often, even when half the subscription's life is "
        "longer (Gmail asks for a watch renewed daily, though it lasts 7 days)",
    )
    gone_statuses: list[int] = Field(
        default_factory=lambda: [404, 410],
        description="answers to a renewal that mean the subscription is gone: it is made "
        "again and `resync` catches up on the gap",
    )
    resync: Resync | None = Field(
        default=None, description="what catches up on a gap (a delta query), as a polling run"
    )
    notified_id: Selection | None = Field(
        default=None,
        description="where a lifecycle notification names the subscription it is about "
        "(Graph: `subscriptionId`); one about an earlier subscription is ignored",
    )


class InstantSpec(Part):
    verify: Verification = Field(default_factory=NoVerification)
    handshakes: list[Handshake] = Field(default_factory=list, max_length=10)
    body: Literal["auto", "json", "form", "text"] = Field(
        default="auto",
        description="how the body is read: auto goes by Content-Type (JSON, a form, or text "
        "that is taken as JSON when it parses)",
    )
    form_json: list[str] = Field(
        default_factory=list,
        max_length=20,
        description="fields of a form body that carry JSON (Slack's `payload`), read as JSON",
    )
    max_body_bytes: int | None = Field(
        default=None,
        ge=1024,
        le=1_073_741_824,
        description="a tighter body limit than the server's CASEDESK_MAX_BODY_BYTES",
    )
    events: Selection = Field(default="[body]", description="the events of one delivery")
    event_id: Selection = Field(description="an event's id at the source, to drop retries")
    item_id: Selection | None = Field(
        default=None, description="the id the enricher fetches; none: the event is the item"
    )
    notifications: list[Notification] = Field(default_factory=list, max_length=20)
    lifecycle: Lifecycle | None = None
    ack_status: int = Field(default=200, ge=200, le=299)
