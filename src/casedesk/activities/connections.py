"""Connections: a tenant's accounts at services, and the client that calls through one.

``manifest_for`` resolves a connector by id (a built-in, or the tenant's own, pinned to a
version); ``open_client`` gives the ``ConnectorClient`` of a connection, its secrets opened.
"""

from __future__ import annotations

import uuid

import orjson

from casedesk.integrations.catalogue import builtin
from casedesk.integrations.hub import Hub
from casedesk.integrations.manifests import ConnectorManifest, parse_manifest
from casedesk.integrations.runtime import Account, ConnectorClient
from casedesk.kit.crypto import SecretBox
from casedesk.kit.errors import InvalidInput, NotFound
from casedesk.store.unit_of_work import UnitOfWork


async def manifest_for(uow: UnitOfWork, connector: str, version: int | None) -> ConnectorManifest:
    """The connector's manifest: a built-in one, or a published version of the tenant's own
    (the latest when ``version`` is None)."""
    shipped = builtin(connector)
    if shipped is not None:
        return shipped
    own = await uow.connectors.by_code(connector)
    if own is None:
        raise InvalidInput(f"no connector {connector!r}", field="connector")
    number = own.latest_version if version is None else version
    found = await uow.connectors.version(own.id, number)
    if found is None:
        raise InvalidInput(
            f"connector {connector!r} has no published version {number}", field="connector"
        )
    return parse_manifest(found.manifest)


def open_secrets(box: SecretBox, sealed: str | None) -> dict[str, str]:
    if sealed is None:
        return {}
    opened: dict[str, str] = orjson.loads(box.open(sealed))
    return opened


async def open_client(
    uow: UnitOfWork,
    hub: Hub,
    box: SecretBox,
    *,
    tenant_id: uuid.UUID,
    connector: str,
    connection_id: uuid.UUID | None,
) -> ConnectorClient:
    """The client of a connection, or of a connector used without one (a plain webhook)."""
    if connection_id is None:
        manifest = await manifest_for(uow, connector, None)
        return ConnectorClient(hub, manifest, Account(tenant_id, None, {}))
    connection = await uow.connections.find(connection_id)
    if connection is None:
        raise NotFound(f"connection {connection_id} not found")
    manifest = await manifest_for(uow, connection.connector, connection.connector_version)
    account = Account(
        tenant_id,
        connection.id,
        dict(connection.settings),
        open_secrets(box, connection.secrets_sealed),
    )
    return ConnectorClient(hub, manifest, account)
