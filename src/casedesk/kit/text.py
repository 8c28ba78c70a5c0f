"""Small value types and conversions shared by the API and the domain."""

from __future__ import annotations

import re
from typing import Annotated

from pydantic import AfterValidator, StringConstraints

_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


def _email(value: str) -> str:
    value = value.strip()
    if not _EMAIL.match(value):
        raise ValueError("not an e-mail address")
    return value.lower()


Email = Annotated[str, StringConstraints(max_length=320), AfterValidator(_email)]
"""An e-mail address, trimmed and lower-cased."""


def optional_str(value: object) -> str | None:
    """``str(value)``, keeping None as None (for ids that may be absent)."""
    return None if value is None else str(value)
