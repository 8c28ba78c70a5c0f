"""A desk connected to the local Graph server (``tests/support/graph.py``) through a built-in
Graph connector: the connection with its OAuth2 tokens in place, a workflow with a
``receive_message`` step, its Graph subscription made, and the jobs the workers would run."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

from casedesk.bootstrap import Container
from casedesk.integrations.oauth import Tokens
from casedesk.kit.clock import utcnow
from casedesk.platform.instant import CREATE, PROCESS, RENEW, RESYNC
from casedesk.platform.intake import RUN
from casedesk.store.models import Connection
from tests.support.cases import Desk
from tests.support.channels import DeskSide
from tests.support.graph import ACCESS_TOKEN
from tests.support.instant import run_jobs
from tests.support.oauth_server import CLIENT_ID, CLIENT_SECRET
from tests.support.workflows import published


async def graph_connection(
    container: Container, tenant_id: uuid.UUID, connector: str, settings: dict[str, Any]
) -> str:
    """A connection of a Graph connector, authorized: its access token good for an hour."""
    tokens = Tokens(
        access_token=ACCESS_TOKEN,
        refresh_token="graph-refresh-token",
        scope="Mail.ReadWrite Mail.Send",
        expires_at=utcnow() + timedelta(hours=1),
    )
    async with container.unit_of_work(tenant_id) as uow:
        await uow.begin_write()
        connection = uow.connections.add(
            Connection(
                name=f"{connector} account",
                connector=connector,
                connector_version=1,
                settings={"client_id": CLIENT_ID} | settings,
                secrets_sealed=container.box.seal(f'{{"client_secret": "{CLIENT_SECRET}"}}'),
                token_sealed=container.box.seal(tokens.sealable()),
                token_expires_at=tokens.expires_at,
            )
        )
        await uow.commit()
    return str(connection.id)


class GraphDesk(DeskSide):
    """A tenant whose workflow ``code`` takes a Graph connector's trigger into cases."""

    def __init__(self, desk: Desk, container: Container) -> None:
        super().__init__(desk, container)

    async def connect(
        self, connector: str, trigger: str, settings: dict[str, Any], code: str
    ) -> str:
        """The connection and the workflow, enabled; the Graph subscription made."""
        connection = await graph_connection(
            self.container, self.desk.tenant.id, connector, settings
        )
        workflow = await published(
            self.desk,
            {
                "code": code,
                "name": f"{connector} support",
                "trigger": {
                    "connector": connector,
                    "trigger": trigger,
                    "connection_id": connection,
                },
                "steps": [
                    {"name": "thread", "kind": "receive_message", "template": "question"}
                    | {"queue": "support", "priority": "normal"}
                ],
            },
        )
        self.subscription_id = workflow["subscription"]["id"]
        assert await run_jobs(self.container, self.desk.tenant.id, CREATE) == 1
        return connection

    async def work(self) -> int:
        """What the workers would do now: the inbox, resyncs and recreations, the runs."""
        return await run_jobs(self.container, self.desk.tenant.id, PROCESS, CREATE, RESYNC, RUN)

    async def renew(self) -> int:
        """The planned renewal, run now (it is due at half the subscription's life)."""
        return await run_jobs(self.container, self.desk.tenant.id, RENEW, rounds=1)
