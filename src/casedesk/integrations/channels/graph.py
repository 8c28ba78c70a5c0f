"""The hooks of the Microsoft Graph connectors: an Outlook message or a Teams channel message
as a channel message, and an agent's reply as the input of the reply action.

**Outlook** (``outlook``, trigger ``new_mail``): the entity is Graph's ``message`` resource as
``GET /me/messages/{id}`` gives it with its ``internetMessageHeaders``. Its thread is its
``conversationId``; its Message-ID its ``internetMessageId``; ``In-Reply-To``, ``References``
and whether a machine wrote it come from its headers (``mail.is_automatic``). The text is the
``uniqueBody`` (what this message adds to the conversation) when Graph gives it, else the body;
an HTML body is made text with ``mail.html_text`` and kept as HTML. A reply casedesk sent
carries ``X-Casedesk-Message-Id`` (Graph keeps custom ``x-`` headers), so it is ``own`` when
it comes back; a draft is ignored. A reply goes out through ``/messages/{id}/reply`` to the
message answered, as HTML, to the case's requester.

Its files: the message is read with ``$expand=attachments`` (their id, name, type, size and
``isInline``, not their bytes); each ``fileAttachment`` is then fetched on its own: its bytes
with ``GET /me/messages/{id}/attachments/{attachment id}/$value``, or for an inline one the
attachment itself (``contentBytes`` in base64 and the ``contentId`` its ``cid:`` names, which
the list cannot select). An attached Outlook item (``itemAttachment``:
a mail, an event, a contact) and a link to a file in OneDrive or SharePoint
(``referenceAttachment``) are not fetched: they are named as such in the case's history.

**Teams** (``teams``, trigger ``channel_messages``): the entity is a ``chatMessage``. A root
message is its own thread; a reply (``replyToId``) is in its root's. The body is HTML (or
text) and becomes text for the case, the HTML kept. Messages of an application
(``from.application``) are casedesk's own when the application is the connection's
``app_id``, else another app's and ignored; messages of the connection's own account
(``user_id``) are casedesk's own. System messages (a member added, a channel renamed) are
ignored, and so is a message deleted before it was read (the subscription is on new messages
only: edits and deletions made later do not reach casedesk). A reply goes back with the
channel message replies endpoint under the root.

A mail reply carries the comment's files as ``fileAttachment``s (``contentBytes``), each at
most 3 MB (a larger one fails the delivery, naming it; the whole request stays within Graph's
4 MB); a Teams reply carries the text only.

Its files: an image pasted into the message is a hosted content the body's ``<img>`` points at
(``…/messages/{id}/hostedContents/{hosted id}/$value`` under the connection's Graph address):
it is fetched and kept inline, with the hosted content's id as its content id. A file shared in
the message is a ``reference`` attachment to SharePoint or OneDrive, which the Teams
permissions do not read: it is named as not fetched in the case's history (its link stays in
the message's HTML).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import replace
from typing import Any
from urllib.parse import quote

from casedesk.integrations.channel_files import ChannelFile, b64decode
from casedesk.integrations.connector_hooks import ManifestHooks
from casedesk.integrations.mail import html_text, is_automatic
from casedesk.kit.errors import InvalidInput

OWN_HEADER = "X-Casedesk-Message-Id"
"""The header casedesk writes into every reply it sends through Graph: the reply's Message-ID."""
CASE_HEADER = "X-Casedesk-Case"
"""The number of the case a reply answers, for people reading the headers."""
MAX_HTML = 4_000_000
"""Graph refuses a message body beyond about 4 MB."""
MAX_INLINE_ATTACHMENT = 3 * 1024 * 1024
"""The largest file Graph takes inline (``contentBytes``) in a message it sends."""


def _map(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _headers(message: Mapping[str, Any]) -> list[tuple[str, str]]:
    found = []
    for header in message.get("internetMessageHeaders") or []:
        if isinstance(header, Mapping) and header.get("name"):
            found.append((str(header["name"]), str(header.get("value") or "")))
    return found


def _header(headers: list[tuple[str, str]], name: str) -> str | None:
    return next((value for key, value in headers if key.lower() == name.lower()), None)


def _ids(value: str | None) -> list[str]:
    """The Message-IDs of a header (``<a@x> <b@y>``), without angle brackets."""
    if not value:
        return []
    return [part.strip("<>") for part in value.replace(",", " ").split() if part.strip("<>")]


def _party(recipient: Any) -> dict[str, Any] | None:
    address = _map(_map(recipient).get("emailAddress"))
    if not address.get("address") and not address.get("name"):
        return None
    return {"address": address.get("address") or None, "name": address.get("name") or None}


def _parties(recipients: Any) -> list[dict[str, Any]]:
    found = [_party(each) for each in recipients] if isinstance(recipients, list) else []
    return [party for party in found if party is not None]


def _text_of(body: Any) -> tuple[str, str | None]:
    """A Graph ``itemBody`` as (text, HTML or None)."""
    content = str(_map(body).get("content") or "")
    if str(_map(body).get("contentType") or "").lower() == "html":
        return html_text(content), content
    return content.replace("\r\n", "\n").strip(), None


def _mail(message: Mapping[str, Any], context: Mapping[str, Any]) -> dict[str, Any]:
    message_id = str(message.get("id") or "")
    if message.get("isDraft"):
        return {"kind": "ignored", "id": message_id or "-", "note": "a draft is not sent mail"}
    headers = _headers(message)
    sender = _party(message.get("from")) or _party(message.get("sender")) or {}
    text, html = _text_of(message.get("body"))
    if _map(message.get("uniqueBody")).get("content"):
        text = _text_of(message.get("uniqueBody"))[0]
    return {
        "kind": "message",
        "id": message_id,
        "thread_id": message.get("conversationId") or None,
        "subject": message.get("subject"),
        "text": text,
        "html": html,
        "sender": sender,
        "to": _parties(message.get("toRecipients")),
        "cc": _parties(message.get("ccRecipients")),
        "message_id": message.get("internetMessageId") or _header(headers, "Message-ID"),
        "in_reply_to": _ids(_header(headers, "In-Reply-To")),
        "references": _ids(_header(headers, "References")),
        "automatic": is_automatic(headers, sender.get("address")),
        "own": _header(headers, OWN_HEADER) is not None,
        "sent_at": message.get("sentDateTime") or message.get("receivedDateTime"),
        "reply": {"message_id": message_id},
    }


def _chat(message: Mapping[str, Any], context: Mapping[str, Any]) -> dict[str, Any]:
    settings = _map(context.get("settings"))
    message_id = str(message.get("id") or "")
    root = str(message.get("replyToId") or message_id)
    where = _map(message.get("channelIdentity"))
    reply = {
        "team_id": where.get("teamId") or settings.get("team_id"),
        "channel_id": where.get("channelId") or settings.get("channel_id"),
        "root_id": root,
    }
    author = _map(message.get("from"))
    user, application = _map(author.get("user")), _map(author.get("application"))
    base = {"id": message_id or "-", "thread_id": root, "reply": reply}
    if message.get("messageType", "message") != "message":
        note = f"a {message.get('messageType')} is not a person writing"
        return base | {"kind": "ignored", "note": note}
    if message.get("deletedDateTime"):
        return base | {"kind": "ignored", "note": "deleted before it was read"}
    own_app = settings.get("app_id")
    if application and not user:
        if own_app and application.get("id") == own_app:
            return base | {"kind": "message", "own": True}
        return base | {"kind": "ignored", "note": "a message of an app or a bot"}
    if not user.get("id"):
        return base | {"kind": "ignored", "note": "a message without an author"}
    text, html = _text_of(message.get("body"))
    return base | {
        "kind": "message",
        "subject": message.get("subject") or None,
        "text": text,
        "html": html,
        "sender": {"id": user.get("id"), "name": user.get("displayName") or None},
        "own": bool(settings.get("user_id")) and user.get("id") == settings.get("user_id"),
        "sent_at": message.get("createdDateTime"),
    }


FILE_ATTACHMENT = "#microsoft.graph.fileAttachment"
NOT_FETCHED = {
    "#microsoft.graph.itemAttachment": (
        "an attached Outlook item (a mail, an event or a contact) is not fetched"
    ),
    "#microsoft.graph.referenceAttachment": (
        "a link to a file in OneDrive or SharePoint is not fetched"
    ),
}
_HOSTED = re.compile(
    r"""<img\b[^>]*\bsrc\s*=\s*["']([^"']*/hostedContents/([^/"']+)/\$value)["']""", re.I
)
"""An image pasted into a Teams message: its hosted content's ``$value`` URL and id."""


def _mail_files(message: Mapping[str, Any], context: Mapping[str, Any]) -> list[ChannelFile]:
    """An Outlook message's attachments, as ``$expand=attachments`` lists them."""
    message_id = str(message.get("id") or "")
    found = []
    for attachment in message.get("attachments") or []:
        if not isinstance(attachment, Mapping):
            continue
        kind = str(attachment.get("@odata.type") or "")
        size = attachment.get("size")
        described = ChannelFile(
            filename=str(attachment.get("name") or "") or None,
            content_type=str(attachment.get("contentType") or "") or None,
            size=size if isinstance(size, int) else None,
            inline=bool(attachment.get("isInline")),
            content_id=str(attachment.get("contentId") or "").strip("<>") or None,
        )
        if kind != FILE_ATTACHMENT:
            note = NOT_FETCHED.get(kind, f"an attachment of the kind {kind or 'unknown'}")
            found.append(replace(described, note=note))
        elif isinstance(attachment.get("contentBytes"), str):
            found.append(replace(described, data=b64decode(str(attachment["contentBytes"]))))
        else:
            path = (
                f"/me/messages/{quote(message_id, safe='')}"
                f"/attachments/{quote(str(attachment.get('id') or ''), safe='')}"
            )
            found.append(_file_download(described, path))
    return found


def _file_download(described: ChannelFile, path: str) -> ChannelFile:
    """An inline file's JSON (its ``contentId`` is there only: Graph refuses to ``$select``
    it in the list); any other file's bytes as they are (``$value``), read to the limit."""
    if described.inline:
        return replace(
            described, url=path, base64_field="contentBytes", content_id_field="contentId"
        )
    return replace(described, url=path + "/$value")


def _chat_files(message: Mapping[str, Any], context: Mapping[str, Any]) -> list[ChannelFile]:
    """A Teams message's pasted images (hosted contents) and its shared files (noted)."""
    html = str(_map(message.get("body")).get("content") or "")
    found = []
    for number, (url, hosted_id) in enumerate(dict.fromkeys(_HOSTED.findall(html)), 1):
        found.append(
            ChannelFile(
                filename=f"image-{number}",
                url=url.replace("&amp;", "&"),
                content_id=hosted_id,
                inline=True,
            )
        )
    for attachment in message.get("attachments") or []:
        if isinstance(attachment, Mapping) and attachment.get("contentType") == "reference":
            found.append(
                ChannelFile(
                    filename=str(attachment.get("name") or "") or None,
                    note="a file shared from SharePoint or OneDrive is not fetched",
                )
            )
    return found


_FILES: dict[str, Callable[[Mapping[str, Any], Mapping[str, Any]], list[ChannelFile]]] = {
    "new_mail": _mail_files,
    "channel_messages": _chat_files,
}


_MESSAGES: dict[str, Callable[[Mapping[str, Any], Mapping[str, Any]], dict[str, Any]]] = {
    "new_mail": _mail,
    "channel_messages": _chat,
}


def _mail_reply(reply: Mapping[str, Any], context: Mapping[str, Any]) -> dict[str, Any]:
    """``/messages/{id}/reply`` to the message answered, with casedesk's own headers and
    the comment's files as ``fileAttachment``s."""
    to = [
        {"emailAddress": {"address": party["address"]} | _named(party)}
        for party in reply.get("to") or []
        if isinstance(party, Mapping) and party.get("address")
    ]
    given = {
        "message_id": str(_map(reply.get("reply")).get("message_id") or ""),
        "html": str(reply.get("html") or "")[:MAX_HTML],
        "to": to,
        "headers": [
            {"name": OWN_HEADER, "value": f"<{reply.get('message_id')}>"},
            {"name": CASE_HEADER, "value": str(_map(reply.get("case")).get("number") or "")},
        ],
    }
    files = [_map(file) for file in reply.get("files") or []]
    if files:
        given["attachments"] = [_file_attachment(file) for file in files]
    return given


def _file_attachment(file: Mapping[str, Any]) -> dict[str, Any]:
    """A ``fileAttachment`` with its bytes inline (``contentBytes``), which Graph takes for
    files up to 3 MB; a larger one would need an upload session, which casedesk does not
    make yet, so it is refused naming the file."""
    size = int(file.get("size") or 0)
    if size > MAX_INLINE_ATTACHMENT:
        raise InvalidInput(
            f"the file {file.get('filename')!r} ({size} bytes) is larger than the "
            f"{MAX_INLINE_ATTACHMENT} bytes (3 MB) Outlook takes with a reply; share it "
            "another way"
        )
    return {
        "@odata.type": "#microsoft.graph.fileAttachment",
        "name": str(file.get("filename") or "file"),
        "contentType": str(file.get("content_type") or "application/octet-stream"),
        "contentBytes": str(file.get("content") or ""),
    }


def _named(party: Mapping[str, Any]) -> dict[str, str]:
    return {"name": str(party["name"])} if party.get("name") else {}


def _chat_reply(reply: Mapping[str, Any], context: Mapping[str, Any]) -> dict[str, Any]:
    """A reply under the thread's root message, as HTML."""
    settings = _map(context.get("settings"))
    where = _map(reply.get("reply"))
    return {
        "team_id": str(where.get("team_id") or settings.get("team_id") or ""),
        "channel_id": str(where.get("channel_id") or settings.get("channel_id") or ""),
        "root_id": str(where.get("root_id") or reply.get("thread_id") or ""),
        "html": str(reply.get("html") or ""),
    }


_REPLIES: dict[str, Callable[[Mapping[str, Any], Mapping[str, Any]], dict[str, Any]]] = {
    "reply": _mail_reply,
    "reply_in_channel": _chat_reply,
}


class GraphHooks(ManifestHooks):
    def message(
        self, trigger: str, entity: Any, context: Mapping[str, Any]
    ) -> dict[str, Any] | None:
        build = _MESSAGES.get(trigger)
        if build is None:
            return None
        return build(_map(entity), context)

    def files(self, trigger: str, entity: Any, context: Mapping[str, Any]) -> list[ChannelFile]:
        found = _FILES.get(trigger)
        return [] if found is None else found(_map(entity), context)

    def outgoing(
        self, action: str, reply: Mapping[str, Any], context: Mapping[str, Any]
    ) -> dict[str, Any] | None:
        build = _REPLIES.get(action)
        if build is None:
            return None
        return build(reply, context)
