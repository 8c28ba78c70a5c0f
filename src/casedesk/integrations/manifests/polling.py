"""A polling trigger: ask the source on a schedule what is new since the cursor.

A run sends ``request`` (its templates see ``cursor``: None on a subscription's first run,
``settings``, ``connection`` and ``secrets``), follows the pages of the answer, takes each
item and its id, and computes the next run's cursor. Items are told apart by their ids only,
never by timestamps; the first run records the cursor (and the ids it saw) and fires nothing.
"""

from __future__ import annotations

from pydantic import Field, model_validator

from casedesk.integrations.manifests.common import Part, RequestTemplate, Selection


class PollingSpec(Part):
    interval_seconds: int = Field(default=60, ge=10, le=86_400)
    request: RequestTemplate
    baseline: RequestTemplate | None = Field(
        default=None,
        description="sent instead of `request` on the first run when the cursor comes from "
        "another endpoint (Gmail's profile gives the first historyId); nothing fires from it",
    )
    items: Selection = Field(default="@", description="the list of items in one answer")
    item_id: Selection = Field(default="id", description="an item's id at the source")
    next_page: Selection | None = Field(
        default=None, description="the next page of this run: a token, or a URL"
    )
    next_page_param: str | None = Field(
        default=None,
        max_length=100,
        description="the query parameter that carries a next-page token; none: it is a URL",
    )
    link_header: bool = Field(default=False, description="follow RFC 8288 `Link: rel=next`")
    next_cursor: Selection | None = Field(
        default=None,
        description="the next run's cursor, over {answer, items, cursor, headers} of the last "
        'page: `answer.historyId`, `answer."@odata.deltaLink"`, `max(items[].updated_at)`',
    )
    stale_statuses: list[int] = Field(
        default_factory=lambda: [404, 410],
        description="answers that mean the cursor is no longer valid: the run starts again "
        "without it, and the ids already seen keep anything from firing twice",
    )
    max_pages: int = Field(default=20, ge=1, le=1_000)

    @model_validator(mode="after")
    def _pages(self) -> PollingSpec:
        if self.next_page_param is not None and self.next_page is None:
            raise ValueError("next_page_param needs next_page, the selection of the token")
        return self
