"""When the hub tries a call again, and how long it waits first.

The attempts are run by tenacity; this module only says what is retried and how long to
wait. Exponential backoff with jitter (half the ceiling fixed, half random, so many callers
hitting one failing service spread out); a ``Retry-After`` on 429 and 503 is honoured,
within ``max_delay``. A request that may not be safe to repeat (POST, PATCH) is retried only
when it never left (the connection could not be made), unless the policy says repeating it is
fine (``retry_unsafe``). When the attempts run out, the last response is returned, or the
last error raised.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC
from email.utils import parsedate_to_datetime

import httpx
from tenacity import (
    AsyncRetrying,
    RetryCallState,
    retry_if_exception,
    retry_if_result,
    stop_after_attempt,
    wait_exponential,
    wait_random_exponential,
)
from tenacity.wait import wait_base

from casedesk.kit.clock import utcnow

IDEMPOTENT_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "TRACE", "PUT", "DELETE"})
RETRY_AFTER_STATUSES = frozenset({429, 503})
# The request was never sent, so repeating it cannot do anything twice.
_NOT_SENT = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout)
_TRANSIENT = (httpx.TimeoutException, httpx.NetworkError, httpx.RemoteProtocolError)

Sleep = Callable[[float], Awaitable[None]]


@dataclass(frozen=True, slots=True, kw_only=True)
class RetryPolicy:
    max_attempts: int = 4
    base_delay: float = 0.5
    max_delay: float = 30.0
    retry_statuses: frozenset[int] = frozenset({429, 502, 503, 504})
    retry_unsafe: bool = False

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise ValueError(f"max_attempts must be at least 1, not {self.max_attempts}")
        if self.base_delay < 0 or self.max_delay < 0:
            raise ValueError("retry delays cannot be negative")

    def retrying(self, method: str, *, sleep: Sleep = asyncio.sleep) -> AsyncRetrying:
        """The tenacity controller for one call: ``await policy.retrying(m)(attempt)``."""
        repeatable = self.retry_unsafe or method.upper() in IDEMPOTENT_METHODS
        return AsyncRetrying(
            stop=stop_after_attempt(self.max_attempts),
            wait=_RetryAfterOr(self._backoff(), self.max_delay),
            retry=retry_if_exception(lambda error: _worth_repeating(error, repeatable))
            | retry_if_result(
                lambda response: repeatable and response.status_code in self.retry_statuses
            ),
            sleep=sleep,
            reraise=True,
            # Out of attempts: the last response (of any status) is the answer, or the last
            # error is raised, never tenacity's RetryError.
            retry_error_callback=_last_outcome,
        )

    def _backoff(self) -> wait_base:
        """Between half and all of ``base_delay * 2**(attempt-1)``, at most ``max_delay``."""
        half, cap = self.base_delay / 2, self.max_delay / 2
        return wait_exponential(multiplier=half, max=cap) + wait_random_exponential(
            multiplier=half, max=cap
        )


class _RetryAfterOr(wait_base):
    """The service's ``Retry-After`` on 429/503 (at most ``max_delay``), else ``backoff``."""

    def __init__(self, backoff: wait_base, max_delay: float) -> None:
        self.backoff = backoff
        self.max_delay = max_delay

    def __call__(self, retry_state: RetryCallState) -> float:
        outcome = retry_state.outcome
        if outcome is not None and not outcome.failed:
            response: httpx.Response = outcome.result()
            if response.status_code in RETRY_AFTER_STATUSES:
                retry_after = parse_retry_after(response.headers.get("retry-after"))
                if retry_after is not None:
                    return min(retry_after, self.max_delay)
        return self.backoff(retry_state)


def _worth_repeating(error: BaseException, repeatable: bool) -> bool:
    if isinstance(error, _NOT_SENT):
        return True
    return repeatable and isinstance(error, _TRANSIENT)


def _last_outcome(retry_state: RetryCallState) -> object:
    assert retry_state.outcome is not None
    return retry_state.outcome.result()


def parse_retry_after(value: str | None) -> float | None:
    """Seconds from a ``Retry-After`` header: delay-seconds or an HTTP date; None if unusable."""
    if not value:
        return None
    value = value.strip()
    if value.isascii() and value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:  # an HTTP date is always GMT, also when written "-0000"
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - utcnow()).total_seconds())
