"""What a mailbox is made of: the fields an admin gives, checked before anything is stored."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, model_validator

Name = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]
Folder = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=255)]
Code = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=63)]
Secret = Annotated[str, StringConstraints(min_length=1, max_length=8192)]

AfterFetch = Literal["leave", "seen", "move"]
ExistingMail = Literal["import", "skip"]
Security = Literal["tls", "starttls", "none"]
Auth = Literal["password", "xoauth2"]
Host = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=255)]
Selector = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$")]
PrivateKey = Annotated[str, StringConstraints(min_length=1, max_length=16_384)]
SMTP_PORTS = {"tls": 465, "starttls": 587, "none": 25}
"""The submission ports by security, when a mailbox names none."""


class _Fields(BaseModel):
    model_config = ConfigDict(extra="forbid")


class MailboxSpec(_Fields):
    """A new mailbox."""

    name: Name
    address: Annotated[str, StringConstraints(strip_whitespace=True, max_length=320)] = Field(
        pattern=r"^[^@\s]+@[^@\s]+$", description="the address customers write to"
    )
    host: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=255)]
    port: int | None = Field(default=None, ge=1, le=65535, description="default: 993 or 143")
    security: Security = "tls"
    tls_verify: bool = Field(default=True, description="false: any certificate is taken")
    tls_ca: Annotated[str, StringConstraints(max_length=65_536)] | None = Field(
        default=None, description="PEM certificates trusted besides the system's"
    )
    username: Annotated[str, StringConstraints(min_length=1, max_length=320)]
    auth: Auth = "password"
    password: Secret | None = Field(
        default=None, description="the password, or the OAuth2 access token for xoauth2; write-only"
    )
    folder: Folder = "INBOX"
    after_fetch: AfterFetch = "leave"
    move_to: Folder | None = None
    existing_mail: ExistingMail = Field(
        default="import",
        description="the mail already in the folder at the first poll: import it, or skip it "
        "and take in only what arrives from then on",
    )
    poll_seconds: int = Field(default=60, ge=10, le=86_400)
    template: Code = Field(description="the template of the cases mail opens")
    queue: Code | None = None
    enabled: bool = True
    smtp_host: Host | None = Field(
        default=None,
        description="the outgoing server of replies and notifications; none: no mail goes out",
    )
    smtp_port: int | None = Field(
        default=None, ge=1, le=65535, description="default: 465, 587 or 25"
    )
    smtp_security: Security = "starttls"
    smtp_username: Annotated[str, StringConstraints(min_length=1, max_length=320)] | None = Field(
        default=None, description="default: the IMAP username"
    )
    smtp_password: Secret | None = Field(
        default=None, description="default: the IMAP password or token; write-only"
    )
    from_name: Name | None = Field(default=None, description="the name mail from the desk shows")
    dkim_selector: Selector | None = None
    dkim_private_key: PrivateKey | None = Field(
        default=None, description="PEM; mail is signed for the address's domain; write-only"
    )
    acknowledge: bool = Field(
        default=True, description="answer a mail that opens a case with 'case received'"
    )
    notifications: bool = Field(
        default=False,
        description="the tenant's own mail (invitations, password resets, portal sign-in "
        "links, 'solved') goes out through this mailbox; setting it clears it on the others; "
        "needs an outgoing server",
    )

    @model_validator(mode="after")
    def _move_needs_a_folder(self) -> MailboxSpec:
        check_move(self.after_fetch, self.move_to, self.folder)
        if (self.dkim_selector is None) != (self.dkim_private_key is None):
            raise ValueError("dkim_selector and dkim_private_key go together")
        return self


class MailboxChanges(_Fields):
    """A change to a mailbox: the fields given are set, the others kept."""

    name: Name | None = None
    address: Annotated[str, StringConstraints(strip_whitespace=True, max_length=320)] | None = (
        Field(default=None, pattern=r"^[^@\s]+@[^@\s]+$")
    )
    host: (
        Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=255)]
        | None
    ) = None
    port: int | None = Field(default=None, ge=1, le=65535)
    security: Security | None = None
    tls_verify: bool | None = None
    tls_ca: Annotated[str, StringConstraints(max_length=65_536)] | None = None
    username: Annotated[str, StringConstraints(min_length=1, max_length=320)] | None = None
    auth: Auth | None = None
    password: Secret | None = None
    folder: Folder | None = None
    after_fetch: AfterFetch | None = None
    move_to: Folder | None = None
    existing_mail: ExistingMail | None = None
    poll_seconds: int | None = Field(default=None, ge=10, le=86_400)
    template: Code | None = None
    queue: Code | None = None
    enabled: bool | None = None
    smtp_host: Host | None = None
    smtp_port: int | None = Field(default=None, ge=1, le=65535)
    smtp_security: Security | None = None
    smtp_username: Annotated[str, StringConstraints(min_length=1, max_length=320)] | None = None
    smtp_password: Secret | None = None
    from_name: Name | None = None
    dkim_selector: Selector | None = None
    dkim_private_key: PrivateKey | None = None
    acknowledge: bool | None = None
    notifications: bool | None = None


def check_move(after_fetch: str, move_to: str | None, folder: str) -> None:
    if after_fetch == "move" and not move_to:
        raise ValueError("after_fetch move needs move_to, the folder to move mail to")
    if after_fetch == "move" and move_to == folder:
        raise ValueError("move_to must be another folder than the one polled")
