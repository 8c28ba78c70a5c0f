"""Sealing stored secrets with key ids: the newest key seals, every key opens, and values
sealed before key ids existed still open."""

from __future__ import annotations

import base64

import pytest
from cryptography.fernet import Fernet
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from casedesk.kit.crypto import SecretBox, SecretUnreadable

OLD = "an-old-key-of-this-deployment"
NEW = "the-new-key-of-this-deployment"
OTHER = "a-key-of-some-other-deployment"


def sealed_without_key_id(secret_key: str, plaintext: str) -> str:
    """A value as casedesk sealed it before key ids: a bare Fernet token."""
    derived = HKDF(
        algorithm=hashes.SHA256(), length=32, salt=None, info=b"casedesk stored secrets"
    ).derive(secret_key.encode())
    return Fernet(base64.urlsafe_b64encode(derived)).encrypt(plaintext.encode()).decode()


def test_a_sealed_value_names_its_key_and_opens() -> None:
    box = SecretBox(NEW)

    sealed = box.seal("whsec_abc")

    key_id, _, token = sealed.partition(":")
    assert key_id == box.key_id
    assert len(key_id) == 8
    assert "whsec_abc" not in token
    assert box.open(sealed) == "whsec_abc"
    assert box.is_current(sealed)


def test_the_key_id_depends_on_the_key_only() -> None:
    assert SecretBox(NEW).key_id == SecretBox(NEW, [OLD]).key_id
    assert SecretBox(NEW).key_id != SecretBox(OLD).key_id


def test_the_newest_key_seals_and_every_key_opens() -> None:
    before = SecretBox(OLD).seal("sealed before the rotation")
    rotating = SecretBox(NEW, [OLD])

    assert rotating.open(before) == "sealed before the rotation"
    assert not rotating.is_current(before)
    after = rotating.seal("sealed during the rotation")
    assert after.startswith(SecretBox(NEW).key_id + ":")
    assert SecretBox(NEW).open(after) == "sealed during the rotation"


def test_a_value_sealed_before_key_ids_still_opens_and_is_stale() -> None:
    legacy = sealed_without_key_id(OLD, "whsec_legacy")

    assert SecretBox(OLD).open(legacy) == "whsec_legacy"
    assert SecretBox(NEW, [OLD]).open(legacy) == "whsec_legacy"
    assert not SecretBox(OLD).is_current(legacy)


def test_resealing_moves_a_value_to_the_newest_key() -> None:
    rotating = SecretBox(NEW, [OLD])

    for stale in (SecretBox(OLD).seal("one"), sealed_without_key_id(OLD, "two")):
        resealed = rotating.reseal(stale)
        assert rotating.is_current(resealed)
        assert SecretBox(NEW).open(resealed) in ("one", "two")


def test_a_value_of_a_key_not_configured_is_unreadable_and_says_which_key() -> None:
    foreign = SecretBox(OTHER)
    sealed = foreign.seal("x")

    with pytest.raises(SecretUnreadable, match=f"sealed with key {foreign.key_id}"):
        SecretBox(NEW, [OLD]).open(sealed)
    with pytest.raises(SecretUnreadable, match="CASEDESK_PREVIOUS_SECRET_KEYS"):
        SecretBox(NEW, [OLD]).reseal(sealed)
    with pytest.raises(SecretUnreadable, match="cannot be decrypted"):
        SecretBox(NEW).open(sealed_without_key_id(OTHER, "x"))


def test_a_tampered_value_is_unreadable() -> None:
    box = SecretBox(NEW)
    sealed = box.seal("x")

    with pytest.raises(SecretUnreadable):
        box.open(sealed[:-4] + "AAAA")
