"""Channels: where customers write from (a mailbox, a Slack channel, a Teams channel).

Every channel connector turns what its source holds into one shape, ``ChannelMessage``, and
the threading rules below work on that shape alone, the same for mail and chat:

1. a message already recorded (its id on its channel) is recorded once;
2. a message casedesk sent itself (``own``, or a ``Message-ID`` casedesk wrote) is never a
   comment;
3. a message in a thread casedesk knows is a comment on that thread's case: by the provider's
   thread id first, then ``In-Reply-To`` / ``References`` against the Message-IDs of the
   messages recorded, then a case number token (``[#1234]``) in the subject;
4. anything else opens a case, unless it is automatic (an auto-reply, a bounce, bulk mail),
   which never opens a case and never gets an answer.

An agent's public comment on a case that came from a channel goes back as a ``Reply``.
"""

from __future__ import annotations

import html
import re
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

MESSAGE_ID_CHARS = 255
TOKEN = re.compile(r"\[#(\d{1,18})\]")
"""The case number token casedesk writes into a subject, and finds in one."""


class _Part(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)


class Party(_Part):
    """Someone who writes or is written to: an address, a name, a user id at the source."""

    address: str | None = Field(default=None, max_length=320)
    name: str | None = Field(default=None, max_length=200)
    id: str | None = Field(default=None, max_length=255)


def message_key(value: str) -> str:
    """A Message-ID as kept and compared: without angle brackets and surrounding space."""
    return value.strip().strip("<>").strip()


def _keys(values: Any) -> list[str]:
    if values is None:
        return []
    if isinstance(values, str):
        values = values.split()
    found = []
    for value in values:
        key = message_key(str(value))
        if key and len(key) <= MESSAGE_ID_CHARS and key not in found:
            found.append(key)
    return found


class ChannelMessage(_Part):
    """One message of a channel, whatever the source."""

    kind: Literal["message", "edit", "delete", "ignored"] = "message"
    """``edit`` and ``delete`` name, in ``id``, a message recorded before; ``ignored`` is what
    is not a person writing (a bot's join message, a channel topic change), with a ``note``."""
    id: str = Field(min_length=1, max_length=255, description="the message's id at the source")
    thread_id: str | None = Field(default=None, max_length=255)
    """The provider's thread: Gmail's threadId, Graph's conversationId, a Teams root message,
    a Slack ``channel:thread_ts``. None: the message is its own thread."""
    subject: str | None = Field(default=None, max_length=998)
    text: str = ""
    html: str | None = None
    sender: Party = Field(default_factory=Party)
    to: list[Party] = Field(default_factory=list, max_length=500)
    cc: list[Party] = Field(default_factory=list, max_length=500)
    message_id: str | None = None
    """The RFC 5322 Message-ID (mail), kept without angle brackets."""
    in_reply_to: list[str] = Field(default_factory=list)
    references: list[str] = Field(default_factory=list)
    automatic: bool = False
    """Written by a machine: ``Auto-Submitted`` other than ``no``, ``X-Autoreply``,
    ``Precedence: bulk/junk/list/auto_reply``, a mailer-daemon bounce."""
    own: bool = False
    """Written by casedesk itself (its bot user, its app): never a comment."""
    sent_at: datetime | None = None
    reply: dict[str, Any] = Field(default_factory=dict)
    """What the connector needs to answer in this thread (a Slack channel id, a Teams team
    and channel, the Graph message to reply to): handed back in ``Reply.reply``."""
    note: str | None = Field(default=None, max_length=500)

    @field_validator("message_id", mode="before")
    @classmethod
    def _message_id(cls, value: Any) -> str | None:
        keys = _keys([value] if isinstance(value, str) else value)
        return keys[0] if keys else None

    @field_validator("in_reply_to", "references", mode="before")
    @classmethod
    def _message_ids(cls, value: Any) -> list[str]:
        return _keys(value)

    def thread_keys(self) -> list[str]:
        """The Message-IDs this message answers, nearest first."""
        keys = list(self.in_reply_to)
        keys.extend(key for key in reversed(self.references) if key not in keys)
        return keys

    def case_number(self) -> int | None:
        """The case number a ``[#N]`` token in the subject names, if any."""
        found = TOKEN.search(self.subject or "")
        return int(found.group(1)) if found else None


REPLY_PREFIX = re.compile(
    r"^\s*(?:re|aw|sv|vs|antw|wg|fwd?|tr|回复|答复|回覆|转发)\s*[:\uff1a]\s*", re.I
)
"""The reply and forward prefixes mailers put before a subject: English ``Re:``/``Fwd:``,
German ``AW:``/``WG:``, Scandinavian ``SV:``/``VS:``, Dutch ``Antw:``, French ``TR:``,
Chinese ``回复:``/``答复:``/``转发:`` (with an ASCII or a full-width colon)."""


def base_subject(subject: str | None) -> str:
    """The subject without the case token and without any reply or forward prefixes."""
    text = TOKEN.sub("", subject or "").strip()
    while (found := REPLY_PREFIX.match(text)) is not None:
        text = text[found.end() :].strip()
    return text


def reply_subject(subject: str | None, number: int) -> str:
    """``Re: <subject> [#N]``: the token once, ``Re:`` once (whatever prefixes the
    customer's mailer put before it)."""
    text = base_subject(subject)
    return f"Re: {text} [#{number}]" if text else f"[#{number}]"


def html_of(text: str) -> str:
    """Plain text as HTML: escaped, its paragraphs and line breaks kept."""
    paragraphs = [part for part in re.split(r"\n\s*\n", text.strip()) if part.strip()]
    return "".join(
        "<p>" + "<br>\n".join(html.escape(line) for line in part.splitlines()) + "</p>"
        for part in paragraphs
    )


class ReplyFile(_Part):
    """A file of the comment a reply carries: the attachment row, not its bytes (the
    delivery reads those from the blob store by ``sha256``)."""

    id: str
    filename: str
    content_type: str
    size: int
    sha256: str


class Reply(_Part):
    """An agent's public comment on its way back into the case's thread."""

    text: str
    html: str
    subject: str
    to: list[Party]
    """The case's requester, not simply whoever wrote last."""
    thread_id: str | None
    message_id: str
    """The Message-ID casedesk gives this reply (without angle brackets)."""
    in_reply_to: str | None
    """The Message-ID of the message it answers (the thread's latest inbound)."""
    references: list[str]
    reply: dict[str, Any]
    """The ``reply`` of the message it answers."""
    case: dict[str, Any]
    """``id``, ``number``, ``title``."""
    comment: dict[str, Any]
    """``id``, ``author_name``."""
    attachments: list[ReplyFile] = Field(default_factory=list)
    """The comment's files, oldest first; mail channels send them as MIME parts."""
