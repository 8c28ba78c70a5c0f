"""The text casedesk indexes, the same for every database's full-text engine.

None of the three engines finds a two-character Chinese word in running text by itself
(SQLite's and PostgreSQL's trigrams need three characters; MariaDB's InnoDB parser does not
split Chinese and drops tokens under three characters and English stopwords), and each folds
case and accents its own way. So the text is tokenized here, and each engine indexes the
tokens as plain words:

- NFKC (full-width Latin letters and digits are plain ones), case-folded, accents removed
  (``café`` is ``cafe``);
- a run of letters or digits of other scripts is one token;
- a run of Chinese, Japanese or Korean characters is its overlapping bigrams (``打印机`` is
  ``打印``, ``印机``), a lone character itself;
- each token is prefixed with ``PREFIX``, so none is under three characters or an InnoDB
  stopword, and cut to ``MAX_TOKEN`` characters (InnoDB ignores longer ones).

A word of a query is tokenized the same way and sought as a phrase of its tokens, so a Chinese
word is found wherever it stands in a sentence, and the same query finds the same cases on all
three engines.
"""

from __future__ import annotations

import unicodedata

PREFIX = "qz"
MAX_TOKEN = 60
MAX_TOKENS = 16_000
"""Tokens a column of a document holds at most: PostgreSQL counts a ``tsvector``'s positions
to 16,383 (a phrase beyond is not found there) and refuses one over 1 MB; the first tokens are
kept."""
_CJK_RANGES = (
    (0x3040, 0x30FF),  # Hiragana, Katakana
    (0x3400, 0x4DBF),  # CJK Extension A
    (0x4E00, 0x9FFF),  # CJK Unified Ideographs
    (0xAC00, 0xD7AF),  # Hangul syllables
    (0xF900, 0xFAFF),  # CJK Compatibility Ideographs
    (0x20000, 0x3134F),  # CJK Extensions B to G
)


def is_cjk(character: str) -> bool:
    code = ord(character)
    return any(low <= code <= high for low, high in _CJK_RANGES)


def _folded(text: str) -> str:
    decomposed = unicodedata.normalize("NFKD", unicodedata.normalize("NFKC", text).casefold())
    kept = "".join(c for c in decomposed if not unicodedata.combining(c))
    return unicodedata.normalize("NFC", kept)


def tokens(text: str) -> list[str]:
    """``text`` as the tokens the engines index, in order."""
    found: list[str] = []
    run: list[str] = []
    cjk: list[str] = []

    def end_run() -> None:
        if run:
            found.append(PREFIX + "".join(run)[: MAX_TOKEN - len(PREFIX)])
            run.clear()

    def end_cjk() -> None:
        if len(cjk) == 1:
            found.append(PREFIX + cjk[0])
        found.extend(PREFIX + cjk[i] + cjk[i + 1] for i in range(len(cjk) - 1))
        cjk.clear()

    for character in _folded(text):
        if is_cjk(character):
            end_run()
            cjk.append(character)
        elif character.isalnum():
            end_cjk()
            run.append(character)
        else:
            end_run()
            end_cjk()
    end_run()
    end_cjk()
    return found


def indexed(text: str, limit: int = MAX_TOKENS) -> str:
    """What a document's text column holds: its first ``limit`` tokens, separated by spaces."""
    return " ".join(tokens(text)[:limit])
