"""The route class of every API route: the checks of a request that no single field can make.

Before FastAPI validates a request's parameters and body, ``ApiRoute`` refuses, with the
same problem documents as FastAPI's own validation errors:

- a query parameter the route does not take (422 naming it), as unknown body fields are;
- a U+0000 character in a query parameter, a path parameter or anywhere in the JSON body
  (422 naming the field): PostgreSQL cannot store it in text, so no database gets it;
- a body that is not declared as JSON (415), instead of a 422 about its shape;
- a body that is not strict JSON (400 ``malformed-json``): it is parsed by orjson, which
  refuses ``NaN``, lone surrogates and nesting beyond 1,024 levels, where the standard
  library's parser accepts the first two and overflows the stack on the third;
- a body nested deeper than ``MAX_BODY_DEPTH`` levels (422 naming where).
"""

from __future__ import annotations

import asyncio
import email.message
from collections.abc import Callable, Coroutine, Iterator
from typing import Any, ClassVar

import orjson
from fastapi.dependencies.models import Dependant
from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute
from starlette.requests import Request
from starlette.responses import Response

from casedesk.integrations import manifests
from casedesk.kit.errors import CasedeskError

MAX_BODY_DEPTH = 32
"""Nesting levels of a whole request body. MariaDB keeps no JSON nested more than 31 levels,
so any part of a body (a rule's conditions) can be stored; a free-form value inside it is
bounded tighter still (``kit.values.JSON_MAX_DEPTH``)."""

Location = tuple[str | int, ...]


class UnsupportedMediaType(CasedeskError):
    status = 415
    title = "Unsupported media type"
    slug = "unsupported-media-type"


class _JsonRequest(Request):
    """A request whose body FastAPI reads as strict JSON."""

    async def json(self) -> Any:
        if not hasattr(self, "_json"):
            self._json = orjson.loads(await self.body())
        return self._json


def _query_names(dependant: Dependant) -> frozenset[str]:
    """The query parameters a route takes, through every dependency it has."""
    names: set[str] = set()
    pending = [dependant]
    while pending:
        current = pending.pop()
        names.update(param.alias for param in current.query_params)
        pending.extend(current.dependencies)
    return frozenset(names)


def _is_json(content_type: str | None) -> bool:
    if not content_type:
        return False
    message = email.message.Message()
    message["content-type"] = content_type
    subtype = message.get_content_subtype()
    return message.get_content_maintype() == "application" and (
        subtype == "json" or subtype.endswith("+json")
    )


def _invalid(location: Location, message: str, kind: str) -> RequestValidationError:
    return RequestValidationError([{"type": kind, "loc": location, "msg": message, "input": None}])


def _strings(value: Any, location: Location) -> Iterator[tuple[Location, str]]:
    """Every string of a JSON value, object keys included, with where it is."""
    pending: list[tuple[Location, Any]] = [(location, value)]
    while pending:
        where, item = pending.pop()
        if isinstance(item, str):
            yield where, item
        elif isinstance(item, dict):
            for key, child in item.items():
                yield (*where, key), key
                pending.append(((*where, key), child))
        elif isinstance(item, list):
            pending.extend(((*where, index), child) for index, child in enumerate(item))


def _too_deep(value: Any) -> Location | None:
    """Where a JSON value first goes deeper than ``MAX_BODY_DEPTH``, if it does."""
    pending: list[tuple[Location, Any]] = [((), value)]
    while pending:
        where, item = pending.pop()
        if not isinstance(item, dict | list):
            continue
        if len(where) >= MAX_BODY_DEPTH:
            return where
        children: Any = item.items() if isinstance(item, dict) else enumerate(item)
        pending.extend(((*where, key), child) for key, child in children)
    return None


def _check_parameters(request: Request, query_names: frozenset[str] | None) -> None:
    """``query_names`` None: the route takes any query parameter (a hook's sender's own)."""
    unknown = [] if query_names is None else sorted(set(request.query_params) - query_names)
    if unknown:
        takes = ", ".join(sorted(query_names or ())) or "none"
        raise RequestValidationError(
            [
                {
                    "type": "extra_forbidden",
                    "loc": ("query", name),
                    "msg": f"unknown query parameter; this route takes: {takes}",
                    "input": request.query_params.getlist(name),
                }
                for name in unknown
            ]
        )
    parameters = [("query", name, value) for name, value in request.query_params.multi_items()]
    parameters += [("path", name, str(value)) for name, value in request.path_params.items()]
    for where, name, value in parameters:
        if "\x00" in value:
            raise _invalid((where, name), "must not contain the character U+0000", "string_nul")


async def _check_body(request: _JsonRequest) -> None:
    if not await request.body():
        return
    if not _is_json(request.headers.get("content-type")):
        raise UnsupportedMediaType(
            "send the body as JSON, with `Content-Type: application/json`",
            received=request.headers.get("content-type"),
        )
    _check_value(await _json_body(request))


async def _json_body(request: _JsonRequest) -> Any:
    try:
        return await request.json()
    except orjson.JSONDecodeError as exc:
        raise _malformed_json(exc) from None


def _malformed_json(exc: orjson.JSONDecodeError) -> RequestValidationError:
    return RequestValidationError(
        [
            {
                "type": "json_invalid",
                "loc": ("body", exc.pos),
                "msg": "JSON decode error",
                "input": {},
                "ctx": {"error": exc.msg},
            }
        ]
    )


def _check_value(body: Any) -> None:
    deep = _too_deep(body)
    if deep is not None:
        message = f"nests deeper than {MAX_BODY_DEPTH} levels here"
        raise _invalid(("body", *deep), message, "too_deep")
    for where, text in _strings(body, ("body",)):
        if "\x00" in text:
            raise _invalid(where, "must not contain the character U+0000", "string_nul")


class MalformedDocument(CasedeskError):
    status = 400
    title = "Malformed document"
    slug = "malformed-document"


YAML_MEDIA_TYPES = frozenset({"application/yaml", "application/x-yaml", "text/yaml", "text/x-yaml"})


def document_body(description: str) -> dict[str, Any]:
    """The ``openapi_extra`` of a route whose body ``read_document`` reads: JSON or YAML."""
    text = {"schema": {"type": "string", "maxLength": 1_048_576}}
    return {
        "requestBody": {
            "required": True,
            "description": description,
            "content": {
                "application/json": {
                    "schema": {
                        "type": "object",
                        "x-max-depth": MAX_BODY_DEPTH,
                        # the request's own limit, CASEDESK_MAX_BODY_BYTES (1 MiB by default)
                        "x-max-bytes": 1_048_576,
                    }
                },
                "application/yaml": text,
                "text/yaml": text,
            },
        }
    }


async def read_document(request: Request) -> Any:
    """The body of a route that takes a document written as JSON or as YAML (a connector
    manifest), with the checks every JSON body gets (U+0000, nesting). A route that calls it
    declares no body parameter, so ``ApiRoute`` leaves the body to it; its OpenAPI shape is
    ``document_body``. YAML is read without aliases, in a worker thread (its parser is pure
    Python), and made JSON, so what is stored reads back the same."""
    content_type = request.headers.get("content-type")
    raw = await request.body()
    if not raw:
        raise _invalid(("body",), "send the document as the body", "missing")
    if _is_json(content_type):
        try:
            value = orjson.loads(raw)
        except orjson.JSONDecodeError as exc:
            raise _malformed_json(exc) from None
    elif _media_type(content_type) in YAML_MEDIA_TYPES:
        value = await asyncio.to_thread(_yaml_value, raw)
    else:
        raise UnsupportedMediaType(
            "send the document as JSON (`Content-Type: application/json`) or YAML "
            "(`application/yaml`, `text/yaml`)",
            received=content_type,
        )
    _check_value(value)
    return value


def _media_type(content_type: str | None) -> str:
    message = email.message.Message()
    message["content-type"] = content_type or ""
    return message.get_content_type()


def _yaml_value(raw: bytes) -> Any:
    try:
        return manifests.read_document(raw.decode("utf-8"))
    except UnicodeDecodeError:
        raise MalformedDocument("the YAML document is not UTF-8") from None
    except manifests.ManifestInvalid as invalid:
        raise MalformedDocument(invalid.problems[0].message) from None


class ApiRoute(APIRoute):
    any_query: ClassVar[bool] = False
    """A route for third parties' requests (``/hooks/{token}``) takes query parameters it
    does not name; U+0000 is refused in them all the same."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handle = super().get_route_handler()
        query_names = None if self.any_query else _query_names(self.dependant)
        takes_body = self.body_field is not None

        async def checked(request: Request) -> Response:
            _check_parameters(request, query_names)
            json_request = _JsonRequest(request.scope, request.receive)
            if takes_body:
                await _check_body(json_request)
            return await handle(json_request)

        return checked
