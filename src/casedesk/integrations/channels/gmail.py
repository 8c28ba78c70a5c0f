"""The hooks of the Gmail connector: a Gmail message resource as a channel message, and an
agent's reply as the input of ``users.messages.send``.

The entity is what ``users.messages.get`` answers: ``id``, ``threadId``, ``labelIds`` and
either ``raw`` (``format=raw``: the whole RFC 5322 message, base64url) or ``payload``
(``format=full``: the MIME tree taken apart, each part's headers and base64url ``body.data``).
Both are read by ``integrations.mail``, so charsets, encoded words, HTML-only mail and
automatic mail are read the same way as for every mail channel. A message is known by its
Gmail id and its thread by Gmail's ``threadId``.

Its files: with ``format=full`` each attachment part (a name, or ``Content-Disposition:
attachment``, or a part that is not text) is a ``ChannelFile`` with its filename, type and
``Content-ID``: a small part's bytes come in its ``body.data``, a larger one's ``body.attachmentId``
is fetched with ``users.messages.attachments.get`` (base64url ``data``). A ``format=raw``
message holds its files already (``mail.attached_parts``).

A message labelled ``SENT`` was sent from the mailbox (casedesk's own replies come back
through history.list that way): ``own``, never a comment. Drafts, spam and trash are
``ignored``. A reply goes out as a base64url RFC 5322 message (``mail.compose_reply``) in the
thread it answers, with the comment's files as attachment parts (``multipart/mixed``).
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Iterator, Mapping
from dataclasses import replace
from email.message import Message
from email.parser import HeaderParser
from typing import Any
from urllib.parse import quote

from casedesk.integrations import mail
from casedesk.integrations.channel_files import ChannelFile
from casedesk.integrations.connector_hooks import ManifestHooks

IGNORED_LABELS = {"DRAFT": "a draft", "SPAM": "spam", "TRASH": "mail in the trash"}
"""Labels of messages that are nobody writing to the desk, and why."""


def b64url_decode(text: str) -> bytes:
    """Base64url (or base64) with or without its padding, as Gmail and Pub/Sub write it."""
    cleaned = "".join(text.split())
    padded = cleaned + "=" * (-len(cleaned) % 4)
    return base64.urlsafe_b64decode(padded.replace("+", "-").replace("/", "_"))


def b64url_encode(content: bytes) -> str:
    return base64.urlsafe_b64encode(content).decode("ascii")


def _headers(part: Mapping[str, Any]) -> list[tuple[str, str]]:
    found = part.get("headers")
    if not isinstance(found, list):
        return []
    return [
        (str(header["name"]), _as_raw(str(header.get("value") or "")))
        for header in found
        if isinstance(header, Mapping) and header.get("name")
    ]


def _as_raw(value: str) -> str:
    """A header value as the ``email`` parser keeps raw bytes (surrogate escapes): Gmail
    may give a value decoded already, as text beyond ASCII, which then reads as UTF-8."""
    return value.encode("utf-8").decode("ascii", errors="surrogateescape")


def _part_message(headers: list[tuple[str, str]]) -> Message:
    """A part's headers as a ``Message``, to read its content type, charset and disposition."""
    text = "".join(f"{name}: {value}\r\n" for name, value in headers)
    return HeaderParser().parsestr(text + "\r\n")


def _text_parts(part: Mapping[str, Any]) -> Iterator[mail.TextPart]:
    """The text parts of a ``format=full`` payload, in order, without attachments."""
    mime_type = str(part.get("mimeType") or "").lower()
    children = part.get("parts")
    if mime_type.startswith("multipart/") or (isinstance(children, list) and children):
        for child in children if isinstance(children, list) else []:
            if isinstance(child, Mapping):
                yield from _text_parts(child)
        return
    if not mime_type.startswith("text/") or part.get("filename"):
        return
    headers = _part_message(_headers(part))
    if (headers.get("Content-Disposition") or "").split(";")[0].strip().lower() == "attachment":
        return
    body = part.get("body")
    data = body.get("data") if isinstance(body, Mapping) else None
    if not isinstance(data, str):
        return
    yield mail.TextPart(mime_type, headers.get_content_charset(), b64url_decode(data))


def _file_parts(part: Mapping[str, Any]) -> Iterator[Mapping[str, Any]]:
    """The parts of a ``format=full`` payload that are files, as ``mail.attached_parts``
    takes them from raw mail: a name, an ``attachment`` disposition, or not text."""
    children = part.get("parts")
    mime_type = str(part.get("mimeType") or "").lower()
    if mime_type.startswith("multipart/") or (isinstance(children, list) and children):
        for child in children if isinstance(children, list) else []:
            if isinstance(child, Mapping):
                yield from _file_parts(child)
        return
    headers = _part_message(_headers(part))
    disposition = (headers.get("Content-Disposition") or "").split(";")[0].strip().lower()
    attached = disposition == "attachment" or bool(part.get("filename") or headers.get_filename())
    if attached or mime_type.split("/")[0] not in ("text", "multipart", "message", ""):
        yield part


def _file_of(message_id: str, part: Mapping[str, Any]) -> ChannelFile:
    headers = _part_message(_headers(part))
    found = part.get("body")
    body: Mapping[str, Any] = found if isinstance(found, Mapping) else {}
    # Gmail gives ``filename`` decoded; the header's (a payload without one) may hold
    # encoded words.
    named = headers.get_filename()
    filename = part.get("filename") or (mail.decode_header_value(named) if named else None)
    disposition = (headers.get("Content-Disposition") or "").split(";")[0].strip().lower()
    content_id = str(headers.get("Content-ID") or "").strip().strip("<>").strip()[:255]
    size = body.get("size")
    described = ChannelFile(
        filename=str(filename) if filename else None,
        content_type=str(part.get("mimeType") or "") or None,
        size=size if isinstance(size, int) else None,
        content_id=content_id or None,
        inline=disposition == "inline",
    )
    attachment_id = body.get("attachmentId")
    if isinstance(attachment_id, str) and attachment_id:
        path = f"/users/me/messages/{quote(message_id, safe='')}/attachments/"
        return replace(described, url=path + quote(attachment_id, safe=""), base64_field="data")
    data = body.get("data")
    try:
        content = b64url_decode(data) if isinstance(data, str) else b""
    except (binascii.Error, ValueError):
        return replace(described, note="its bytes in the message are not base64url")
    return replace(described, data=content)


def files_of(entity: Mapping[str, Any]) -> list[ChannelFile]:
    """The files of a message resource: parts to fetch (full) or the raw mail's own."""
    raw = entity.get("raw")
    if isinstance(raw, str):
        return [
            ChannelFile(
                filename=part.filename,
                content_type=part.content_type,
                size=part.size,
                content_id=part.content_id,
                inline=part.inline,
                data=part.content,
            )
            for part in mail.attached_parts(b64url_decode(raw))
        ]
    payload = entity.get("payload")
    message_id = str(entity.get("id") or "")
    parts = _file_parts(payload) if isinstance(payload, Mapping) else iter(())
    return [_file_of(message_id, part) for part in parts]


def read_entity(entity: Mapping[str, Any]) -> dict[str, Any]:
    """The ``ChannelMessage`` fields of the mail in a message resource (raw or full)."""
    raw = entity.get("raw")
    if isinstance(raw, str):
        return mail.parse_message(b64url_decode(raw))
    payload = entity.get("payload")
    part = payload if isinstance(payload, Mapping) else {}
    return mail.read_parts(_headers(part), _text_parts(part))


def _labels(entity: Mapping[str, Any]) -> set[str]:
    labels = entity.get("labelIds")
    return {str(label) for label in labels} if isinstance(labels, list) else set()


class GmailHooks(ManifestHooks):
    def message(
        self, trigger: str, entity: Any, context: Mapping[str, Any]
    ) -> dict[str, Any] | None:
        found = entity if isinstance(entity, Mapping) else {}
        message_id = str(found.get("id") or "")
        if not message_id:
            return {"kind": "ignored", "id": "-", "note": "a message resource without an id"}
        labels = _labels(found)
        for label, what in IGNORED_LABELS.items():
            if label in labels:
                return {"kind": "ignored", "id": message_id, "note": f"{what} ({label})"}
        try:
            fields = read_entity(found)
        except (binascii.Error, ValueError) as exc:
            return {"kind": "ignored", "id": message_id, "note": f"unreadable mail: {exc}"}
        thread_id = str(found.get("threadId") or message_id)
        return fields | {
            "kind": "message",
            "id": message_id,
            "thread_id": thread_id,
            "own": "SENT" in labels,
            "reply": {"thread_id": thread_id},
        }

    def files(self, trigger: str, entity: Any, context: Mapping[str, Any]) -> list[ChannelFile]:
        if not isinstance(entity, Mapping):
            return []
        return files_of(entity)

    def outgoing(
        self, action: str, reply: Mapping[str, Any], context: Mapping[str, Any]
    ) -> dict[str, Any] | None:
        """``messages.send``: the reply as RFC 5322 mail, base64url, in the thread it answers
        (the answered message's ``threadId``, else the case's thread)."""
        settings = context.get("settings") or {}
        sender = None
        if settings.get("email_address"):
            sender = {"address": settings["email_address"], "name": settings.get("from_name")}
        where = reply.get("reply") or {}
        thread_id = where.get("thread_id") or reply.get("thread_id")
        files = [
            mail.OutgoingFile(
                str(file["filename"]),
                str(file["content_type"]),
                base64.b64decode(str(file["content"])),
            )
            for file in reply.get("files") or []
        ]
        raw = mail.compose_reply(reply, sender=sender, files=files)
        return {"raw": b64url_encode(raw), "threadId": thread_id}
