"""When the hub tries a call again, and how long it waits first.

Exponential backoff with jitter, so many callers hitting one failing service spread out;
a ``Retry-After`` on 429 and 503 is honoured, within ``max_delay``. A request that may not
be safe to repeat (POST, PATCH) is retried only when it never left (the connection could
not be made), unless the policy says repeating it is fine (``retry_unsafe``).
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import UTC
from email.utils import parsedate_to_datetime

import httpx

from casedesk.kit.clock import utcnow

IDEMPOTENT_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "TRACE", "PUT", "DELETE"})
RETRY_AFTER_STATUSES = frozenset({429, 503})
# The request was never sent, so repeating it cannot do anything twice.
_NOT_SENT = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout)
_TRANSIENT = (httpx.TimeoutException, httpx.NetworkError, httpx.RemoteProtocolError)


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

    def delay_after_response(
        self, method: str, response: httpx.Response, attempt: int
    ) -> float | None:
        """Seconds to wait before trying again after ``response``; None: don't try again."""
        if attempt >= self.max_attempts or response.status_code not in self.retry_statuses:
            return None
        if not (self.retry_unsafe or method in IDEMPOTENT_METHODS):
            return None
        if response.status_code in RETRY_AFTER_STATUSES:
            retry_after = parse_retry_after(response.headers.get("retry-after"))
            if retry_after is not None:
                return min(retry_after, self.max_delay)
        return self.backoff(attempt)

    def delay_after_error(self, method: str, error: Exception, attempt: int) -> float | None:
        """Seconds to wait before trying again after ``error``; None: don't try again."""
        if attempt >= self.max_attempts:
            return None
        if isinstance(error, _NOT_SENT):
            return self.backoff(attempt)
        if isinstance(error, _TRANSIENT) and (self.retry_unsafe or method in IDEMPOTENT_METHODS):
            return self.backoff(attempt)
        return None

    def backoff(self, attempt: int) -> float:
        """Between half and all of ``base_delay * 2**(attempt-1)``, at most ``max_delay``."""
        ceiling = min(self.max_delay, self.base_delay * 2.0 ** (attempt - 1))
        return ceiling / 2 + random.uniform(0, ceiling / 2)  # noqa: S311 - jitter, not a secret


def parse_retry_after(value: str | None) -> float | None:
    """Seconds from a ``Retry-After`` header: delay-seconds or an HTTP date; None if unusable."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:  # an HTTP date is always GMT, also when written "-0000"
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - utcnow()).total_seconds())
