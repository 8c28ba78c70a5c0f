"""RFC 9457 problem details for every error the HTTP API returns."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from http import HTTPStatus
from typing import Any

import orjson
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response

from casedesk.kit.errors import CasedeskError
from casedesk.kit.logging import get_logger
from casedesk.kit.metrics import UNHANDLED_ERRORS

PROBLEM_JSON = "application/problem+json"
log = get_logger(__name__)


def problem(
    status: int,
    *,
    title: str | None = None,
    detail: str | None = None,
    slug: str | None = None,
    headers: Mapping[str, str] | None = None,
    **extra: Any,
) -> Response:
    body: dict[str, Any] = {
        "type": f"/problems/{slug}" if slug else "about:blank",
        "title": title or HTTPStatus(status).phrase,
        "status": status,
    }
    if detail:
        body["detail"] = detail
    body.update(extra)
    return Response(
        orjson.dumps(body, default=str),
        status_code=status,
        media_type=PROBLEM_JSON,
        headers=headers,
    )


def _field_path(location: Sequence[int | str]) -> str:
    parts = [str(part) for part in location]
    if parts and parts[0] in ("body", "query", "path", "header", "cookie"):
        return ".".join(parts[1:]) or parts[0]
    return ".".join(parts)


def _json_error(error: Any) -> dict[str, Any]:
    position = error.get("loc", ("body", "?"))[-1]
    reason = error.get("ctx", {}).get("error", "invalid JSON")
    return {
        "field": "body",
        "in": "body",
        "message": f"{reason} at character {position}",
        "type": "json_invalid",
    }


def _validation_errors(errors: Sequence[Any]) -> list[dict[str, Any]]:
    return [
        {
            "field": _field_path(error.get("loc", ())),
            "in": str(error.get("loc", ("body",))[0]),
            "message": error.get("msg", "invalid"),
            "type": error.get("type", "value_error"),
        }
        for error in errors
    ]


async def _on_casedesk_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, CasedeskError)
    headers = {"WWW-Authenticate": 'Bearer realm="casedesk"'} if exc.status == 401 else None
    return problem(
        exc.status, title=exc.title, detail=exc.detail, slug=exc.slug, headers=headers, **exc.extra
    )


async def _on_validation_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)
    errors = list(exc.errors())
    malformed = [error for error in errors if error.get("type") == "json_invalid"]
    if malformed:
        return problem(
            400,
            title="Malformed JSON",
            detail="the request body is not valid JSON",
            slug="malformed-json",
            errors=[_json_error(error) for error in malformed],
        )
    fields = ", ".join(sorted({_field_path(error.get("loc", ())) for error in errors}))
    return problem(
        422,
        title="Invalid input",
        detail=f"invalid fields: {fields}",
        slug="invalid-input",
        errors=_validation_errors(errors),
    )


async def _on_http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, StarletteHTTPException)
    detail = exc.detail if isinstance(exc.detail, str) else None
    return problem(exc.status_code, detail=detail, headers=exc.headers)


async def _on_unexpected(request: Request, exc: Exception) -> Response:
    UNHANDLED_ERRORS.inc()
    log.exception("unhandled error", path=request.url.path, method=request.method)
    return problem(
        500,
        detail="an unexpected error occurred; it has been logged with this request's id",
        slug="internal-error",
    )


def install(app: FastAPI) -> None:
    app.add_exception_handler(CasedeskError, _on_casedesk_error)
    app.add_exception_handler(RequestValidationError, _on_validation_error)
    app.add_exception_handler(StarletteHTTPException, _on_http_error)
    app.add_exception_handler(Exception, _on_unexpected)
