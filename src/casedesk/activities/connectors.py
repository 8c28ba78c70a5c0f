"""Connectors: the built-in ones, and a tenant's own (the low-code path).

A tenant's connector is a draft manifest, saved as it is written (it may be invalid: reading
it shows its problems), and published as immutable versions, as state machines are. What
uses a connector pins a version; publishing a draft identical to the latest version
publishes nothing. A custom connector may not take the id of a built-in one.

``connector_problems`` is the one check of a manifest, used by publishing and by
``casedesk connector validate``: its shape (``parse_manifest``), its JSON Schemas (which run
on RE2 like form schemas) and its Python hooks (installed, and loading).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from sqlalchemy.exc import IntegrityError

from casedesk.domain.cases.forms import schema_problems
from casedesk.domain.identity.principal import Principal
from casedesk.domain.identity.roles import Role
from casedesk.integrations.catalogue import builtin
from casedesk.integrations.connector_hooks import hook_problems
from casedesk.integrations.manifests import (
    ConnectorManifest,
    ManifestInvalid,
    Problem,
    parse_manifest,
)
from casedesk.kit.errors import Conflict, InvalidInput, NotFound
from casedesk.store.models import Connector, ConnectorVersion
from casedesk.store.unit_of_work import UnitOfWork

_CODE = re.compile(r"^[a-z][a-z0-9_-]{0,62}$")
_NAME_CHARS = 200


def _schemas(manifest: ConnectorManifest) -> Iterator[tuple[str, dict[str, Any]]]:
    """Every JSON Schema of a manifest, with its path."""
    yield "connection.settings", manifest.connection.settings
    for name, action in manifest.actions.items():
        yield f"actions.{name}.input", action.input
    for name, trigger in manifest.triggers.items():
        yield f"triggers.{name}.settings", trigger.settings


def connector_problems(document: Any) -> list[Problem]:
    """Every problem of a manifest document, each with its path; none: it can be published."""
    try:
        manifest = parse_manifest(document)
    except ManifestInvalid as invalid:
        # The hooks are looked up by name, whatever else is wrong.
        hooks = document.get("hooks") if isinstance(document, dict) else None
        return invalid.problems + hook_problems(hooks if isinstance(hooks, str) else None)
    problems = [
        Problem(found["field"], found["message"])
        for path, schema in _schemas(manifest)
        for found in schema_problems(schema, path)
    ]
    return problems + hook_problems(manifest.hooks)


def problem_details(problems: list[Problem]) -> list[dict[str, str]]:
    """Problems as the ``errors`` of a 422, each naming its path in the manifest."""
    return [
        {"field": p.path or "manifest", "message": p.message, "type": "manifest"} for p in problems
    ]


def _code_of(document: dict[str, Any]) -> str:
    code = document.get("id")
    if not isinstance(code, str) or not _CODE.match(code):
        raise InvalidInput(
            "a connector's `id` is 1 to 63 lowercase letters, digits, `-` or `_`, starting "
            "with a letter; a draft is saved under it",
            field="id",
        )
    if builtin(code) is not None:
        raise Conflict(f"{code!r} is the id of a built-in connector; choose another", field="id")
    return code


def _name_of(document: dict[str, Any], code: str) -> str:
    name = document.get("name")
    if isinstance(name, str) and 0 < len(name.strip()) <= _NAME_CHARS:
        return name.strip()
    return code  # the draft's problems say what is wrong with its name


async def _commit(uow: UnitOfWork, what: str) -> None:
    try:
        await uow.commit()
    except IntegrityError:
        raise Conflict(f"{what} was changed by another request at the same time; retry") from None


async def save_connector_draft(
    uow: UnitOfWork, actor: Principal, document: dict[str, Any]
) -> Connector:
    """Create the tenant's connector or replace its draft; published versions never change."""
    actor.require(Role.ADMIN, "editing a connector")
    code = _code_of(document)
    await uow.begin_write()
    connector: Connector | None = await uow.connectors.by_code(code, lock=True)
    if connector is None:
        connector = uow.connectors.add(
            Connector(code=code, name=_name_of(document, code), draft=document, latest_version=0)
        )
    else:
        connector.name, connector.draft = _name_of(document, code), document
    await _commit(uow, f"connector {code!r}")
    return connector


async def connector_by_code(uow: UnitOfWork, code: str, *, lock: bool = False) -> Connector:
    connector: Connector | None = await uow.connectors.by_code(code, lock=lock)
    if connector is None:
        raise NotFound(f"no connector {code!r}")
    return connector


@dataclass(frozen=True, slots=True)
class Published:
    version: ConnectorVersion
    unchanged: bool
    """The draft was the latest version already, so that version is the answer."""


def _as_version(draft: dict[str, Any], number: int) -> dict[str, Any]:
    """The manifest of version ``number``: the draft, with the version it is published as."""
    return draft | {"version": number}


async def publish_connector(uow: UnitOfWork, actor: Principal, code: str) -> Published:
    """Validate the draft and freeze it as version N+1; every problem together is one 422."""
    actor.require(Role.ADMIN, "publishing a connector")
    await uow.begin_write()
    connector = await connector_by_code(uow, code, lock=True)
    problems = connector_problems(connector.draft)
    if problems:
        raise InvalidInput(
            f"the draft of connector {code!r} has {len(problems)} problem(s): "
            + "; ".join(f"{p.path or 'manifest'}: {p.message}" for p in problems),
            errors=problem_details(problems),
        )
    latest = await uow.connectors.version(connector.id, connector.latest_version)
    if latest is not None and latest.manifest == _as_version(connector.draft, latest.version):
        return Published(latest, unchanged=True)
    connector.latest_version += 1
    version = uow.connectors.add_version(
        ConnectorVersion(
            connector_id=connector.id,
            version=connector.latest_version,
            manifest=_as_version(connector.draft, connector.latest_version),
            published_by=actor.user_id,
        )
    )
    await _commit(uow, f"connector {code!r}")
    return Published(version, unchanged=False)
