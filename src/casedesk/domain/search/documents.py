"""What a case's search document holds: its text for everyone who may read the case, and its
internal notes apart, each as the tokens the engines index (``tokens.indexed``).

The public text is the case's number (as ``#N`` and as the bare number), title, description,
its public comments, the customer's name and address, its tags and the text values of its form
fields; the internal text is its internal notes, so a search by someone who may not read
internal notes never matches them. Both are bounded (``MAX_TEXT`` characters, then
``tokens.MAX_TOKENS`` tokens each, the oldest comments kept first), so one case with a huge
conversation cannot make its document huge.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from casedesk.domain.search.tokens import indexed

MAX_TEXT = 200_000
MAX_DEPTH = 8


@dataclass(frozen=True, slots=True)
class CaseText:
    """What of a case is searched, as plain text (read from the case's rows)."""

    number: int
    title: str
    description: str | None = None
    tags: Sequence[str] = ()
    form: Mapping[str, Any] | None = None
    customer_name: str | None = None
    customer_email: str | None = None
    comments: Sequence[tuple[bool, str]] = ()
    """(public, body) of each comment, oldest first."""


@dataclass(frozen=True, slots=True)
class Document:
    public_tokens: str
    internal_tokens: str


def form_texts(value: Any, depth: int = 0) -> Iterator[str]:
    """The text values of a form's data (strings anywhere in it, not its keys, numbers or
    booleans), depth first, to a bounded depth."""
    if depth > MAX_DEPTH:
        return
    if isinstance(value, str):
        yield value
    elif isinstance(value, Mapping):
        for inner in value.values():
            yield from form_texts(inner, depth + 1)
    elif isinstance(value, list | tuple):
        for inner in value:
            yield from form_texts(inner, depth + 1)


def _bounded(parts: Iterable[str | None]) -> str:
    kept: list[str] = []
    room = MAX_TEXT
    for part in parts:
        if not part or room <= 0:
            continue
        kept.append(part[:room])
        room -= len(kept[-1]) + 1
    return "\n".join(kept)


def document_of(case: CaseText) -> Document:
    public = _bounded(
        [
            f"#{case.number} {case.number}",
            case.title,
            case.description,
            case.customer_name,
            case.customer_email,
            " ".join(case.tags),
            *form_texts(case.form or {}),
            *(body for shown, body in case.comments if shown),
        ]
    )
    internal = _bounded(body for shown, body in case.comments if not shown)
    return Document(indexed(public), indexed(internal))
