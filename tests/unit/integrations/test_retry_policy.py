"""The retry policy's decisions, without a network: which outcome is retried, and when."""

from __future__ import annotations

from datetime import timedelta
from email.utils import format_datetime

import httpx
import pytest

from casedesk.integrations.retry import RetryPolicy, parse_retry_after
from casedesk.kit.clock import utcnow

POLICY = RetryPolicy(max_attempts=4, base_delay=1.0, max_delay=10.0)
REQUEST = httpx.Request("GET", "https://api.example.com/")


def reply(status: int, **headers: str) -> httpx.Response:
    return httpx.Response(status, headers=headers, request=REQUEST)


@pytest.mark.parametrize(
    ("attempt", "ceiling"), [(1, 1.0), (2, 2.0), (3, 4.0), (4, 8.0), (6, 10.0)]
)
def test_backoff_doubles_with_jitter_up_to_the_max_delay(attempt: int, ceiling: float) -> None:
    delays = [POLICY.backoff(attempt) for _ in range(200)]

    assert all(ceiling / 2 <= delay <= ceiling for delay in delays)
    assert len(set(delays)) > 100


@pytest.mark.parametrize(
    ("value", "seconds"),
    [("0", 0.0), ("7", 7.0), (" 120 ", 120.0), ("Wed, 21 Oct 2015 07:28:00 GMT", 0.0)],
)
def test_retry_after_is_read_as_seconds_or_a_date(value: str, seconds: float) -> None:
    assert parse_retry_after(value) == seconds


def test_a_retry_after_date_gives_the_seconds_until_then() -> None:
    value = format_datetime(utcnow() + timedelta(seconds=30), usegmt=True)

    seconds = parse_retry_after(value)

    assert seconds is not None
    assert 28 <= seconds <= 30


@pytest.mark.parametrize("value", [None, "", "soon", "-5", "1.5"])
def test_an_unusable_retry_after_is_ignored(value: str | None) -> None:
    assert parse_retry_after(value) is None


@pytest.mark.parametrize("status", [429, 503])
def test_retry_after_counts_on_429_and_503(status: int) -> None:
    assert POLICY.delay_after_response("GET", reply(status, **{"retry-after": "7"}), 1) == 7.0


def test_retry_after_is_ignored_on_other_statuses() -> None:
    delay = POLICY.delay_after_response("GET", reply(502, **{"retry-after": "7"}), 1)

    assert delay is not None
    assert delay <= 1.0


def test_a_long_retry_after_waits_the_max_delay() -> None:
    assert POLICY.delay_after_response("GET", reply(503, **{"retry-after": "600"}), 1) == 10.0


def test_nothing_is_retried_after_the_last_attempt() -> None:
    assert POLICY.delay_after_response("GET", reply(503), 4) is None
    assert POLICY.delay_after_error("GET", httpx.ConnectError("refused"), 4) is None


@pytest.mark.parametrize(
    ("method", "error", "retried"),
    [
        ("POST", httpx.ConnectError("refused"), True),
        ("POST", httpx.ConnectTimeout("slow"), True),
        ("POST", httpx.ReadTimeout("slow"), False),
        ("PATCH", httpx.RemoteProtocolError("closed"), False),
        ("GET", httpx.ReadTimeout("slow"), True),
        ("PUT", httpx.ReadError("reset"), True),
        ("GET", httpx.UnsupportedProtocol("gopher"), False),
        ("GET", ValueError("a bug"), False),
    ],
)
def test_errors_are_retried_when_repeating_is_safe(
    method: str, error: Exception, retried: bool
) -> None:
    assert (POLICY.delay_after_error(method, error, 1) is not None) == retried


def test_unsafe_retries_repeat_a_post_after_a_timeout_or_a_transient_status() -> None:
    policy = RetryPolicy(retry_unsafe=True)

    assert policy.delay_after_error("POST", httpx.ReadTimeout("slow"), 1) is not None
    assert policy.delay_after_response("POST", reply(503), 1) is not None
    assert policy.delay_after_response("POST", reply(500), 1) is None


def test_the_retried_statuses_can_be_chosen() -> None:
    policy = RetryPolicy(retry_statuses=frozenset({500}))

    assert policy.delay_after_response("GET", reply(500), 1) is not None
    assert policy.delay_after_response("GET", reply(503), 1) is None


@pytest.mark.parametrize(
    "options", [{"max_attempts": 0}, {"base_delay": -1.0}, {"max_delay": -1.0}]
)
def test_a_policy_that_cannot_work_is_refused(options: dict[str, float]) -> None:
    with pytest.raises(ValueError):
        RetryPolicy(**options)  # type: ignore[arg-type]
