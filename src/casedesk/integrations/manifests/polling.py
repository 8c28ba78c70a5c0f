"""A polling trigger: ask the source on a schedule what is new since the cursor.

A run sends ``request`` (its templates see ``cursor``: None on a subscription's first run and
on a resync, ``settings``, ``connection`` and ``secrets``), follows the pages of the answer,
takes each item and its id, and computes the next run's cursor. Items are told apart by their
ids only, never by timestamps; the first run records the cursor (and the ids it saw) and fires
nothing, unless ``backfill`` asks for its first items.

What a selection sees: ``items`` and ``next_page`` the body of one answer, ``item_id`` one
item, ``next_cursor`` ``{answer, items, cursor, headers}`` (the last page's body and headers,
every item of the run, the cursor the run started from).
"""

from __future__ import annotations

from typing import Annotated

from pydantic import Field, StringConstraints, model_validator

from casedesk.integrations.manifests.common import Part, RequestTemplate, Selection

ParameterName = Annotated[str, StringConstraints(min_length=1, max_length=100)]
ParameterValue = Annotated[str, StringConstraints(max_length=2048)]


class FullSync(Part):
    """What to list when the source refuses the cursor as too old (Gmail's history.list
    answers 404 for a ``startHistoryId`` it no longer keeps): the items there are now, a
    bounded number of pages of them, fired unless seen before. The cursor the run goes on
    with is taken first, from the ``baseline`` request, so nothing arriving meanwhile is
    missed; the ids already seen keep what fired before from firing twice."""

    request: RequestTemplate
    items: Selection = Field(default="@", description="the list of items in one answer")
    item_id: Selection = Field(default="id", description="an item's id: the same the trigger's")
    next_page: Selection | None = Field(default=None, description="the next page's token")
    next_page_param: ParameterName | None = Field(
        default=None, description="the query parameter that carries it; none: it is a URL"
    )
    max_pages: int = Field(default=5, ge=1, le=100)

    @model_validator(mode="after")
    def _pages(self) -> FullSync:
        if self.next_page_param is not None and self.next_page is None:
            raise ValueError("next_page_param needs next_page, the selection of the token")
        return self


class PollingSpec(Part):
    interval_seconds: int = Field(default=60, ge=10, le=86_400)
    request: RequestTemplate
    baseline: RequestTemplate | None = Field(
        default=None,
        description="sent instead of `request` on a run without a cursor (the first one, a "
        "resync) when the cursor comes from another endpoint (Gmail's profile gives the first "
        "historyId)",
    )
    query: dict[ParameterName, ParameterValue] = Field(
        default_factory=dict,
        max_length=50,
        description="query parameters added to every request of a run, as plain values (not "
        "templates): a subscription's own filters",
    )
    cursor_param: ParameterName | None = Field(
        default=None,
        description="the query parameter that carries the cursor (`since`, `updated_after`), "
        "added to `request` whenever there is a cursor; it should be inclusive (>=), since the "
        "ids already seen drop what comes again",
    )
    items: Selection = Field(default="@", description="the list of items in one answer")
    item_id: Selection = Field(default="id", description="an item's id at the source")
    next_page: Selection | None = Field(
        default=None, description="the next page of this run: a token, or a URL"
    )
    next_page_param: ParameterName | None = Field(
        default=None,
        description="the query parameter that carries a next-page token; none: it is a URL",
    )
    link_header: bool = Field(default=False, description="follow RFC 8288 `Link: rel=next`")
    next_cursor: Selection | None = Field(
        default=None,
        description="the next run's cursor, over {answer, items, cursor, headers} of the last "
        'page: `answer.historyId`, `answer."@odata.deltaLink"`, `max(items[].updated_at)`; '
        "when it finds nothing the cursor stays as it was",
    )
    stale_statuses: list[int] = Field(
        default_factory=lambda: [404, 410],
        max_length=10,
        description="answers that mean the cursor is no longer valid: the run starts again "
        "without it, and the ids already seen keep anything from firing twice",
    )
    full_sync: FullSync | None = Field(
        default=None,
        description="what a run lists when the cursor is refused (one of `stale_statuses`); "
        "it needs `baseline`, which gives the cursor to go on with",
    )
    max_pages: int = Field(default=20, ge=1, le=1_000)
    backfill: int = Field(
        default=0,
        ge=0,
        le=1_000,
        description="items of the first run that fire, in the order the source lists them; "
        "the rest of that run is the baseline",
    )

    @model_validator(mode="after")
    def _pages(self) -> PollingSpec:
        if self.next_page_param is not None and self.next_page is None:
            raise ValueError("next_page_param needs next_page, the selection of the token")
        if self.next_page is not None and self.link_header:
            raise ValueError("a run pages by next_page or by the Link header, not both")
        if self.full_sync is not None and self.baseline is None:
            raise ValueError("full_sync needs baseline, the request that gives a fresh cursor")
        if any(not 400 <= status <= 599 for status in self.stale_statuses):
            raise ValueError("stale_statuses are error statuses (400-599)")
        return self
