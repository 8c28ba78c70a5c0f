"""The lifecycle section of an instant trigger: how an answer's expiry is read, how often a
subscription is renewed, and what a resync may page by."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from pydantic import ValidationError

from casedesk.integrations.manifests.instant import Lifecycle, Resync
from casedesk.platform.lifecycle import expiry_of, renew_every

REQUEST = {"path": "/watch"}


def lifecycle(**fields: Any) -> Lifecycle:
    return Lifecycle.model_validate({"create": REQUEST, "lifetime_seconds": 604_800} | fields)


@pytest.mark.parametrize(
    ("expires_format", "value"),
    [
        ("epoch_ms", "1796126400000"),
        ("epoch_ms", 1796126400000),
        ("epoch_s", "1796126400"),
        ("iso8601", "2026-12-01T12:00:00Z"),
    ],
)
def test_an_expiry_is_read_as_its_format_says(expires_format: str, value: Any) -> None:
    spec = lifecycle(expires_at="expiration", expires_format=expires_format)
    assert expiry_of(spec, {"expiration": value}) == datetime(2026, 12, 1, 12, tzinfo=UTC)


@pytest.mark.parametrize("value", ["soon", None, True, "1e400", {"ms": 1}])
def test_an_expiry_that_is_no_moment_is_none(value: Any) -> None:
    spec = lifecycle(expires_at="expiration", expires_format="epoch_ms")
    assert expiry_of(spec, {"expiration": value}) is None


def test_a_subscription_may_be_renewed_more_often_than_at_half_its_life() -> None:
    assert renew_every(lifecycle()) is None
    assert renew_every(lifecycle(renew_every_seconds=86_400)) == timedelta(days=1)
    with pytest.raises(ValidationError):
        lifecycle(renew_every_seconds=1)


@pytest.mark.parametrize(
    ("section", "message"),
    [
        ({"next_page_param": "pageToken"}, "next_page_param needs next_page"),
        ({"full_sync": {"request": REQUEST}}, "full_sync needs baseline"),
    ],
)
def test_a_resync_that_cannot_work_is_refused(section: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        Resync.model_validate({"request": REQUEST} | section)
