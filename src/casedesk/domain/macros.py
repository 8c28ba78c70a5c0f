"""Macros: a canned reply with placeholders, and the case changes applied with it.

A placeholder is ``{{ name }}`` from a fixed list. Rendering is plain substitution of those
names with the case's values: no template language runs, so a macro's text can never reach
attributes, call functions or loop, whoever wrote it. A name not on the list is refused when
the macro is saved, never silently left in a reply.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Annotated, Union

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from casedesk.domain.automation.rules import AddTag, ApplyAction, SetPriority, Transfer
from casedesk.kit.errors import InvalidInput

PLACEHOLDER = re.compile(r"\{\{\s*([^{}]*?)\s*\}\}")
PLACEHOLDERS = ("customer.name", "customer.email", "case.number", "case.title", "agent.name")

MacroAction = Annotated[
    Union[SetPriority, AddTag, ApplyAction, Transfer],  # noqa: UP007
    Field(discriminator="type"),
]


class MacroSpec(BaseModel):
    """A macro as written by its author: the reply and the changes that go with it."""

    model_config = ConfigDict(extra="forbid")

    name: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]
    body: Annotated[str, StringConstraints(max_length=65_536)] = ""
    public: bool = Field(default=False, description="the reply goes to the customer")
    shared: bool = Field(
        default=False, description="for the whole tenant (admins only); else the author's own"
    )
    actions: list[MacroAction] = Field(default_factory=list, max_length=20)


def unknown_placeholders(body: str) -> list[str]:
    """The placeholder names in the text that are not on the list, each once, in order."""
    names = [match.group(1) for match in PLACEHOLDER.finditer(body)]
    return list(dict.fromkeys(name for name in names if name not in PLACEHOLDERS))


def check_macro(spec: MacroSpec) -> None:
    """Refuse a macro that does nothing or names a placeholder that does not exist."""
    unknown = unknown_placeholders(spec.body)
    if unknown:
        shown = ", ".join("{{" + name + "}}" for name in unknown)
        raise InvalidInput(
            f"unknown placeholders: {shown}; known: {', '.join(PLACEHOLDERS)}",
            field="body",
            unknown=unknown,
        )
    if not spec.body.strip() and not spec.actions:
        raise InvalidInput("a macro needs a reply text or at least one action", field="body")


def render(body: str, values: Mapping[str, str]) -> str:
    """The text with each placeholder replaced by its value (unknown names stay as written)."""
    return PLACEHOLDER.sub(lambda match: values.get(match.group(1), match.group(0)), body)
