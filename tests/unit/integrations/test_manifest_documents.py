"""Manifest documents: YAML or JSON read as JSON data, without aliases; a connection's test."""

from __future__ import annotations

import pytest

from casedesk.integrations.manifests import ManifestInvalid, load_manifest, read_document


def test_yaml_and_json_give_the_same_document() -> None:
    yaml_text = "id: svc\nname: Service\nconnection:\n  test: {path: /me}\n"
    json_text = '{"id": "svc", "name": "Service", "connection": {"test": {"path": "/me"}}}'
    assert read_document(yaml_text) == read_document(json_text)
    manifest = load_manifest(yaml_text)
    assert manifest.connection.test is not None
    assert manifest.connection.test.path == "/me"


def test_what_json_has_not_is_made_json() -> None:
    assert read_document("day: 2026-01-02\n404: gone\n") == {"day": "2026-01-02", "404": "gone"}


def test_aliases_are_refused_so_a_small_document_cannot_stand_for_a_huge_one() -> None:
    laughs = "a: &a [x, x, x, x, x, x, x, x, x]\n" + "".join(
        f"{n}: &{n} [*{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}]\n"
        for p, n in zip("abcdefgh", "bcdefghi", strict=True)
    )
    with pytest.raises(ManifestInvalid, match="aliases"):
        read_document(laughs)


@pytest.mark.parametrize("text", ["s: !!set {a, b}", "b: !!binary aGVsbG8=", "[[[" * 400])
def test_a_document_json_cannot_hold_is_refused(text: str) -> None:
    with pytest.raises(ManifestInvalid):
        read_document(text)


def test_a_document_that_is_not_yaml_says_where() -> None:
    with pytest.raises(ManifestInvalid, match="line 2"):
        read_document("id: svc\nname: [unclosed\n")
