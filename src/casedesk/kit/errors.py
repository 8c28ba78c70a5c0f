"""Errors that carry their HTTP meaning; one handler in the API renders them.

Domain code raises these; the adapter turns them into RFC 9457 problem documents.
"""

from __future__ import annotations

from typing import Any, ClassVar


class CasedeskError(Exception):
    """Base of every error the product raises on purpose."""

    status: ClassVar[int] = 400
    title: ClassVar[str] = "Bad request"
    slug: ClassVar[str] = "bad-request"

    def __init__(self, detail: str, **extra: Any) -> None:
        super().__init__(detail)
        self.detail = detail
        self.extra = extra


class InvalidInput(CasedeskError):
    status = 422
    title = "Invalid input"
    slug = "invalid-input"


class Unauthenticated(CasedeskError):
    status = 401
    title = "Unauthenticated"
    slug = "unauthenticated"


class Forbidden(CasedeskError):
    status = 403
    title = "Forbidden"
    slug = "forbidden"


class NotFound(CasedeskError):
    status = 404
    title = "Not found"
    slug = "not-found"


class Conflict(CasedeskError):
    status = 409
    title = "Conflict"
    slug = "conflict"


class PreconditionFailed(CasedeskError):
    status = 412
    title = "Precondition failed"
    slug = "precondition-failed"


class PayloadTooLarge(CasedeskError):
    status = 413
    title = "Content too large"
    slug = "content-too-large"


class ServiceUnavailable(CasedeskError):
    status = 503
    title = "Service unavailable"
    slug = "service-unavailable"


class TenantScopeViolation(RuntimeError):
    """A query touched tenant-scoped rows without a tenant: a programming error."""
