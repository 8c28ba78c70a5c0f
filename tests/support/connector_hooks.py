"""Connector hooks for tests, installed through a ``casedesk.connectors`` entry point."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

from casedesk.integrations.connector_hooks import ManifestHooks


class SampleHooks(ManifestHooks):
    """Takes the items out of an answer shaped ``{"pages": [{"rows": [...]}, ...]}``."""

    made: ClassVar[int] = 0

    def __init__(self) -> None:
        type(self).made += 1

    def items(self, trigger: str, answer: Any, context: Mapping[str, Any]) -> list[Any] | None:
        return [row for page in answer["pages"] for row in page["rows"]]


class NotHooks:
    """Has none of the hook methods."""


def failing() -> ManifestHooks:
    raise RuntimeError("cannot start without its configuration")
