"""A case's search document: everything searched, its internal notes apart, bounded."""

from __future__ import annotations

from casedesk.domain.search.documents import MAX_TEXT, CaseText, document_of, form_texts
from casedesk.domain.search.tokens import MAX_TOKENS, PREFIX, tokens


def _words(indexed: str) -> set[str]:
    return {token.removeprefix(PREFIX) for token in indexed.split()}


def test_the_public_text_holds_what_is_searched_and_internal_notes_are_apart() -> None:
    document = document_of(
        CaseText(
            number=1042,
            title="Printer on fire",
            description="我的打印机着火了",
            tags=("vip", "hardware"),
            form={"order": {"sku": "HP-200", "quantity": 2, "gift": True}, "notes": ["red"]},
            customer_name="Ann Lee",
            customer_email="ann@example.com",
            comments=[(True, "We sent a technician"), (False, "Secret supplier issue")],
        )
    )
    public = _words(document.public_tokens)
    assert {"1042", "printer", "fire", "打印", "印机", "vip", "hardware"} <= public
    assert {"hp", "200", "red", "ann", "lee", "example", "technician"} <= public
    assert "2" not in public  # numbers and booleans of the form are not text
    assert "secret" not in public
    assert _words(document.internal_tokens) == {"secret", "supplier", "issue"}


def test_form_texts_walk_a_bounded_depth() -> None:
    deep: object = "bottom"
    for _ in range(20):
        deep = {"inner": deep}
    assert list(form_texts(deep)) == []
    assert list(form_texts({"a": ["x", {"b": "y"}], "c": 3})) == ["x", "y"]


def test_a_huge_conversation_keeps_a_bounded_document_oldest_first() -> None:
    comments = [(True, f"first{n} " * 10_000) for n in range(5)]
    document = document_of(CaseText(number=1, title="Big", comments=comments))
    words = _words(document.public_tokens)
    assert {"big", "first0", "first1"} <= words
    assert "first2" not in words
    assert "first4" not in words
    assert len(document.public_tokens) < MAX_TEXT * 2
    assert len(document.public_tokens.split()) == MAX_TOKENS
    assert tokens("first0") == [f"{PREFIX}first0"]
