"""Validated value types that the API accepts and the database can hold.

Each refuses, as a validation error naming its field, what would otherwise fail later in a
driver or a serialiser: an instant that has no UTC form, an integer wider than its column, a
free-form JSON value nested or sized beyond what the product stores, and a U+0000 character,
which PostgreSQL cannot store in text.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

import orjson
from pydantic import AfterValidator, AwareDatetime, Field, WithJsonSchema

INT16_MAX = 2**15 - 1
INT32_MAX = 2**31 - 1
INT64_MAX = 2**63 - 1

Int16 = Annotated[int, Field(ge=-(2**15), le=INT16_MAX)]
Int32 = Annotated[int, Field(ge=-(2**31), le=INT32_MAX)]
Int64 = Annotated[int, Field(ge=-(2**63), le=INT64_MAX)]
PositiveInt32 = Annotated[int, Field(ge=1, le=INT32_MAX)]
PositiveInt64 = Annotated[int, Field(ge=1, le=INT64_MAX)]
NonNegativeInt64 = Annotated[int, Field(ge=0, le=INT64_MAX)]


def _in_utc(moment: datetime) -> datetime:
    try:
        return moment.astimezone(UTC)
    except OverflowError:
        raise ValueError("is out of range once converted to UTC") from None


Instant = Annotated[AwareDatetime, AfterValidator(_in_utc)]
"""A moment with a time zone, converted to UTC; one whose UTC form falls outside the years
1 to 9999 (``0001-01-01T00:00:00+23:59``) is refused instead of overflowing later."""


JSON_MAX_DEPTH = 16
"""Nesting levels of one free-form JSON value: a form or a condition value. MariaDB keeps no
JSON nested more than 31 levels, and a value is stored wrapped (a form sits four levels deep
in the webhook message of a ``case.updated``), so this leaves room for the wrapping."""
JSON_MAX_BYTES = 65_536
"""Bytes of one free-form JSON value, as compact JSON."""


def depth_of(value: Any) -> int:
    """How deeply a JSON value nests: 0 for a scalar, 1 for a flat object or list."""
    deepest, level, frontier = 0, 0, [value]
    while frontier:
        containers = [item for item in frontier if isinstance(item, dict | list)]
        if not containers:
            return deepest
        level += 1
        deepest = level
        frontier = [
            child
            for container in containers
            for child in (container.values() if isinstance(container, dict) else container)
        ]
    return deepest


def _bounded(value: Any) -> Any:
    depth = depth_of(value)
    if depth > JSON_MAX_DEPTH:
        raise ValueError(f"nests {depth} levels deep; at most {JSON_MAX_DEPTH} are kept")
    size = len(orjson.dumps(value))
    if size > JSON_MAX_BYTES:
        raise ValueError(f"is {size} bytes as JSON; at most {JSON_MAX_BYTES} are kept")
    return value


_BOUNDS = {"x-max-depth": JSON_MAX_DEPTH, "x-max-bytes": JSON_MAX_BYTES}

JsonObject = Annotated[
    dict[str, Any],
    AfterValidator(_bounded),
    WithJsonSchema({"type": "object", "additionalProperties": True, **_BOUNDS}),
]
"""A free-form JSON object, at most ``JSON_MAX_DEPTH`` levels deep and ``JSON_MAX_BYTES``."""

JsonValue = Annotated[Any, AfterValidator(_bounded), WithJsonSchema(dict(_BOUNDS))]
"""Any free-form JSON value, bounded as ``JsonObject`` is."""
