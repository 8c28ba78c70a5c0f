"""The polling section of a manifest: what a run may page by, and what a subscription sets."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from casedesk.integrations.catalogue import builtin_manifests
from casedesk.integrations.manifests import ManifestInvalid
from casedesk.integrations.manifests.polling import PollingSpec

REQUEST = {"path": "/items"}


@pytest.mark.parametrize(
    ("section", "message"),
    [
        ({"next_page_param": "page"}, "next_page_param needs next_page"),
        ({"next_page": "next", "link_header": True}, "not both"),
        ({"stale_statuses": [200]}, "error statuses"),
        ({"cursor_param": ""}, "at least 1 character"),
        ({"backfill": -1}, "greater than or equal to 0"),
        ({"full_sync": {"request": REQUEST}}, "full_sync needs baseline"),
        (
            {"baseline": REQUEST, "full_sync": {"request": REQUEST, "next_page_param": "p"}},
            "next_page_param needs next_page",
        ),
    ],
)
def test_a_polling_section_that_cannot_work_is_refused(
    section: dict[str, Any], message: str
) -> None:
    with pytest.raises(ValidationError, match=message):
        PollingSpec.model_validate({"request": REQUEST, **section})


def test_the_rest_poller_lets_a_subscription_choose_its_cursor_query_pages_and_backfill() -> None:
    trigger = builtin_manifests()["rest"].triggers["new_item"]
    spec = trigger.effective(
        {
            "path": "/tickets",
            "query": {"state": "open", "$filter": "a eq 1"},
            "cursor_param": "updated_since",
            "next_cursor": "max(items[].updated_at)",
            "next_page": "links.next",
            "backfill": 5,
            "stale_statuses": [410],
        }
    )
    assert isinstance(spec, PollingSpec)
    assert spec.query == {"state": "open", "$filter": "a eq 1"}
    assert (spec.cursor_param, spec.next_page, spec.backfill) == ("updated_since", "links.next", 5)
    assert spec.stale_statuses == [410]
    assert builtin_manifests()["rest"].auth.type == "bearer"


def test_a_subscription_cannot_page_the_rest_poller_two_ways_at_once() -> None:
    trigger = builtin_manifests()["rest"].triggers["new_item"]
    with pytest.raises(ManifestInvalid, match="not both"):
        trigger.effective({"path": "/t", "next_page": "next", "link_header": True})
