"""The retry policy's decisions, without a network: which outcome is retried, and how long
the controller sleeps before the next attempt."""

from __future__ import annotations

from datetime import timedelta
from email.utils import format_datetime

import httpx
import pytest

from casedesk.integrations.retry import RetryPolicy, parse_retry_after
from casedesk.kit.clock import utcnow

POLICY = RetryPolicy(max_attempts=4, base_delay=1.0, max_delay=10.0)
REQUEST = httpx.Request("GET", "https://api.example.com/")

Outcome = httpx.Response | Exception


def reply(status: int, **headers: str) -> httpx.Response:
    return httpx.Response(status, headers=headers, request=REQUEST)


class Script:
    """Plays ``outcomes`` in order, one per attempt, and records the controller's sleeps."""

    def __init__(self, *outcomes: Outcome) -> None:
        self.outcomes = list(outcomes)
        self.attempts = 0
        self.slept: list[float] = []

    async def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)

    async def attempt(self) -> httpx.Response:
        outcome = self.outcomes[min(self.attempts, len(self.outcomes) - 1)]
        self.attempts += 1
        if isinstance(outcome, Exception):
            raise outcome
        return outcome

    async def run(self, policy: RetryPolicy, method: str = "GET") -> httpx.Response:
        response: httpx.Response = await policy.retrying(method, sleep=self.sleep)(self.attempt)
        return response


async def test_backoff_doubles_with_jitter_up_to_the_max_delay() -> None:
    ceilings = [1.0, 2.0, 4.0, 8.0, 10.0, 10.0]
    runs = []
    for _ in range(200):
        script = Script(reply(502))
        await script.run(RetryPolicy(max_attempts=7, base_delay=1.0, max_delay=10.0))
        runs.append(script.slept)

    for attempt, ceiling in enumerate(ceilings):
        delays = [slept[attempt] for slept in runs]
        assert all(ceiling / 2 <= delay <= ceiling for delay in delays), attempt
        assert len(set(delays)) > 100  # jitter: callers spread out


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


@pytest.mark.parametrize("value", [None, "", "soon", "-5", "1.5", "²"])
def test_an_unusable_retry_after_is_ignored(value: str | None) -> None:
    assert parse_retry_after(value) is None


@pytest.mark.parametrize("status", [429, 503])
async def test_retry_after_counts_on_429_and_503(status: int) -> None:
    script = Script(reply(status, **{"retry-after": "7"}), reply(200))

    response = await script.run(POLICY)

    assert response.status_code == 200
    assert script.slept == [7.0]


async def test_retry_after_is_ignored_on_other_statuses() -> None:
    script = Script(reply(502, **{"retry-after": "7"}), reply(200))

    await script.run(POLICY)

    assert len(script.slept) == 1
    assert script.slept[0] <= 1.0


async def test_a_long_retry_after_waits_the_max_delay() -> None:
    script = Script(reply(503, **{"retry-after": "600"}), reply(200))

    await script.run(POLICY)

    assert script.slept == [10.0]


async def test_after_the_last_attempt_the_last_response_is_the_answer() -> None:
    script = Script(reply(503), reply(502), reply(503), reply(504))

    response = await script.run(POLICY)

    assert response.status_code == 504
    assert script.attempts == 4
    assert len(script.slept) == 3


async def test_after_the_last_attempt_the_last_error_is_raised() -> None:
    script = Script(httpx.ConnectError("refused"))

    with pytest.raises(httpx.ConnectError, match="refused"):
        await script.run(POLICY)

    assert script.attempts == 4


@pytest.mark.parametrize(
    ("method", "error", "retried"),
    [
        ("POST", httpx.ConnectError("refused"), True),
        ("POST", httpx.ConnectTimeout("slow"), True),
        ("POST", httpx.PoolTimeout("busy"), True),
        ("POST", httpx.ReadTimeout("slow"), False),
        ("PATCH", httpx.RemoteProtocolError("closed"), False),
        ("GET", httpx.ReadTimeout("slow"), True),
        ("PUT", httpx.ReadError("reset"), True),
        ("GET", httpx.UnsupportedProtocol("gopher"), False),
        ("GET", ValueError("a bug"), False),
    ],
)
async def test_errors_are_retried_when_repeating_is_safe(
    method: str, error: Exception, retried: bool
) -> None:
    script = Script(error, reply(200))

    if retried:
        assert (await script.run(POLICY, method)).status_code == 200
    else:
        with pytest.raises(type(error)):
            await script.run(POLICY, method)

    assert script.attempts == (2 if retried else 1)


@pytest.mark.parametrize("method", ["POST", "PATCH"])
async def test_an_unsafe_method_is_not_retried_on_a_transient_status(method: str) -> None:
    script = Script(reply(503), reply(200))

    assert (await script.run(POLICY, method)).status_code == 503
    assert script.attempts == 1


async def test_unsafe_retries_repeat_a_post_after_a_timeout_or_a_transient_status() -> None:
    policy = RetryPolicy(retry_unsafe=True, base_delay=0.0)

    timeout = Script(httpx.ReadTimeout("slow"), reply(200))
    assert (await timeout.run(policy, "POST")).status_code == 200
    transient = Script(reply(503), reply(200))
    assert (await transient.run(policy, "POST")).status_code == 200
    final = Script(reply(500), reply(200))
    assert (await final.run(policy, "POST")).status_code == 500


async def test_the_retried_statuses_can_be_chosen() -> None:
    policy = RetryPolicy(retry_statuses=frozenset({500}), base_delay=0.0)

    assert (await Script(reply(500), reply(200)).run(policy)).status_code == 200
    assert (await Script(reply(503), reply(200)).run(policy)).status_code == 503


async def test_one_attempt_means_no_retry() -> None:
    script = Script(reply(503), reply(200))

    assert (await script.run(RetryPolicy(max_attempts=1))).status_code == 503
    assert script.slept == []


@pytest.mark.parametrize(
    "options", [{"max_attempts": 0}, {"base_delay": -1.0}, {"max_delay": -1.0}]
)
def test_a_policy_that_cannot_work_is_refused(options: dict[str, float]) -> None:
    with pytest.raises(ValueError):
        RetryPolicy(**options)  # type: ignore[arg-type]
