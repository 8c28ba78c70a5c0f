"""Secrets casedesk must use again later (webhook signing keys, connector credentials) are
stored encrypted with keys derived from ``CASEDESK_SECRET_KEY`` and, while a key rotation is
under way, ``CASEDESK_PREVIOUS_SECRET_KEYS``.

The newest key seals; every key opens (``cryptography``'s ``MultiFernet``). A sealed value
is ``<key id>:<Fernet token>``, the key id being derived from the key (it reveals nothing of
it), so a value says which key sealed it and a rotation knows what is stale without
decrypting anything. Values sealed before key ids existed are a bare token; every key is
tried on them.
"""

from __future__ import annotations

import base64
from collections.abc import Sequence
from dataclasses import dataclass

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

KEY_ID_SEPARATOR = ":"
"""Never part of a Fernet token, which is URL-safe base64."""


class SecretUnreadable(Exception):
    """A stored secret cannot be decrypted with any of the configured keys."""


def _derive(secret_key: str, info: bytes, length: int) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=length, salt=None, info=info).derive(
        secret_key.encode()
    )


@dataclass(frozen=True, slots=True)
class _Key:
    id: str
    fernet: Fernet

    @classmethod
    def of(cls, secret_key: str) -> _Key:
        encryption = _derive(secret_key, b"casedesk stored secrets", 32)
        return cls(
            id=_derive(secret_key, b"casedesk stored secrets key id", 4).hex(),
            fernet=Fernet(base64.urlsafe_b64encode(encryption)),
        )


class SecretBox:
    def __init__(self, secret_key: str, previous_keys: Sequence[str] = ()) -> None:
        keys = [_Key.of(key) for key in (secret_key, *previous_keys)]
        self.key_id = keys[0].id
        """The id of the newest key, the one that seals."""
        self._by_id: dict[str, Fernet] = {}
        for key in keys:
            self._by_id.setdefault(key.id, key.fernet)
        self._every = MultiFernet([key.fernet for key in keys])

    def seal(self, plaintext: str) -> str:
        token = self._by_id[self.key_id].encrypt(plaintext.encode()).decode()
        return f"{self.key_id}{KEY_ID_SEPARATOR}{token}"

    def open(self, sealed: str) -> str:
        key_id, token = _split(sealed)
        opener = self._every if key_id is None else self._by_id.get(key_id)
        if opener is None:
            raise SecretUnreadable(
                f"a stored secret was sealed with key {key_id}, which is neither "
                "CASEDESK_SECRET_KEY nor one of CASEDESK_PREVIOUS_SECRET_KEYS; add that key "
                "to CASEDESK_PREVIOUS_SECRET_KEYS, or set the secret again"
            )
        try:
            return opener.decrypt(token.encode()).decode()
        except InvalidToken:
            raise SecretUnreadable(
                "a stored secret cannot be decrypted with CASEDESK_SECRET_KEY or "
                "CASEDESK_PREVIOUS_SECRET_KEYS; add the key it was sealed with to "
                "CASEDESK_PREVIOUS_SECRET_KEYS, or set the secret again"
            ) from None

    def is_current(self, sealed: str) -> bool:
        """Whether ``sealed`` was sealed with the newest key (then re-sealing changes nothing)."""
        return _split(sealed)[0] == self.key_id

    def reseal(self, sealed: str) -> str:
        """``sealed`` sealed again with the newest key; raises ``SecretUnreadable``."""
        self.open(sealed)  # the same refusal, with the same words, as opening it
        _, token = _split(sealed)
        rotated = self._every.rotate(token.encode()).decode()
        return f"{self.key_id}{KEY_ID_SEPARATOR}{rotated}"


def _split(sealed: str) -> tuple[str | None, str]:
    key_id, separator, token = sealed.rpartition(KEY_ID_SEPARATOR)
    return (key_id if separator else None), token
