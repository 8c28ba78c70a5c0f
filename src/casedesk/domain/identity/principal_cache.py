"""Principals kept for a few seconds per API key, so that most requests read no key at all.

An entry is found by the key's SHA-256 (never its plaintext) and lives ``seconds`` at most,
never past the key's own expiry. A change to a tenant, a user or a key committed by this
process drops every entry at once (``store.identity_changes``); one committed by another
process (the CLI, another server process) is seen when the entries expire. The cache holds
at most ``max_entries`` keys, dropping the oldest first.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.engine import Engine

from casedesk.domain.identity.principal import Principal
from casedesk.kit.clock import utcnow
from casedesk.store.identity_changes import generation

MAX_ENTRIES = 10_000


@dataclass(slots=True)
class CachedPrincipal:
    principal: Principal
    key_id: uuid.UUID
    generation: int
    """the engine's generation of identity changes when the principal was read"""
    fresh_until: float
    """on the cache's clock"""
    touched_at: datetime | None
    """when the key's use was last written, as far as this process knows"""


class PrincipalCache:
    def __init__(
        self,
        engine: Engine,
        seconds: float,
        *,
        max_entries: int = MAX_ENTRIES,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.engine = engine
        self.seconds = seconds
        self.max_entries = max_entries
        self.clock = clock
        self._entries: dict[str, CachedPrincipal] = {}

    def generation(self) -> int:
        return generation(self.engine)

    def get(self, key_hash: str) -> CachedPrincipal | None:
        entry = self._entries.get(key_hash)
        if entry is None:
            return None
        if entry.fresh_until <= self.clock() or entry.generation != self.generation():
            del self._entries[key_hash]
            return None
        return entry

    def put(
        self,
        key_hash: str,
        principal: Principal,
        *,
        read_at_generation: int,
        key_id: uuid.UUID,
        key_expires_at: datetime | None,
        touched_at: datetime | None,
    ) -> CachedPrincipal:
        """Keep ``principal``, read when the generation was ``read_at_generation``, for as
        long as the cache keeps principals and the key lives; the entry either way."""
        lifetime = self.seconds
        if key_expires_at is not None:
            lifetime = min(lifetime, (key_expires_at - utcnow()).total_seconds())
        entry = CachedPrincipal(
            principal, key_id, read_at_generation, self.clock() + lifetime, touched_at
        )
        if lifetime <= 0:
            return entry
        self._entries.pop(key_hash, None)
        if len(self._entries) >= self.max_entries:
            del self._entries[next(iter(self._entries))]
        self._entries[key_hash] = entry
        return entry

    def __len__(self) -> int:
        return len(self._entries)
