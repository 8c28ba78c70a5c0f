"""How a connection proves who it is: the auth schemes a manifest can declare.

Each scheme names the connection's secret fields it reads (sealed in the database, never
shown again); the connection's settings are the rest of what an admin fills in.
"""

from __future__ import annotations

from typing import Annotated, Literal, Union

from pydantic import Field

from casedesk.integrations.manifests.common import Part, Template


class NoAuth(Part):
    type: Literal["none"] = "none"

    @property
    def secret_fields(self) -> tuple[str, ...]:
        return ()


class ApiKeyAuth(Part):
    """A key sent in a header (``X-Api-Key: …``) or in the query string (``?key=…``)."""

    type: Literal["api_key"]
    in_: Literal["header", "query"] = Field(default="header", alias="in")
    name: str = Field(min_length=1, max_length=100)
    prefix: str = Field(default="", max_length=50, description="written before the key")
    secret_field: str = Field(default="api_key", description="the secret field with the key")

    @property
    def secret_fields(self) -> tuple[str, ...]:
        return (self.secret_field,)


class BearerAuth(Part):
    type: Literal["bearer"]
    secret_field: str = Field(default="token", description="the secret field with the token")

    @property
    def secret_fields(self) -> tuple[str, ...]:
        return (self.secret_field,)


class BasicAuth(Part):
    type: Literal["basic"]
    username: str = Field(default="username", description="the setting holding the user name")
    secret_field: str = Field(default="password", description="the secret field")

    @property
    def secret_fields(self) -> tuple[str, ...]:
        return (self.secret_field,)


CLIENT_ID = "{{ connection.client_id }}"
"""Where the client id is by default: the connection's ``client_id`` setting."""


class OAuth2Code(Part):
    """OAuth 2.0 authorization code, with PKCE (RFC 7636) and refresh tokens.

    An admin authorizes the connection once in a browser; casedesk keeps the tokens sealed
    and refreshes the access token shortly before it expires.
    """

    type: Literal["oauth2_code"]
    authorize_url: Template
    token_url: Template
    client_id: Template = Field(default=CLIENT_ID, description="over {connection, secrets}")
    scopes: list[str] = Field(default_factory=list, max_length=100)
    scope_separator: str = " "
    pkce: bool = True
    authorize_params: dict[str, Template] = Field(
        default_factory=dict, description="extra parameters of the authorize URL"
    )
    client_auth: Literal["body", "basic"] = Field(
        default="body", description="how the client credentials go to the token endpoint"
    )

    @property
    def secret_fields(self) -> tuple[str, ...]:
        return ("client_secret",)


class OAuth2ClientCredentials(Part):
    """OAuth 2.0 client credentials: a token for the client itself, fetched when needed."""

    type: Literal["oauth2_client_credentials"]
    token_url: Template
    client_id: Template = Field(default=CLIENT_ID, description="over {connection, secrets}")
    scopes: list[str] = Field(default_factory=list, max_length=100)
    scope_separator: str = " "
    client_auth: Literal["body", "basic"] = "body"
    token_params: dict[str, Template] = Field(
        default_factory=dict, description="extra parameters of the token request (`audience`)"
    )

    @property
    def secret_fields(self) -> tuple[str, ...]:
        return ("client_secret",)


AuthScheme = Annotated[
    Union[NoAuth, ApiKeyAuth, BearerAuth, BasicAuth, OAuth2Code, OAuth2ClientCredentials],  # noqa: UP007
    Field(discriminator="type"),
]
