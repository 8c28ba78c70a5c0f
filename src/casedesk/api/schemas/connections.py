"""Bodies of the connector and connection endpoints."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from casedesk.api.schemas.configuration import Code, Input, Name
from casedesk.kit.values import JsonObject, PositiveInt32

SecretValue = Annotated[str, StringConstraints(max_length=8192)]
# Keys are codes: a name that is not one is refused, which the schema says as well.
_ONLY_CODES: dict[str, Any] = {"additionalProperties": False}


# --- connectors ----------------------------------------------------------------------------


class ProblemOut(BaseModel):
    field: str = Field(description="where in the manifest, e.g. `triggers.new.polling.items`")
    message: str


class TriggerOut(BaseModel):
    name: str
    title: str
    kind: Literal["polling", "instant"]
    settings: dict[str, Any] = Field(description="JSON Schema of what a subscription sets")
    enricher: str | None


class ActionOut(BaseModel):
    name: str
    title: str
    input: dict[str, Any] = Field(description="JSON Schema of the action's input")


class SecretFieldOut(BaseModel):
    name: str
    title: str


class ConnectionShapeOut(BaseModel):
    settings: dict[str, Any] = Field(description="JSON Schema of a connection's settings")
    secrets: list[SecretFieldOut]
    testable: bool = Field(description="`POST /connections/{id}/test` has a request to send")


class ConnectorVersionOut(BaseModel):
    version: int
    published_at: datetime | None = Field(description="null for a built-in connector")


class ConnectorSummary(BaseModel):
    id: str
    name: str
    description: str
    builtin: bool
    auth: str = Field(description="none, api_key, bearer, basic, oauth2_code, ...; of the latest")
    latest_version: int = Field(description="0: a custom connector with no published version")
    versions: list[ConnectorVersionOut]


class ConnectorDetail(ConnectorSummary):
    manifest: dict[str, Any] | None = Field(description="the latest published manifest")
    connection: ConnectionShapeOut | None
    triggers: list[TriggerOut]
    actions: list[ActionOut]
    enrichers: list[str]
    draft: dict[str, Any] | None = Field(description="a custom connector's editable draft")
    draft_problems: list[ProblemOut] = Field(
        description="what publishing the draft would refuse; empty when it can be published"
    )


class ConnectorVersionDetail(ConnectorVersionOut):
    manifest: dict[str, Any]


class ConnectorPublished(ConnectorVersionDetail):
    unchanged: bool = Field(
        description="true: the draft was this version already, and nothing was published"
    )


# --- connections ---------------------------------------------------------------------------


class ConnectionIn(Input):
    name: Name
    connector: Code = Field(description="a built-in connector's id, or one of the tenant's own")
    connector_version: PositiveInt32 | None = Field(
        default=None,
        description="the custom connector's published version to pin (default: the latest);"
        " a built-in connector pins the version it ships",
    )
    settings: JsonObject = Field(
        default_factory=dict, description="checked against the connector's settings schema"
    )
    secrets: dict[Code, SecretValue | None] = Field(
        default_factory=dict,
        max_length=20,
        description="the connector's secret fields; sealed, and never shown again",
        json_schema_extra=_ONLY_CODES,
    )


class ConnectionUpdate(Input):
    name: Name
    connector: Code | None = Field(default=None, description="if given, the connection's own")
    connector_version: PositiveInt32 | None = Field(
        default=None, description="pin another published version (default: keep the pinned one)"
    )
    settings: JsonObject = Field(default_factory=dict)
    secrets: dict[Code, SecretValue | None] = Field(
        default_factory=dict,
        max_length=20,
        description="fields to set; an empty string or null clears one, and fields left out"
        " keep their value",
        json_schema_extra=_ONLY_CODES,
    )


class SecretOut(BaseModel):
    set: bool
    mask: str | None = Field(description="`****` and at most the last 4 characters")


class ConnectionOut(BaseModel):
    id: uuid.UUID
    name: str
    connector: str
    connector_version: int
    auth: str
    settings: dict[str, Any]
    secrets: dict[str, SecretOut]
    secrets_readable: bool = Field(
        description="false: no configured key opens the stored secrets; set them again"
    )
    status: Literal["active", "needs_reauth", "disabled"]
    status_reason: str | None
    authorized: bool = Field(description="OAuth2: the connection holds tokens")
    token_expires_at: datetime | None
    created_at: datetime
    updated_at: datetime


class ConnectionPage(BaseModel):
    items: list[ConnectionOut]
    next_cursor: str | None


class AuthorizeOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    authorize_url: str = Field(description="open it in a browser and grant access")
    state: str
    code_challenge: str | None
    code_challenge_method: Literal["S256"] | None
    redirect_uri: str = Field(description="where the provider sends the browser back")
    expires_at: datetime


class CallbackOut(BaseModel):
    connection_id: uuid.UUID
    status: str
    token_expires_at: datetime | None


class CheckOut(BaseModel):
    ok: bool
    status: int | None = Field(description="the service's answer; null when none came")
    reason: str
    trace_id: str = Field(description="`GET /api/v1/traces?connection_id=` shows the call")
