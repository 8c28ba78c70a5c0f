"""The fragment of a case's text that a search matched, with the matches marked.

The engines rank; the fragment is made here, from the case's own text, the same on every
database. A term matches as the engines match it (``tokens``): folded the same way (case,
accents, full-width forms), a Latin or digit word as a whole word, a Chinese, Japanese or
Korean word anywhere. The fragment is the window of the text around the most matches, cut at
spaces where it can, with an ellipsis where it was cut.
"""

from __future__ import annotations

import functools
import html
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass

from casedesk.domain.search.tokens import is_cjk

WIDTH = 160


@dataclass(frozen=True, slots=True)
class Fragment:
    text: str
    marks: tuple[tuple[int, int], ...]
    """Where the matches are in ``text``: (start, end) offsets, in order, not overlapping."""
    cut_before: bool = False
    cut_after: bool = False

    def as_html(self) -> str:
        """The fragment escaped, each match in ``<mark>``."""
        parts, at = ["…" if self.cut_before else ""], 0
        for start, end in self.marks:
            parts.append(html.escape(self.text[at:start]))
            parts.append(f"<mark>{html.escape(self.text[start:end])}</mark>")
            at = end
        parts.append(html.escape(self.text[at:]))
        parts.append("…" if self.cut_after else "")
        return "".join(parts)


@functools.lru_cache(maxsize=65_536)
def _fold_char(character: str) -> str:
    decomposed = unicodedata.normalize("NFKD", unicodedata.normalize("NFKC", character))
    return "".join(c for c in decomposed.casefold() if not unicodedata.combining(c))


def _folded(text: str) -> tuple[str, list[int]]:
    """``text`` folded, and for each folded character the original one it came from."""
    if text.isascii():
        return text.lower(), list(range(len(text)))
    chars: list[str] = []
    origin: list[int] = []
    for index, character in enumerate(text):
        if character.isascii():
            chars.append(character.lower())
            origin.append(index)
            continue
        for piece in _fold_char(character):
            chars.append(piece)
            origin.append(index)
    return "".join(chars), origin


def _quickly_folded(text: str) -> str:
    """``text`` folded as ``_folded`` folds it, without the map back to the original: a
    look whether a term can be in it at all, before the slower folding that maps back."""
    if text.isascii():
        return text.lower()
    decomposed = unicodedata.normalize("NFKD", unicodedata.normalize("NFKC", text)).casefold()
    return "".join(c for c in decomposed if not unicodedata.combining(c))


def _spans(folded: str, term: str) -> list[tuple[int, int]]:
    found, at = [], folded.find(term)
    whole_word = not any(is_cjk(c) for c in term)
    while at >= 0:
        end = at + len(term)
        before = folded[at - 1] if at else " "
        after = folded[end] if end < len(folded) else " "
        if not whole_word or not (before.isalnum() or after.isalnum()):
            found.append((at, end))
        at = folded.find(term, at + 1)
    return found


def matches(text: str, terms: Sequence[str]) -> list[tuple[int, int]]:
    """Where ``terms`` match in ``text``: (start, end) offsets of the original text, in order;
    of overlapping matches the earlier, longer one is kept."""
    quick = _quickly_folded(text)
    if not any(_quickly_folded(term).strip() in quick for term in terms if term.strip()):
        return []
    folded, origin = _folded(text)
    spans: list[tuple[int, int]] = []
    for term in {_folded(t)[0].strip() for t in terms} - {""}:
        spans.extend(_spans(folded, term))
    kept: list[tuple[int, int]] = []
    for start, end in sorted(spans, key=lambda span: (span[0], -span[1])):
        first, last = origin[start], origin[end - 1] + 1
        if kept and first < kept[-1][1]:
            continue
        kept.append((first, last))
    return kept


def fragment(text: str, terms: Sequence[str], *, width: int = WIDTH) -> Fragment | None:
    """The window of ``text`` of about ``width`` characters with the most matches of
    ``terms``; none when nothing matches."""
    found = matches(text, terms)
    if not found:
        return None
    best, best_count = 0, 0
    for index, (start, _) in enumerate(found):
        count = sum(1 for s, e in found[index:] if e <= start + width)
        if count > best_count:
            best, best_count = index, count
    first = found[best][0]
    start = max(0, first - width // 4)
    if start:
        space = text.rfind(" ", start - 20, first)
        start = space + 1 if space >= start - 20 and space >= 0 else start
    end = min(len(text), start + width)
    if end < len(text):
        space = text.find(" ", end - 20, end + 20)
        end = space if space > found[best][1] else end
    kept = tuple((s - start, e - start) for s, e in found if s >= start and e <= end)
    return Fragment(text[start:end], kept, start > 0, end < len(text))


HIGHLIGHTED = 20_000
"""Characters of each text looked at for its fragment (a long mail's start)."""


def best_fragment(texts: Sequence[tuple[str, str]], terms: Sequence[str]) -> dict[str, str] | None:
    """Of ``texts`` as (field, text), the fragment with the most matches (the first on a
    tie), as ``{"field": …, "html": …}``; None when none matches."""
    best: tuple[str, Fragment] | None = None
    for field, text in texts:
        found = fragment(text[:HIGHLIGHTED], terms)
        if found is not None and (best is None or len(found.marks) > len(best[1].marks)):
            best = (field, found)
    return None if best is None else {"field": best[0], "html": best[1].as_html()}
