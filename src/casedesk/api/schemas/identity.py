"""Request and response bodies of the identity endpoints."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from casedesk.domain.identity.roles import Role
from casedesk.kit.text import Email
from casedesk.kit.values import Instant

Name = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]


class Input(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=False)


class Output(BaseModel):
    model_config = ConfigDict(from_attributes=True)


class TenantOut(Output):
    id: uuid.UUID
    slug: str
    name: str
    edition: str


class UserOut(Output):
    id: uuid.UUID
    email: str
    name: str
    role: Role
    active: bool
    has_password: bool = Field(description="whether the user can sign in to the workbench")
    created_at: datetime
    updated_at: datetime


class UserCreate(Input):
    email: Email
    name: Name
    role: Role = Role.AGENT


class UserUpdate(Input):
    name: Name | None = None
    role: Role | None = None
    active: bool | None = None


class PasswordLinkIn(Input):
    purpose: Literal["invite", "reset"] | None = Field(
        default=None,
        description="`invite` for a user without a password, `reset` otherwise (the default "
        "follows whether the user has one)",
    )


class PasswordLinkOut(BaseModel):
    purpose: Literal["invite", "reset"]
    sent: bool = Field(
        description="true: the link was mailed to the user (a mailbox sends the tenant's "
        "mail) and is not in this answer"
    )
    url: str | None = Field(
        description="the one-time link when it was not mailed; give it to the user (it is "
        "shown once)"
    )
    expires_at: datetime


class PortalLinkIn(Input):
    email: Email = Field(description="the customer's address (a new one makes a customer)")


class PortalLinkOut(BaseModel):
    customer_id: uuid.UUID
    url: str = Field(
        description="the one-time link that signs the customer in to the portal; give it to "
        "them (it is shown once, and it ends their earlier unused links)"
    )
    expires_at: datetime


class UserPage(BaseModel):
    items: list[UserOut]
    next_cursor: str | None


class ApiKeyOut(Output):
    id: uuid.UUID
    user_id: uuid.UUID
    name: str
    prefix: str = Field(description="the first characters of the key, to recognise it")
    created_at: datetime
    last_used_at: datetime | None
    revoked_at: datetime | None
    expires_at: datetime | None


class ApiKeyCreated(ApiKeyOut):
    key: str = Field(description="the key itself; shown only in this response")


class ApiKeyCreate(Input):
    name: Name
    user_id: uuid.UUID | None = Field(
        default=None, description="whose key; defaults to the caller (admins may name another)"
    )
    expires_at: Instant | None = Field(
        default=None, description="when the key stops working (with a time zone)"
    )


class ApiKeyPage(BaseModel):
    items: list[ApiKeyOut]
    next_cursor: str | None


class MeUser(Output):
    id: uuid.UUID
    email: str
    name: str
    role: Role


class Me(BaseModel):
    tenant: TenantOut
    user: MeUser
    role: Role
    api_key_id: uuid.UUID | None
