"""The tokens every engine indexes: Chinese as overlapping bigrams, other scripts as words,
folded the same way for all three databases."""

from __future__ import annotations

import pytest

from casedesk.domain.search.tokens import MAX_TOKEN, PREFIX, indexed, tokens


def _plain(text: str) -> list[str]:
    found = tokens(text)
    assert all(t.startswith(PREFIX) for t in found)
    return [t.removeprefix(PREFIX) for t in found]


def test_chinese_is_overlapping_bigrams_so_a_word_is_a_run_of_them() -> None:
    assert _plain("我的打印机着火了") == ["我的", "的打", "打印", "印机", "机着", "着火", "火了"]
    sentence, word = _plain("我的打印机着火了"), _plain("打印机")
    assert word == ["打印", "印机"]
    at = sentence.index(word[0])
    assert sentence[at : at + len(word)] == word  # found as a phrase of its tokens
    assert _plain("火") == ["火"]


def test_latin_words_are_folded_and_split_on_what_is_no_letter_or_digit() -> None:
    full_width = "\uff21\uff22\uff23\uff11"  # ABC1 as a Chinese keyboard types it
    assert _plain(f"The Printer's café, {full_width} (v2.5)") == [
        "the",
        "printer",
        "s",
        "cafe",
        "abc1",
        "v2",
        "5",
    ]


def test_mixed_scripts_end_one_run_where_the_other_begins() -> None:
    assert _plain("iPhone15充电器坏了") == ["iphone15", "充电", "电器", "器坏", "坏了"]
    assert _plain("カタカナ와 한국어") == ["カタ", "タカ", "カナ", "ナ와", "한국", "국어"]


def test_every_token_is_at_least_three_characters_and_at_most_the_limit() -> None:
    found = tokens("a I 5 火 " + "x" * 200)
    assert min(len(t) for t in found) >= 3
    assert max(len(t) for t in found) == MAX_TOKEN


@pytest.mark.parametrize("text", ["", "  ", "!!! ... ---", "\u200b\u200d"])
def test_text_without_letters_has_no_tokens(text: str) -> None:
    assert tokens(text) == []
    assert indexed(text) == ""


def test_the_indexed_text_is_the_tokens_separated_by_spaces() -> None:
    assert indexed("打印机 on fire") == f"{PREFIX}打印 {PREFIX}印机 {PREFIX}on {PREFIX}fire"
