"""A count of committed changes to who may call, per engine: caches of principals compare it.

Any commit through a session that changed a tenant, a user or an API key (through the ORM
or an ``UPDATE``/``DELETE`` statement on them) moves its engine's generation on. A cache that
notes the generation when it reads a principal knows, at its next use, whether this process
changed anyone since; changes made by other processes reach it when its entries expire.
"""

from __future__ import annotations

from typing import Any
from weakref import WeakKeyDictionary

from sqlalchemy import event
from sqlalchemy.engine import Engine
from sqlalchemy.orm import ORMExecuteState, Session

from casedesk.store.models import ApiKey, Tenant, User

_WHO = (ApiKey, Tenant, User)
_CHANGED = "casedesk_identity_changed"
_generations: WeakKeyDictionary[Engine, int] = WeakKeyDictionary()


def generation(engine: Engine) -> int:
    """How many commits of this engine have changed tenants, users or keys so far."""
    return _generations.get(engine, 0)


def _engine_of(session: Session) -> Engine | None:
    bind = session.get_bind()
    return bind if isinstance(bind, Engine) else getattr(bind, "engine", None)


@event.listens_for(Session, "after_flush")
def _note_flushed(session: Session, _flush_context: Any) -> None:
    changed = (*session.new, *session.dirty, *session.deleted)
    if any(isinstance(obj, _WHO) for obj in changed):
        session.info[_CHANGED] = True


@event.listens_for(Session, "do_orm_execute")
def _note_statement(state: ORMExecuteState) -> None:
    if (state.is_update or state.is_delete) and any(
        mapper.class_ in _WHO for mapper in state.all_mappers
    ):
        state.session.info[_CHANGED] = True


@event.listens_for(Session, "after_commit")
def _count_commit(session: Session) -> None:
    if not session.info.pop(_CHANGED, False):
        return
    engine = _engine_of(session)
    if engine is not None:
        _generations[engine] = _generations.get(engine, 0) + 1


@event.listens_for(Session, "after_rollback")
def _forget_rolled_back(session: Session) -> None:
    session.info.pop(_CHANGED, None)
