"""The matched fragment: found as the engines find words (folded, whole Latin words, Chinese
anywhere), marked in the case's own text, escaped, cut around the most matches."""

from __future__ import annotations

import random

from casedesk.domain.search.highlight import fragment, matches


def _marked(text: str, *terms: str) -> list[str]:
    return [text[s:e] for s, e in matches(text, terms)]


def test_chinese_words_match_anywhere_in_a_sentence() -> None:
    assert _marked("我的打印机着火了\uff0c打印机很旧", "打印机") == ["打印机", "打印机"]


def test_latin_words_match_whole_and_folded() -> None:
    text = "The PRINTER at the Café prints; printers too"
    assert _marked(text, "printer", "cafe") == ["PRINTER", "Café"]
    assert _marked(text, "print") == []


def test_phrases_match_as_written_and_overlaps_keep_the_longer() -> None:
    text = "it is on fire, the printer is on fire"
    assert _marked(text, "on fire", "fire") == ["on fire", "on fire"]


def test_the_fragment_is_escaped_and_marked() -> None:
    found = fragment("<b>Printer</b> & 打印机", ["printer", "打印机"])
    assert found is not None
    assert found.as_html() == "&lt;b&gt;<mark>Printer</mark>&lt;/b&gt; &amp; <mark>打印机</mark>"


def test_a_long_text_is_cut_around_the_most_matches() -> None:
    text = (
        " ".join(["filler"] * 60) + " refund please, the refund is late " + " ".join(["more"] * 60)
    )
    found = fragment(text, ["refund"], width=80)
    assert found is not None
    assert (found.cut_before, found.cut_after) == (True, True)
    assert len(found.marks) == 2
    assert len(found.text) <= 100
    shown = found.as_html()
    assert shown.startswith("…")
    assert shown.endswith("…")
    assert shown.count("<mark>refund</mark>") == 2


def test_nothing_matched_is_no_fragment() -> None:
    assert fragment("The printer", ["scanner"]) is None
    assert fragment("The printer", []) is None
    assert fragment("", ["x"]) is None


def test_any_text_and_terms_give_marks_within_the_fragment() -> None:
    """Seeded, bounded: folding that changes lengths (ß, ﬁ, accents) never misplaces a mark."""
    pieces = ["a", "ß", "\ufb01", "e\u0301", "é", " ", "打印", "机", "<", "&", "ss", "fi", "x"]
    chance = random.Random(4122026)
    for _ in range(2000):
        text = "".join(chance.choice(pieces) for _ in range(chance.randint(0, 30)))
        terms = ["".join(chance.choice(pieces) for _ in range(chance.randint(1, 3)))]
        found = fragment(text, terms, width=chance.randint(5, 40))
        if found is None:
            continue
        assert found.text in text
        assert all(0 <= s < e <= len(found.text) for s, e in found.marks), (text, terms)
