"""The official HAR 1.2 schema (vendored in ``har_schema/``) as a validator."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jsonschema
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT6

SCHEMA_DIR = Path(__file__).parent / "har_schema"


def har_validator() -> jsonschema.Draft6Validator:
    """The official HAR schema, its files resolving one another from the vendored folder."""
    resources = [
        Resource.from_contents(json.loads(path.read_text()), default_specification=DRAFT6)
        for path in SCHEMA_DIR.glob("*.json")
    ]
    # A registry without a retriever: a $ref that is not one of these files fails, never
    # goes to the network.
    registry: Registry[Any] = Registry().with_resources(
        (resource.id() or "", resource) for resource in resources
    )
    return jsonschema.Draft6Validator(
        registry.contents("har.json"),
        registry=registry,
        format_checker=jsonschema.Draft6Validator.FORMAT_CHECKER,
    )
