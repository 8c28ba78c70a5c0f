"""API keys: high-entropy random tokens, shown once, stored as SHA-256.

A key is ``cdk_<prefix>_<secret>``. With 190 bits of randomness a fast hash is as safe
as a slow one and lets every request resolve its key with one indexed lookup.
"""

from __future__ import annotations

import hashlib
import re
import secrets
import string
from dataclasses import dataclass

_ALPHABET = string.ascii_letters + string.digits
_KEY_PATTERN = re.compile(r"^cdk_([A-Za-z0-9]{8})_([A-Za-z0-9]{32})$")


@dataclass(frozen=True, slots=True)
class IssuedKey:
    plaintext: str
    prefix: str
    key_hash: str


def _random(length: int) -> str:
    return "".join(secrets.choice(_ALPHABET) for _ in range(length))


def hash_key(plaintext: str) -> str:
    return hashlib.sha256(plaintext.encode()).hexdigest()


def issue_key() -> IssuedKey:
    prefix = _random(8)
    plaintext = f"cdk_{prefix}_{_random(32)}"
    return IssuedKey(plaintext=plaintext, prefix=f"cdk_{prefix}", key_hash=hash_key(plaintext))


def looks_like_key(token: str) -> bool:
    return _KEY_PATTERN.match(token) is not None
