from __future__ import annotations

import hashlib

from casedesk.domain.identity.keys import hash_key, issue_key, looks_like_key


def test_issued_key_has_prefix_and_is_stored_only_as_its_hash() -> None:
    issued = issue_key()
    assert issued.plaintext.startswith(issued.prefix + "_")
    assert looks_like_key(issued.plaintext)
    assert issued.key_hash == hashlib.sha256(issued.plaintext.encode()).hexdigest()
    assert issued.plaintext not in issued.key_hash
    assert hash_key(issued.plaintext) == issued.key_hash


def test_keys_are_unique() -> None:
    keys = {issue_key().plaintext for _ in range(1000)}
    assert len(keys) == 1000


def test_only_well_formed_tokens_look_like_keys() -> None:
    good = issue_key().plaintext
    assert not looks_like_key(good[:-1])
    assert not looks_like_key(good + "x")
    assert not looks_like_key("Bearer " + good)
    assert not looks_like_key("")
    assert not looks_like_key("cdk_abcdefgh_" + "!" * 32)
