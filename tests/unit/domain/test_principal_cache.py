"""The cache of callers: bounded, timed, and never past a key's expiry."""

from __future__ import annotations

import uuid
from datetime import timedelta

from sqlalchemy import create_engine

from casedesk.domain.identity.principal import Principal
from casedesk.domain.identity.principal_cache import PrincipalCache
from casedesk.domain.identity.roles import Role
from casedesk.kit.clock import utcnow


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def _principal() -> Principal:
    return Principal(
        tenant_id=uuid.uuid4(),
        tenant_slug="t",
        tenant_name="T",
        edition="standard",
        user_id=uuid.uuid4(),
        email="a@example.com",
        name="A",
        role=Role.AGENT,
        api_key_id=uuid.uuid4(),
    )


def _cache(seconds: float = 5, max_entries: int = 3) -> tuple[PrincipalCache, Clock]:
    clock = Clock()
    engine = create_engine("sqlite://")
    return PrincipalCache(engine, seconds, max_entries=max_entries, clock=clock), clock


def _put(cache: PrincipalCache, key_hash: str, expires_in: float | None = None) -> None:
    expires = None if expires_in is None else utcnow() + timedelta(seconds=expires_in)
    principal = _principal()
    assert principal.api_key_id is not None
    cache.put(
        key_hash,
        principal,
        read_at_generation=cache.generation(),
        key_id=principal.api_key_id,
        key_expires_at=expires,
        touched_at=None,
    )


def test_the_oldest_key_goes_first_when_the_cache_is_full() -> None:
    cache, _ = _cache(max_entries=3)
    for key_hash in ("a", "b", "c", "d"):
        _put(cache, key_hash)
    assert len(cache) == 3
    assert cache.get("a") is None
    assert all(cache.get(key_hash) is not None for key_hash in ("b", "c", "d"))


def test_an_entry_lives_the_cache_time_and_no_longer() -> None:
    cache, clock = _cache(seconds=5)
    _put(cache, "a")
    clock.now = 4.9
    assert cache.get("a") is not None
    clock.now = 5.0
    assert cache.get("a") is None


def test_an_entry_never_outlives_its_key() -> None:
    cache, clock = _cache(seconds=60)
    _put(cache, "a", expires_in=2)
    clock.now = 3
    assert cache.get("a") is None
    _put(cache, "b", expires_in=-1)
    assert cache.get("b") is None


def test_no_time_means_no_cache() -> None:
    cache, _ = _cache(seconds=0)
    _put(cache, "a")
    assert cache.get("a") is None
    assert len(cache) == 0
